import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { HyperoptInput, HyperoptResult } from '../../lib/contracts/hyperopt';
import { findOptunaWorker, startOptunaWorker, type OptunaWorkerProcess } from '../../infra/optuna-worker';
import { HyperoptStore } from '../../ledger/hyperopt-store';
import { loadFile } from '../../backtester/run';
import { holdoutCutoff } from '../../lib/hyperopt/trial';
import { searchSpace } from '../../lib/hyperopt/space';
import { loadStrategy } from '../../infra/strategies';
import { freshDatabase, testLog, type TestDatabase } from '../../testkit/db';
import { sharedDevServerEnv } from '../../testkit/temporal';
import { fixtureCandleFile } from '../../testkit/fixtures';

/**
 * Hyperopt on the engine itself: the HyperoptWorkflow on a real dev server, its trials run by real
 * `trader worker --queue research` processes, the sampler the real Optuna worker (Python) with its
 * study in a real PostgreSQL. A search with one worker, undisturbed, and the same search with two,
 * one of them SIGKILLed mid-run and started again, end with the same trials: exactly 60 complete,
 * each with the same parameters, and the same best.
 */

const inCi = !!process.env.CI && process.env.CI !== 'false' && process.env.CI !== '0';
const REPO = path.resolve(__dirname, '..', '..');
const TRIALS = 60;

describe('hyperopt: a search on Temporal, trials on research workers, Optuna in PostgreSQL', function () {
  this.timeout(600_000);
  let env: TestWorkflowEnvironment;
  let db: TestDatabase;
  let optuna: OptunaWorkerProcess | undefined;
  let home: string;
  const workers: ChildProcess[] = [];

  before(async function () {
    if (!findOptunaWorker()) {
      if (inCi) throw new Error('the Optuna worker is not installed (.tools/optuna): CI runs scripts/setup-optuna.sh first');
      this.skip();
    }
    env = await sharedDevServerEnv();
    db = await freshDatabase();
    optuna = await startOptunaWorker({ temporalAddress: env.address!, namespace: env.namespace!, databaseUrl: db.url, log: testLog, env: { OPTUNA_WORKER_LOG_LEVEL: 'WARNING' } });
    home = fs.mkdtempSync(path.join(os.tmpdir(), 'dt-hyperopt-'));
  });

  after(async () => {
    for (const w of workers) if (w.exitCode === null && w.signalCode === null) w.kill('SIGKILL');
    await optuna?.stop();
    await db?.drop();
    await env?.teardown();
    if (home) fs.rmSync(home, { recursive: true, force: true });
  });

  /** `trader worker --queue research` against the test's server and database; resolves once it polls. */
  function researchWorker(name: string): Promise<ChildProcess> {
    const child = spawn(process.execPath, [path.join(REPO, 'bin', 'trader.js'), 'worker', '--queue', 'research'], {
      cwd: REPO,
      env: { ...process.env, TEMPORAL_ADDRESS: env.address!, TEMPORAL_NAMESPACE: env.namespace!, DATABASE_URL: db.url, TRADER_HOME: path.join(home, name), LOG_LEVEL: 'info', LOG_FORMAT: 'json' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    workers.push(child);
    let out = '';
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`research worker ${name} not ready in 120 s:\n${out.slice(-2000)}`)), 120_000);
      const onData = (b: Buffer) => {
        out += b.toString();
        if (out.includes('research worker running')) {
          clearTimeout(timer);
          resolve(child);
        }
      };
      child.stdout!.on('data', onData);
      child.stderr!.on('data', onData);
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`research worker ${name} exited (${code ?? signal}) before it was ready:\n${out.slice(-2000)}`));
      });
    });
  }

  function input(runId: string): HyperoptInput {
    const files = ['synthetic_ETH-USDT_1h.csv', 'synthetic_XRP-USDT_1h.csv'].map((f) => fixtureCandleFile(f));
    const series = files.map((f) => loadFile(f));
    const cutoff = holdoutCutoff(series, 0.2, 2);
    return {
      runId,
      setup: { strategy: 'rules', data: { files }, loss: 'sharpe', folds: 2, cutoff, initialCapital: 10_000, feeBps: 10, slippageBps: 0 },
      space: searchSpace(loadStrategy('rules').strategy),
      trials: TRIALS,
      batchSize: 4,
      seed: 7,
      startupTrials: 8,
      holdout: 0.2,
      trialTimeoutMs: 20_000,
    };
  }

  const run = (i: HyperoptInput) => env.client.workflow.start('hyperoptWorkflow', { taskQueue: 'research', workflowId: `hyperopt/${i.runId}`, args: [i] });

  async function studyStates(runId: string): Promise<Record<string, number>> {
    const rows = await db.sql<Array<{ state: string; n: number }>>`
      select t.state::text as state, count(*)::int as n from optuna.trials t join optuna.studies s on s.study_id = t.study_id
      where s.study_name = ${`hyperopt-${runId}`} group by t.state`;
    return Object.fromEntries(rows.map((r) => [r.state, r.n]));
  }

  it('60 trials: two workers, one SIGKILLed mid-run and restarted, give exactly the trials and the best of one undisturbed worker', async () => {
    const store = new HyperoptStore(db.sql);
    const first = await researchWorker('w1');

    // Undisturbed, one worker: trials one after another.
    const calm = await (await run(input('calm'))).result() as HyperoptResult;
    assert.equal(calm.trials.complete, TRIALS, `complete trials of the undisturbed run: ${JSON.stringify(calm.trials)}`);

    // The same search with a second worker; the first is killed once 12 trials are in.
    await researchWorker('w2');
    const handle = await run(input('storm'));
    for (;;) {
      const [{ n }] = await db.sql<Array<{ n: number }>>`select count(*)::int as n from hyperopt_trials where run_id = 'storm'`;
      if (n >= 12) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    first.kill('SIGKILL');
    await new Promise((r) => first.once('exit', r));
    const killedAt = (await store.trials('storm', { withReturns: false })).length;
    assert.ok(killedAt < TRIALS, `killed mid-run (${killedAt} trials in)`);
    await researchWorker('w1-again');
    const storm = (await handle.result()) as HyperoptResult;

    assert.equal(storm.trials.complete, TRIALS, `complete trials after the kill: ${JSON.stringify(storm.trials)}`);
    assert.equal(storm.trials.failed, 0);
    const calmTrials = await store.trials('calm', { withReturns: false });
    const stormTrials = await store.trials('storm', { withReturns: false });
    assert.deepEqual(stormTrials.map((t) => t.number), [...Array(TRIALS).keys()], 'one row per trial number, none twice');
    assert.deepEqual(stormTrials.map((t) => t.params), calmTrials.map((t) => t.params), 'every trial sampled the same parameters');
    assert.deepEqual(stormTrials.map((t) => t.loss), calmTrials.map((t) => t.loss), 'and scored the same loss');
    assert.deepEqual(storm.best?.params, calm.best?.params, 'the same best parameters');
    assert.ok(new Set(stormTrials.map((t) => t.worker)).size >= 2, `trials ran on more than one worker: ${[...new Set(stormTrials.map((t) => t.worker))].join(', ')}`);
    for (const id of ['calm', 'storm']) assert.deepEqual(await studyStates(id), { COMPLETE: TRIALS }, `the Optuna study ${id}: exactly ${TRIALS} complete trials, none running or failed`);

    // The result: the guard over 60 trials, the holdout, importances.
    assert.ok(!('skipped' in storm.guard), `the guard was computed: ${JSON.stringify(storm.guard)}`);
    if (!('skipped' in storm.guard)) {
      assert.ok(storm.guard.dsr >= 0 && storm.guard.dsr <= 1 && storm.guard.pbo >= 0 && storm.guard.pbo <= 1);
      assert.equal(storm.guard.trials, TRIALS);
    }
    assert.ok(storm.best?.holdout && storm.best.holdout.days > 0, 'the best parameters were backtested over the holdout');
    assert.equal(storm.best!.inSearch.foldLosses.length, 2);
    assert.deepEqual(Object.keys(storm.importance).sort(), Object.keys(input('x').space).sort(), "Optuna's importances name every searched parameter");
  });
});

import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { ActivityFailure, ApplicationFailure, Client, WorkflowFailedError } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { OPTUNA_BAD_INPUT, type AskedTrial, type OptunaActivities, type OptunaAskRequest, type OptunaSummary, type OptunaTellResult, type ParamDistribution } from '../../lib/contracts/hyperopt';
import {
  OptunaNotInstalledError,
  findOptunaWorker,
  optunaDashboardCommand,
  optunaStorageUrl,
  requireOptunaWorker,
  securityEnv,
  startOptunaWorker,
  type OptunaWorkerProcess,
} from '../../infra/optuna-worker';
import { parseEncryptionKeys } from '../../infra/payload-codec';
import { temporalDataConverter } from '../../infra/temporal';
import { freePort, freshDatabase, testLog, type TestDatabase } from '../../testkit/db';
import { makeTestPki } from '../../testkit/certificates';
import { freshTaskQueue, sharedDevServerEnv } from '../../testkit/temporal';
import { startTlsProxy } from '../../testkit/tls-proxy';

/**
 * The Optuna sampler (workers/optuna/worker.py, a Python Temporal worker) against a real dev
 * server and a real PostgreSQL, called as the hyperopt workflow calls it: from a workflow, on the
 * task queue `optuna`. Needs scripts/setup-optuna.sh's install (.tools/optuna): without it the
 * suite skips, except under CI=true, where it fails.
 */

const inCi = !!process.env.CI && process.env.CI !== 'false' && process.env.CI !== '0';

describe('the Optuna worker: glue', () => {
  it('names scripts/setup-optuna.sh when the Python side is not installed', () => {
    const empty = fs.mkdtempSync(path.join(os.tmpdir(), 'dt-optuna-'));
    try {
      assert.equal(findOptunaWorker({}, empty), undefined);
      assert.throws(() => requireOptunaWorker({}, empty), (err: unknown) => err instanceof OptunaNotInstalledError && /bash scripts\/setup-optuna\.sh/.test(err.message));
    } finally {
      fs.rmSync(empty, { recursive: true, force: true });
    }
  });

  it('hands TLS, the API key and the encryption keys to the child as the TEMPORAL_* variables worker.py reads', () => {
    const key = Buffer.alloc(32, 7);
    assert.deepEqual(securityEnv({}), {
      TEMPORAL_TLS: 'false',
      TEMPORAL_TLS_CERT: undefined,
      TEMPORAL_TLS_KEY: undefined,
      TEMPORAL_TLS_CA: undefined,
      TEMPORAL_TLS_SERVER_NAME: undefined,
      TEMPORAL_API_KEY: undefined,
      TEMPORAL_ENCRYPTION: 'false',
      TEMPORAL_ENCRYPTION_KEYS: undefined,
    });
    const env = securityEnv({ tls: { serverRootCACertificate: Buffer.from('CA PEM') }, apiKey: 'k3y', encryptionKeys: [{ id: 'a', key }] });
    assert.equal(env.TEMPORAL_TLS, 'true');
    assert.equal(env.TEMPORAL_TLS_CA, 'CA PEM');
    assert.equal(env.TEMPORAL_API_KEY, 'k3y');
    assert.equal(env.TEMPORAL_ENCRYPTION_KEYS, `a:${key.toString('base64')}`);
  });

  it("turns DATABASE_URL into Optuna's storage URL with search_path optuna", () => {
    assert.equal(optunaStorageUrl('postgres://u:p%40ss@h:5432/db?sslmode=require'), 'postgresql+psycopg2://u:p%40ss@h:5432/db?sslmode=require&options=-csearch_path%3Doptuna');
  });
});

describe('the Optuna worker (Python) on a dev server with PostgreSQL', function () {
  this.timeout(300_000); // starts the shared dev server and PostgreSQL on first use, the Python worker (numpy, scipy, sklearn imports: seconds) three times
  let env: TestWorkflowEnvironment;
  let db: TestDatabase;
  let python: OptunaWorkerProcess | undefined;
  let tsWorker: Worker;
  let tsRun: Promise<void>;
  const workflowQueue = freshTaskQueue('optuna-calls');
  let calls = 0;

  const space: Record<string, ParamDistribution> = {
    fast: { type: 'int', low: 2, high: 30 },
    slow: { type: 'int', low: 20, high: 200, step: 10 },
    stop: { type: 'float', low: 0.005, high: 0.2, log: true },
    size: { type: 'float', low: 0.1, high: 1, step: 0.05 },
    mode: { type: 'categorical', choices: ['ema', 'sma', 'wma'] },
  };
  /** A made-up loss with a clear optimum (fast near 9, mode sma) and a parameter that barely matters (size). */
  const loss = (p: AskedTrial['params']): number =>
    ((p.fast as number) - 9) ** 2 + Math.abs((p.slow as number) - 90) / 10 + Math.abs(Math.log((p.stop as number) / 0.03)) + (p.mode === 'sma' ? 0 : 5) + (p.size as number) / 100;

  function startPython(): Promise<OptunaWorkerProcess> {
    return startOptunaWorker({ temporalAddress: env.address!, namespace: env.namespace!, databaseUrl: db.url, log: testLog, env: { OPTUNA_WORKER_LOG_LEVEL: process.env.TEST_LOG_LEVEL === 'debug' ? 'DEBUG' : 'WARNING' } });
  }

  function call(name: 'optunaCreateStudy', req: Parameters<OptunaActivities['optunaCreateStudy']>[0]): Promise<{ study: string; created: boolean }>;
  function call(name: 'optunaAsk', req: OptunaAskRequest): Promise<AskedTrial[]>;
  function call(name: 'optunaTell', req: Parameters<OptunaActivities['optunaTell']>[0]): Promise<OptunaTellResult>;
  function call(name: 'optunaSummary', req: Parameters<OptunaActivities['optunaSummary']>[0]): Promise<OptunaSummary>;
  function call(name: keyof OptunaActivities, req: unknown): Promise<unknown> {
    return env.client.workflow.execute('optunaCall', { taskQueue: workflowQueue, workflowId: `${workflowQueue}-${++calls}`, args: [name, req, { taskQueue: 'optuna' }] });
  }

  const keys = (run: string, from: number, n: number) => Array.from({ length: n }, (_, i) => `${run}/${from + i}`);
  const tellAll = (study: string, trials: AskedTrial[]) =>
    call('optunaTell', { study, results: trials.map((t) => ({ key: t.key, number: t.number, state: 'complete' as const, value: loss(t.params), attrs: { trades: 10 + t.number } })) });

  /** The failure a workflow call ended with: the activity's ApplicationFailure. */
  async function failureOf(p: Promise<unknown>): Promise<ApplicationFailure> {
    const err = await p.then(
      () => assert.fail('the call succeeded'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof WorkflowFailedError, String(err));
    assert.ok(err.cause instanceof ActivityFailure, String(err.cause));
    assert.ok(err.cause.cause instanceof ApplicationFailure, String(err.cause.cause));
    return err.cause.cause;
  }

  before(async function () {
    if (!findOptunaWorker()) {
      const why = 'the Optuna worker is not installed (.tools/optuna): run bash scripts/setup-optuna.sh';
      if (inCi) throw new Error(`CI is set but ${why}`);
      console.warn(`    skipping the Optuna worker tests: ${why}`);
      this.skip();
    }
    env = await sharedDevServerEnv();
    db = await freshDatabase();
    tsWorker = await Worker.create({
      connection: env.nativeConnection,
      namespace: env.namespace!,
      taskQueue: workflowQueue,
      workflowsPath: require.resolve('../fixtures/optuna/call-workflow'),
    });
    tsRun = tsWorker.run();
    python = await startPython();
  });

  after(async () => {
    await python?.stop();
    if (tsWorker) {
      tsWorker.shutdown();
      await tsRun;
    }
    await db?.drop();
    await env?.teardown();
  });

  it('creates a study, asks 5 trials, tells them and sums them up; retried asks and tells change nothing', async () => {
    const study = 'hyperopt-basic';
    assert.deepEqual(await call('optunaCreateStudy', { study, seed: 11, attrs: { strategy: 'ema-cross', loss: 'sharpe' } }), { study, created: true });
    assert.deepEqual(await call('optunaCreateStudy', { study, seed: 11, attrs: { strategy: 'ema-cross', loss: 'sharpe' } }), { study, created: false });

    const asked = await call('optunaAsk', { study, seed: 11, space, keys: keys('basic', 0, 5), startupTrials: 3 });
    assert.deepEqual(asked.map((t) => [t.key, t.number]), keys('basic', 0, 5).map((k, i) => [k, i]));
    for (const t of asked) {
      assert.deepEqual(Object.keys(t.params).sort(), Object.keys(space).sort());
      assert.ok(Number.isInteger(t.params.fast) && (t.params.fast as number) >= 2 && (t.params.fast as number) <= 30, JSON.stringify(t.params));
      assert.ok((t.params.slow as number) % 10 === 0, JSON.stringify(t.params));
      assert.ok((t.params.stop as number) >= 0.005 && (t.params.stop as number) <= 0.2, JSON.stringify(t.params));
      assert.ok(['ema', 'sma', 'wma'].includes(t.params.mode as string), JSON.stringify(t.params));
    }
    // A retried ask (same keys, some of them, or more) gets the same trials back, and only the new key a new one.
    assert.deepEqual(await call('optunaAsk', { study, seed: 11, space, keys: keys('basic', 0, 5), startupTrials: 3 }), asked);
    const more = await call('optunaAsk', { study, seed: 11, space, keys: keys('basic', 3, 3), startupTrials: 3 });
    assert.deepEqual(more.slice(0, 2), asked.slice(3));
    assert.equal(more[2].number, 5);

    assert.deepEqual(await tellAll(study, asked), { told: 5, already: 0 });
    assert.deepEqual(await tellAll(study, asked), { told: 0, already: 5 });
    assert.deepEqual(await call('optunaTell', { study, results: [{ key: more[2].key, number: 5, state: 'fail' }] }), { told: 1, already: 0 });

    const summary = await call('optunaSummary', { study, top: 3 });
    assert.equal(summary.complete, 5);
    assert.equal(summary.failed, 1);
    assert.equal(summary.running, 0);
    const byLoss = [...asked].sort((a, b) => loss(a.params) - loss(b.params));
    assert.deepEqual(
      summary.best.map((b) => [b.number, b.key]),
      byLoss.slice(0, 3).map((t) => [t.number, t.key]),
    );
    assert.equal(summary.best[0].value, loss(byLoss[0].params));
    assert.deepEqual(summary.best[0].params, byLoss[0].params);
    assert.deepEqual(Object.keys(summary.importance).sort(), Object.keys(space).sort());
    const total = Object.values(summary.importance).reduce((a, b) => a + b, 0);
    assert.ok(Math.abs(total - 1) < 1e-6, `importances sum to ${total}`);
  });

  it('asks the same parameters after a kill -9 of the worker as an undisturbed study with the same seed', async () => {
    const rounds = 4;
    const perRound = 3;
    async function runStudy(study: string, killBetween: boolean): Promise<AskedTrial[]> {
      await call('optunaCreateStudy', { study, seed: 2024 });
      const all: AskedTrial[] = [];
      for (let r = 0; r < rounds; r++) {
        const req = { study, seed: 2024, space, keys: keys(study, r * perRound, perRound), startupTrials: 4 };
        let asked: AskedTrial[];
        if (killBetween && r > 0) {
          python!.kill('SIGKILL');
          await python!.exited;
          // The ask waits in the task queue while no worker polls it, and runs on the new one.
          const pending = call('optunaAsk', req);
          python = await startPython();
          asked = await pending;
        } else asked = await call('optunaAsk', req);
        all.push(...asked);
        await tellAll(study, asked);
      }
      return all;
    }
    const undisturbed = await runStudy('hyperopt-calm', false);
    const killed = await runStudy('hyperopt-killed', true);
    assert.deepEqual(
      killed.map((t) => t.params),
      undisturbed.map((t) => t.params),
    );
    // TPE took over after the 4 startup trials: the later trials are not random draws any more.
    assert.equal(new Set(undisturbed.map((t) => JSON.stringify(t.params))).size, rounds * perRound);
  });

  it('completes a trial whose ask was cut short (the worker died between two parameters, as an older version could) as an undisturbed ask would', async () => {
    async function prepare(study: string): Promise<void> {
      await call('optunaCreateStudy', { study, seed: 77 });
      await tellAll(study, await call('optunaAsk', { study, seed: 77, space, keys: keys(study, 0, 4), startupTrials: 3 }));
    }
    await prepare('hyperopt-whole');
    const whole = await call('optunaAsk', { study: 'hyperopt-whole', seed: 77, space, keys: keys('x', 4, 2), startupTrials: 3 });
    await prepare('hyperopt-cut');
    // What a kill -9 in the middle of an ask left before trials were created with their parameters
    // (they were set one at a time): the key's trial holding its first parameter only. Written with
    // worker.py's own functions (a trial created with no parameter to draw, then one drawn as before).
    const cut = spawnSync(
      findOptunaWorker()!.python,
      [
        '-c',
        `import json, os, sys
sys.path.insert(0, 'workers/optuna')
from optuna.samplers import TPESampler
from worker import Sampler, distributions, draw_seed, postgres_to_sqlalchemy
s = Sampler(postgres_to_sqlalchemy(os.environ['DATABASE_URL']))
study = s.load('hyperopt-cut', 'test')
name, dist = next(iter(distributions(json.loads(sys.argv[1])).items()))
t = s._new_trial(study, None, 'x/4', {}, 77, 3)
value = TPESampler(seed=draw_seed(77, t.number, name), n_startup_trials=3).sample_independent(study, t, name, dist)
s.storage.set_trial_param(t._trial_id, name, dist.to_internal_repr(value), dist)
print(json.dumps({name: value}))`,
        JSON.stringify(space),
      ],
      { cwd: path.resolve(__dirname, '../..'), env: { ...process.env, DATABASE_URL: db.url }, encoding: 'utf8' },
    );
    assert.equal(cut.status, 0, cut.stderr);
    assert.deepEqual(JSON.parse(cut.stdout), { fast: whole[0].params.fast });
    const resumed = await call('optunaAsk', { study: 'hyperopt-cut', seed: 77, space, keys: keys('x', 4, 2), startupTrials: 3 });
    assert.deepEqual(resumed, whole);
  });

  it('reaches the server over mTLS and speaks the encrypted payloads of TEMPORAL_ENCRYPTION_KEYS, as cfg.temporal sets them', async () => {
    const encryptionKeys = parseEncryptionKeys(`old:${Buffer.alloc(32, 1).toString('base64')},new:${Buffer.alloc(32, 2).toString('base64url')}`);
    const dataConverter = temporalDataConverter({ encryptionKeys });
    const queue = freshTaskQueue('optuna-encrypted');
    // A TLS-terminating proxy demanding a client certificate, in front of the dev server; the
    // TypeScript side of the test talks to the server directly.
    const pki = makeTestPki('temporal.test');
    const [host, port] = env.address!.split(':');
    const proxy = await startTlsProxy({ target: { host: host === 'localhost' ? '127.0.0.1' : host, port: Number(port) }, cert: pki.server.cert, key: pki.server.key, ca: pki.ca });
    const tls = { serverRootCACertificate: Buffer.from(pki.ca), clientCertPair: { crt: Buffer.from(pki.client.cert), key: Buffer.from(pki.client.key) }, serverNameOverride: 'temporal.test' };
    const encrypted = await startOptunaWorker({
      temporalAddress: `127.0.0.1:${proxy.port}`,
      namespace: env.namespace!,
      taskQueue: `${queue}-py`,
      databaseUrl: db.url,
      log: testLog,
      security: { tls, encryptionKeys },
      env: { OPTUNA_WORKER_LOG_LEVEL: 'WARNING' },
    }).catch(async (err: unknown) => {
      await proxy.close();
      throw err;
    });
    assert.ok(proxy.authorized >= 1 && proxy.clients.includes('trader-worker'), `the worker did not come through the mTLS proxy: ${JSON.stringify(proxy)}`);
    const worker = await Worker.create({ connection: env.nativeConnection, namespace: env.namespace, taskQueue: queue, workflowsPath: require.resolve('../fixtures/optuna/call-workflow'), dataConverter });
    const client = new Client({ connection: env.connection, namespace: env.namespace, dataConverter });
    try {
      await worker.runUntil(async () => {
        const run = (name: keyof OptunaActivities, req: unknown, workflowId: string) => client.workflow.execute('optunaCall', { taskQueue: queue, workflowId, args: [name, req, { taskQueue: `${queue}-py` }] });
        assert.deepEqual(await run('optunaCreateStudy', { study: 'hyperopt-secret', seed: 5 }, `${queue}-create`), { study: 'hyperopt-secret', created: true });
        const asked = (await run('optunaAsk', { study: 'hyperopt-secret', seed: 5, space, keys: ['s/0'] }, `${queue}-ask`)) as AskedTrial[];
        assert.equal(asked[0].key, 's/0');
        // Both the ask and its answer crossed the server encrypted, with the newest key.
        const history = await client.workflow.getHandle(`${queue}-ask`).fetchHistory();
        const scheduled = history.events!.find((e) => e.activityTaskScheduledEventAttributes)!.activityTaskScheduledEventAttributes!.input!.payloads![0];
        const completed = history.events!.find((e) => e.activityTaskCompletedEventAttributes)!.activityTaskCompletedEventAttributes!.result!.payloads![0];
        for (const p of [scheduled, completed]) {
          assert.equal(Buffer.from(p.metadata!.encoding!).toString(), 'binary/encrypted');
          assert.equal(Buffer.from(p.metadata!['encryption-key-id']!).toString(), 'new');
        }
        // A bad input's message comes back readable through the encoded failure attributes.
        const failure = await failureOf(run('optunaAsk', { study: 'hyperopt-secret', seed: 5, space: {}, keys: ['s/1'] }, `${queue}-bad`));
        assert.match(failure.message, /search space is empty/);
      });
    } finally {
      await encrypted.stop();
      await proxy.close();
    }
  });

  it("keeps Optuna's tables in the schema optuna, not among the ledger's in public", async () => {
    const rows = await db.sql<{ table_schema: string; table_name: string }[]>`
      select table_schema, table_name from information_schema.tables where table_name in ('studies', 'trials', 'alembic_version', 'trial_params')`;
    assert.deepEqual(
      rows.map((r) => `${r.table_schema}.${r.table_name}`).sort(),
      ['optuna.alembic_version', 'optuna.studies', 'optuna.trial_params', 'optuna.trials'],
    );
    const [{ n }] = await db.sql<{ n: number }[]>`select count(*)::int as n from optuna.trials t join optuna.studies s using (study_id) where s.study_name = 'hyperopt-basic'`;
    assert.equal(n, 6);
  });

  it('lets optuna-dashboard open the study in PostgreSQL with the command scripts/setup-optuna.sh prints', async () => {
    const port = await freePort();
    const [dashboard, storage] = optunaDashboardCommand(db.url);
    const child = spawn(dashboard, [storage, '--host', '127.0.0.1', '--port', String(port), '--quiet'], { stdio: ['ignore', 'ignore', 'pipe'] }); // stderr: its request log, read on failure
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    try {
      let studies: Array<{ study_name: string }> | undefined;
      for (let i = 0; i < 100 && !studies; i++) {
        await new Promise((r) => setTimeout(r, 200));
        studies = await fetch(`http://127.0.0.1:${port}/api/studies`)
          .then(async (res) => ((await res.json()) as { study_summaries: Array<{ study_name: string }> }).study_summaries)
          .catch(() => undefined);
        assert.equal(child.exitCode, null, `optuna-dashboard exited: ${stderr}`);
      }
      assert.ok(studies, `optuna-dashboard did not answer: ${stderr}`);
      assert.ok(studies.some((st) => st.study_name === 'hyperopt-basic'), JSON.stringify(studies));
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('says why when the worker cannot start (its last log lines), e.g. an unreachable database', async () => {
    const port = await freePort();
    await assert.rejects(
      startOptunaWorker({ temporalAddress: env.address!, namespace: env.namespace!, taskQueue: freshTaskQueue('optuna-nodb'), databaseUrl: `postgres://nobody:x@127.0.0.1:${port}/nothing`, log: testLog, env: { OPTUNA_WORKER_LOG_LEVEL: 'WARNING' } }),
      (err: Error) => /the Optuna worker exited \(code 1\) before it was ready/.test(err.message) && /Connection refused|could not connect|OperationalError/i.test(err.message),
    );
  });

  it('fails bad input at once, not retried, with a clear message', async () => {
    const study = 'hyperopt-bad';
    await call('optunaCreateStudy', { study, seed: 1 });
    const cases: Array<[() => Promise<unknown>, RegExp]> = [
      [() => call('optunaAsk', { study, seed: 1, space: { x: { type: 'normal', low: 0, high: 1 } as unknown as ParamDistribution }, keys: ['bad/0'] }), /parameter 'x': unknown distribution type 'normal'/],
      [() => call('optunaAsk', { study, seed: 1, space: {}, keys: ['bad/0'] }), /search space is empty/],
      [() => call('optunaAsk', { study, seed: 1, space: { x: { type: 'int', low: 5, high: 1 } }, keys: ['bad/0'] }), /parameter 'x'/],
      [() => call('optunaAsk', { study: 'hyperopt-nope', seed: 1, space, keys: ['bad/0'] }), /no study named 'hyperopt-nope'/],
      [() => call('optunaTell', { study, results: [{ key: 'bad/9', number: 9, state: 'complete', value: 1 }] }), /has no trial 9/],
      [() => call('optunaSummary', { study: 'hyperopt-nope', top: 1 }), /no study named 'hyperopt-nope'/],
      [() => call('optunaCreateStudy', { study, seed: 2 }), /exists with seed 1, not 2/],
    ];
    for (const [p, message] of cases) {
      const failure = await failureOf(p());
      assert.equal(failure.nonRetryable, true, failure.message);
      assert.equal(failure.type, OPTUNA_BAD_INPUT);
      assert.match(failure.message, message);
    }
    // Nothing of it reached the study.
    assert.equal((await call('optunaSummary', { study, top: 1 })).running, 0);
  });
});

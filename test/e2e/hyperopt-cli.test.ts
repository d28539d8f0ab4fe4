import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { embeddedStackEnv, traderProcess as trader, waitForOutput } from '../../testkit/trader-process';
import { findOptunaWorker } from '../../infra/optuna-worker';
import { loadStrategy } from '../../infra/strategies';
import { strategyParams } from '../../lib/strategy/run';

/**
 * `trader hyperopt` as a user runs it, on the embedded stack it starts itself (dev server,
 * PostgreSQL, a research worker and the Optuna worker in its process): killed with SIGKILL mid-run,
 * `--resume` (which restarts the Temporal dev server and PostgreSQL it left behind) finishes the
 * same run with every trial once; `--apply` refuses without `--force` when
 * the guard says so, and writes a params file the strategy accepts.
 */

const REPO = path.resolve(__dirname, '..', '..');
const DATA = path.join(REPO, 'test', 'fixtures', 'ohlcv', 'binanceusdm_BTC-USDT_1h.csv');
const TRIALS = 16;
const inCi = !!process.env.CI && process.env.CI !== 'false' && process.env.CI !== '0';


describe('trader hyperopt on the embedded stack: killed, resumed, applied', function () {
  this.timeout(600_000);
  let home: string;
  let env: NodeJS.ProcessEnv;

  before(async function () {
    if (!findOptunaWorker()) {
      if (inCi) throw new Error('the Optuna worker is not installed (.tools/optuna): CI runs scripts/setup-optuna.sh first');
      this.skip();
    }
    home = fs.mkdtempSync(path.join(os.tmpdir(), 'dt-hyperopt-cli-'));
    fs.chmodSync(home, 0o755);
    env = await embeddedStackEnv(home);
  });
  after(() => home && fs.rmSync(home, { recursive: true, force: true }));

  it('SIGKILL mid-run, then --resume: the run ends with every trial once; --apply gates on the holdout and the DSR', async () => {
    const first = trader(['hyperopt', '--strategy', 'rules', '--data', DATA, '--trials', String(TRIALS), '--batch', '4', '--walk-forward', '2', '--seed', '3', '--run-id', 'e2e', '--no-progress'], env);
    await waitForOutput(first, /hyperopt e2e: 16 trials of rules over adxTrendMin, rsiMin, rsiMax/, 180_000);
    // Killed once some trials are in (the CLI prints every tenth of the run without a terminal).
    await waitForOutput(first, /([4-9]|1[0-5])\/16 trials/, 240_000);
    first.child.kill('SIGKILL');
    await first.exited;

    const json = path.join(home, 'e2e.json');
    const resumed = trader(['hyperopt', '--resume', 'e2e', '--json', json, '--report', path.join(home, 'e2e.html'), '--no-progress'], env);
    const code = await resumed.exited;
    assert.equal(code, 0, resumed.output());
    assert.match(resumed.output(), /watching hyperopt e2e/);
    // The killed CLI's dev server was stopped and a new one started on its SQLite: the run survived a Temporal restart too.
    assert.match(resumed.output(), /orphaned Temporal dev server/);
    assert.match(resumed.output(), /hyperopt e2e: 16 complete, 0 failed of 16 asked/);
    const out = JSON.parse(fs.readFileSync(json, 'utf8')) as { result: { best: { params: Record<string, unknown> }; guard: { dsr?: number } }; trials: Array<{ number: number; state: string; returns: number[] }> };
    assert.deepEqual(out.trials.map((t) => t.number), [...Array(TRIALS).keys()], 'every trial once');
    assert.ok(out.trials.every((t) => t.state === 'complete' && t.returns.length > 100), 'each with its daily returns');
    assert.ok(fs.readFileSync(path.join(home, 'e2e.html'), 'utf8').includes('Overfitting guard'));

    // --apply: refused while the DSR is under 0.95 (16 trials of the rules rarely clear it), then forced.
    const dsr = out.result.guard.dsr;
    const params = path.join(home, 'rules.params.json');
    const apply = trader(['hyperopt', '--apply', 'e2e', '--out', params], env);
    const applyCode = await apply.exited;
    if (dsr !== undefined && dsr < 0.95) {
      assert.equal(applyCode, 2, apply.output());
      assert.match(apply.output(), /not applied: .*Deflated Sharpe Ratio is \d\.\d{3}, below 0.95.*--force/);
      const forced = trader(['hyperopt', '--apply', 'e2e', '--out', params, '--force'], env);
      assert.equal(await forced.exited, 0, forced.output());
    } else assert.ok(applyCode === 0 || /holdout lost money/.test(apply.output()), apply.output());
    if (fs.existsSync(params)) {
      const written = JSON.parse(fs.readFileSync(params, 'utf8')) as Record<string, unknown>;
      assert.deepEqual(strategyParams(loadStrategy('rules').strategy, written), written, 'the strategy accepts the file as it is');
      for (const [k, v] of Object.entries(out.result.best.params)) assert.equal(written[k], v);
    }
  });
});

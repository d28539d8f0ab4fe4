import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort } from '../../testkit/db';
import { traderProcess, waitForOutput, type TraderRun } from '../../testkit/trader-process';

const REPO = path.resolve(__dirname, '..', '..');

const startUp = (env: Record<string, string>): TraderRun => traderProcess(['up'], { ...process.env, LOG_LEVEL: 'warn', ...env });

/** `trader status --json` against the running stack, retried while the symbol workflows start. */
async function statusJson(env: Record<string, string>): Promise<Array<{ symbol: string; tradingStatus: string }>> {
  const { execFile } = await import('node:child_process');
  let last = '';
  for (let i = 0; i < 60; i++) {
    const out = await new Promise<string>((resolve) => {
      execFile(process.execPath, [path.join(REPO, 'bin', 'trader.js'), 'status', '--json'], { env: { ...process.env, LOG_LEVEL: 'warn', ...env }, cwd: env.TRADER_HOME }, (_err, stdout, stderr) => resolve(stdout + stderr));
    });
    last = out;
    try {
      const parsed = JSON.parse(out) as Array<{ symbol: string; tradingStatus: string }>;
      if (parsed.length >= 2) return parsed;
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
  throw new Error(`trader status --json never listed the symbols; last output:\n${last}`);
}

describe('trader up (npm start)', function () {
  this.timeout(240_000); // `trader up` as `npm start` runs it: the whole embedded stack
  let home: string;
  let env: Record<string, string>;

  before(async () => {
    home = fs.mkdtempSync(path.join(os.tmpdir(), 'dt-up-'));
    // mkdtemp makes it 0700; the embedded PostgreSQL runs as `postgres` when we are root and must reach it.
    fs.chmodSync(home, 0o755);
    env = {
      TRADER_HOME: home,
      TEMPORAL_PORT: String(await freePort()),
      TEMPORAL_UI_PORT: String(await freePort()),
      POSTGRES_PORT: String(await freePort()),
      SYMBOLS: 'BTC/USDT,ETH/USDT',
    };
    delete process.env.TEMPORAL_ADDRESS;
    delete process.env.DATABASE_URL;
  });
  after(() => fs.rmSync(home, { recursive: true, force: true }));

  it('starts the embedded stack, stops cleanly on Ctrl-C and resumes on the next start', async () => {
    const first = startUp(env);
    const m1 = await waitForOutput(first, /System check: workflow (\S+) wrote audit rows (\d+) and (\d+)/, 180_000);
    assert.match(first.output(), new RegExp(`Temporal Web UI: http://localhost:${env.TEMPORAL_UI_PORT}`));
    // The UI really answers on that port.
    const ui = await fetch(`http://127.0.0.1:${env.TEMPORAL_UI_PORT}/`);
    assert.equal(ui.status, 200);
    // One trading workflow per configured symbol, started by the portfolio, answering `trader status`
    // (offline here: the exchange is unreachable, so they wait for candles; status still answers).
    const status = await statusJson(env);
    assert.deepEqual(status.map((s) => s.symbol).sort(), ['BTC/USDT', 'ETH/USDT'], JSON.stringify(status));
    assert.ok(status.every((s) => s.tradingStatus === 'active'), JSON.stringify(status));
    // The training worker keeps serving the training queue (the retrain Schedule's): a retrain with
    // an invalid window is answered, failing at once, rather than waiting for a worker forever.
    {
      const { Connection, Client, WorkflowFailedError } = await import('@temporalio/client');
      const connection = await Connection.connect({ address: `127.0.0.1:${env.TEMPORAL_PORT}` });
      try {
        const run = new Client({ connection }).workflow.execute('retrainWorkflow', {
          taskQueue: 'training', workflowId: `up-test-retrain-${process.pid}`, workflowExecutionTimeout: '60 seconds',
          args: [{ store: { exchange: 'binance', symbols: ['BTC/USDT'], timeframe: '1h', windowDays: 0 } }],
        });
        await assert.rejects(run, (err: unknown) => err instanceof WorkflowFailedError && /window of 0 days/.test(String((err.cause?.cause as Error | undefined)?.message)));
      } finally {
        await connection.close();
      }
    }
    first.child.kill('SIGINT');
    assert.equal(await first.exited, 0, first.output());
    assert.ok(fs.existsSync(path.join(home, 'temporal', 'temporal.sqlite')));
    assert.ok(fs.existsSync(path.join(home, 'postgres')));

    const second = startUp(env);
    const m2 = await waitForOutput(second, /System check: workflow (\S+) wrote audit rows (\d+) and (\d+)/, 180_000);
    assert.notEqual(m1[1], m2[1]);
    // The ledger kept the first run's rows: its identity sequence went on instead of restarting.
    assert.ok(Number(m2[2]) > Number(m1[3]), `audit ids restarted: ${m1[0]} / ${m2[0]}`);
    // The first run's workflow is still in the persisted Temporal history.
    const { Connection, Client } = await import('@temporalio/client');
    const connection = await Connection.connect({ address: `127.0.0.1:${env.TEMPORAL_PORT}` });
    try {
      const desc = await new Client({ connection }).workflow.getHandle(m1[1]).describe();
      assert.equal(desc.status.name, 'COMPLETED');
    } finally {
      await connection.close();
    }
    second.child.kill('SIGTERM');
    assert.equal(await second.exited, 0, second.output());
  });
});

import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { runBacktestCommand } from '../../client/commands/backtest';
import { runFeaturesCommand } from '../../client/commands/features';
import { UsageError } from '../../infra/errors';
import { CandleStore } from '../../ledger/candle-store';
import { symbolWorkflowId } from '../../lib/contracts/trading';
import { freshDatabase, testServer, type TestDatabase } from '../../testkit/db';
import { devServerEnv } from '../../testkit/temporal';
import { joinReplay, REPLAY_DATABASE } from '../../workers/replay';
import { sampledMarketCandles, writeCandleFile } from '../../testkit/candles';
import { tradeKey as key, type TradeRow } from '../../testkit/trading';

/**
 * Everything that reads recorded candles reads the candle store as well as files: `trader
 * backtest` and `trader features` give the same results from the store as from a CSV of the same
 * candles, and `trader up --replay --since ...` replays store series through the real workflows
 * (dev server, PostgreSQL); a `trader worker --replay` process joins the replay and finishes it
 * after the `up` process is killed, and the ledger has exactly the backtest's trades. Generated candles: no recorded data needed.
 */

const REPO = path.resolve(__dirname, '..', '..');
const M = 60_000;
// A fixed range: generated prices are a function of time, so the trades are the same every run (7, both symbols).
const N = 850;
const SINCE = Date.UTC(2025, 0, 1);
const UNTIL = SINCE + N * M;
const SYMBOLS = ['AAA/USDT', 'BBB/USDT'];
const SERIES = SYMBOLS.map((s, i) => sampledMarketCandles(s, M, SINCE, N, i));


const quiet = () => ({ info: () => undefined, warn: () => undefined, nowMs: () => Date.now() });
const riskConfig = { strategy: 'rules' as const, risk: { initialCapital: 10_000, maxPositionSize: 0.05, stopLossPct: 0.02, takeProfitPct: 0.04, maxDrawdown: 0.15 } };

describe('reading the candle store: backtest, features, up --replay and trader worker --replay', function () {
  this.timeout(600_000); // replays from the candle store through `trader up` and `trader worker` child processes
  let db: TestDatabase;
  let dir: string;
  let files: string[];

  before(async () => {
    db = await freshDatabase();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dt-store-replay-'));
    fs.chmodSync(dir, 0o755);
    const store = new CandleStore(db.sql);
    files = [];
    for (let i = 0; i < SYMBOLS.length; i++) {
      await store.upsert('binance', SYMBOLS[i], '1m', SERIES[i]);
      files.push(writeCandleFile(dir, { exchange: 'binance', symbol: SYMBOLS[i], timeframe: '1m' }, SERIES[i]));
    }
  });
  after(async () => {
    await db.drop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const storeConfig = () => ({ ...riskConfig, exchange: { id: 'binance', sandbox: false }, symbols: SYMBOLS, timeframe: '1h' as const, databaseUrl: db.url, home: dir, postgresPort: 1 });

  it('trader backtest over store series trades exactly as over CSV files of the same candles', async () => {
    const fromFiles = await runBacktestCommand({ data: files, strategy: 'rules' }, quiet(), { config: () => riskConfig });
    const fromStore = await runBacktestCommand({ since: String(SINCE), until: String(UNTIL), timeframe: '1m', strategy: 'rules' }, quiet(), { config: storeConfig, sql: db.sql });
    assert.equal(fromFiles.trades.length, 7, 'the generated market trades');
    assert.deepEqual(fromStore.trades, fromFiles.trades);
    assert.deepEqual(fromStore.metrics, fromFiles.metrics);
    assert.deepEqual(fromStore.symbols.map((s) => [s.symbol, s.file]), SYMBOLS.map((s) => [s, 'store:binance']));

    await assert.rejects(
      runBacktestCommand({ since: String(SINCE), symbols: 'AAA/USDT,CCC/USDT', timeframe: '1m' }, quiet(), { config: storeConfig, sql: db.sql }),
      (e: unknown) => e instanceof UsageError && /no binance CCC\/USDT 1m candles .*trader data download --exchange binance --symbols CCC\/USDT --timeframe 1m/.test(e.message),
    );
    await assert.rejects(runBacktestCommand({ data: files, since: '2024-01-01' }, quiet(), { config: storeConfig, sql: db.sql }), /give one or the other/);
    await assert.rejects(runBacktestCommand({}, quiet(), { config: storeConfig, sql: db.sql }), /--data FILE\.\.\.\) or candle store series/);
  });

  it('trader features over a store series writes the same matrix as over the CSV file', async () => {
    const a = path.join(dir, 'features-file.csv');
    const b = path.join(dir, 'features-store.csv');
    await runFeaturesCommand({ data: files[0], out: a }, quiet());
    const r = await runFeaturesCommand({ symbol: 'AAA/USDT', timeframe: '1m', since: String(SINCE), until: String(UNTIL), out: b }, quiet(), { config: storeConfig, sql: db.sql });
    assert.equal(r.candles, N);
    assert.equal(fs.readFileSync(b, 'utf8'), fs.readFileSync(a, 'utf8'));
    await assert.rejects(runFeaturesCommand({ symbol: 'ZZZ/USDT', timeframe: '1m', since: String(SINCE), out: b }, quiet(), { config: storeConfig, sql: db.sql }), /has no candles in the range; download them/);
  });

  it('trader up --replay replays store series through the workflows; a trader worker --replay joins and finishes it after up is killed; the ledger equals the backtest', async () => {
    // A Temporal server of the test's own, so that killing `up` kills its worker, not the cluster.
    const temporal = await devServerEnv();
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      DATABASE_URL: db.url,
      TEMPORAL_ADDRESS: temporal.address,
      TRADER_HOME: path.join(dir, 'home'),
      LOG_LEVEL: 'warn',
      STRATEGY: 'rules',
    };
    const procs: ChildProcess[] = [];
    const start = (args: string[], extra: NodeJS.ProcessEnv = {}) => {
      const child = spawn(process.execPath, [path.join(REPO, 'bin', 'trader.js'), ...args], { env: { ...env, ...extra }, cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
      const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
      procs.push(child);
      return { child, output: () => out, exited };
    };
    const waitFor = async (p: ReturnType<typeof start>, re: RegExp, ms: number) => {
      const deadline = Date.now() + ms;
      while (!re.test(p.output())) {
        if (Date.now() > deadline || p.child.exitCode !== null) throw new Error(`did not see ${re}:\n${p.output()}`);
        await new Promise((r) => setTimeout(r, 200));
      }
    };

    try {
      // Slow enough (100 ms of simulated-clock sleep per candle, 347 decisions) for the second worker to join long before the end.
      const up = start(['up', '--replay', '--symbols', SYMBOLS.join(','), '--timeframe', '1m', '--since', String(SINCE), '--until', String(UNTIL), '--speed', '600']);
      await waitFor(up, /durable-trader is up \(replay mode/, 240_000);
      assert.match(up.output(), /Replaying AAA\/USDT, BBB\/USDT 1m from the candle store \(binance/);

      const worker = start(['worker', '--replay'], { LOG_LEVEL: 'info' });
      await waitFor(worker, /serving the replay/, 180_000);

      // The `up` process dies (its worker with it); the replay goes on on the joined worker alone.
      const client = temporal.client;
      const handles = SYMBOLS.map((s) => client.workflow.getHandle(symbolWorkflowId('replay', s)));
      for (const h of handles) assert.equal((await h.describe()).status.name, 'RUNNING', 'the replay ended before the worker joined: slow it down');
      up.child.kill('SIGKILL');
      await up.exited;
      const results = (await Promise.all(handles.map((h) => h.result()))) as Array<{ decisions: number }>;
      assert.ok(results.every((r) => r.decisions === N - 503), JSON.stringify(results));

      const identity = `${worker.child.pid}@${os.hostname()}`;
      let served = 0;
      for await (const wf of client.workflow.list({ query: `WorkflowId STARTS_WITH 'trader/replay/'` })) {
        const history = await client.workflow.getHandle(wf.workflowId, wf.runId).fetchHistory();
        for (const e of history.events ?? []) if (e.workflowTaskStartedEventAttributes?.identity === identity) served++;
      }
      assert.ok(served > 0, `no workflow task of the replay was run by the joined worker (${identity})`);

      worker.child.kill('SIGTERM');
      assert.equal(await worker.exited, 0, worker.output());

      const trader = (args: string[]) => promisify(execFile)(process.execPath, [path.join(REPO, 'bin', 'trader.js'), ...args], { env, cwd: dir, maxBuffer: 64 * 1024 * 1024 });
      const ledger = JSON.parse((await trader(['trades', '--json'])).stdout) as TradeRow[];
      const backtest = await runBacktestCommand({ since: String(SINCE), until: String(UNTIL), timeframe: '1m', strategy: 'rules' }, quiet(), { config: storeConfig, sql: db.sql });
      assert.equal(backtest.trades.length, 7);
      assert.deepEqual(ledger.map(key).sort(), (backtest.trades as unknown as TradeRow[]).map(key).sort(), 'the replay through Temporal and the backtest disagree');
    } finally {
      for (const p of procs) if (p.exitCode === null) p.kill('SIGKILL');
      await temporal.teardown();
      await (await testServer()).admin.unsafe(`drop database if exists ${REPLAY_DATABASE} with (force)`);
    }
  });

  it('trader worker --replay refuses to start when no replay was started in that database', async () => {
    const other = await freshDatabase();
    try {
      await assert.rejects(joinReplay(other.sql), (e: unknown) => e instanceof UsageError && /no replay to join/.test(e.message));
    } finally {
      await other.drop();
    }
  });
});

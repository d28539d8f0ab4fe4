import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { createLogger } from '../../infra/logger';
import { createMetricsWriter } from '../../activities/metrics/writer';
import { startProcessMetrics } from '../../activities/metrics/process';
import { CcxtExchangeAdapter } from '../../activities/exchange/ccxt-adapter';
import { resilienceFor } from '../../activities/exchange/resilience';
import { MEASUREMENTS } from '../../lib/metrics';
import { freePort } from '../../testkit/db';
import { ExchangeStandin } from '../../testkit/exchange-standin';
import { startInfluxd, type InfluxTestServer } from '../../testkit/influxdb';
import { randomWalkCandles, writeCandleFile } from '../../testkit/candles';
import { embeddedStackEnv } from '../../testkit/trader-process';

/**
 * Metrics end to end, as an operator runs the bot: `trader up --replay FILES --exit-when-done`
 * (real Temporal dev server, embedded PostgreSQL, the bootstrap model through ONNX Runtime) with
 * INFLUXDB_URL pointing at a real InfluxDB (OSS 1.8.3, v2 write API and Flux) and the SDK metrics
 * endpoint on. Then: the points read back agree with the ledger; every query of the Grafana
 * dashboard, variables substituted as Grafana does, returns data from that server; and with the
 * server stopped mid-replay the replay still makes the same trades while the writer's dropped
 * counter accounts for every lost point.
 *
 * Candles: two seeded random-walk series generated here (nothing outside the repository), on which the `hybrid`
 * strategy (rules + ensemble + PPO) trades both symbols.
 */

const run = promisify(execFile);
const REPO = path.resolve(__dirname, '..', '..');
// Long enough that the replay outlives a few process-metrics samples (every 10 s): the Temporal SDK
// panels read what those samples copied, and a clean-clone CI run found them empty after the
// faster candle step made the 850-row replay short.
const ROWS = 1500;
const SYMBOLS = ['AAA/USDT', 'BBB/USDT'];
const INITIAL_CAPITAL = 10_000;

interface TradeRow {
  symbol: string;
  pnl: number;
  exitTime: number;
  exitReason: string | null;
  qty: number;
  entryTime: number;
}

interface UpRun {
  code: number | null;
  stdout: string;
  logs: Record<string, unknown>[];
  /** The SDK metrics endpoint as scraped during the run (last scrape that showed worker task metrics). */
  prometheus: string;
}

describe('metrics end to end: trader up --replay with INFLUXDB_URL set, on a real InfluxDB', function () {
  this.timeout(900_000); // `trader up --replay` with a real InfluxDB, long enough to sample process metrics
  let influx: InfluxTestServer;
  let dir: string;
  let files: string[];
  let env: NodeJS.ProcessEnv;
  let first: UpRun;
  let ledger: TradeRow[];
  let decisions: Record<string, number>;

  const trader = (args: string[], extra: NodeJS.ProcessEnv = {}) =>
    run(process.execPath, [path.join(REPO, 'bin', 'trader.js'), ...args], { env: { ...env, ...extra }, cwd: dir, maxBuffer: 64 * 1024 * 1024 });

  /** `trader up --replay`, scraping TEMPORAL_METRICS_ADDRESS while it runs; `during` is called every 250 ms. */
  async function replay(extra: NodeJS.ProcessEnv, during?: () => Promise<void>): Promise<UpRun> {
    const metricsPort = await freePort();
    const child = spawn(process.execPath, [path.join(REPO, 'bin', 'trader.js'), 'up', '--replay', ...files, '--strategy', 'hybrid', '--exit-when-done'], {
      env: { ...env, ...extra, TEMPORAL_METRICS_ADDRESS: `127.0.0.1:${metricsPort}` },
      cwd: dir,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    let done = false;
    let prometheus = '';
    const poll = (async () => {
      while (!done) {
        try {
          const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`, { signal: AbortSignal.timeout(2_000) })).text();
          if (text.includes('temporal_workflow_task_schedule_to_start_latency_count')) prometheus = text;
        } catch {
          // not serving yet, or already gone
        }
        await during?.();
        await new Promise((r) => setTimeout(r, 250));
      }
    })();
    const code = await exited;
    done = true;
    await poll;
    const logs = stdout
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.equal(code, 0, `trader up --replay failed:\n${stdout.slice(-4000)}\n${stderr.slice(-4000)}`);
    assert.match(stdout, /Replay finished/, stdout.slice(-4000));
    return { code, stdout, logs, prometheus };
  }

  const sum = (xs: number[]) => xs.reduce((a, x) => a + x, 0);

  before(async () => {
    influx = await startInfluxd();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dt-metrics-'));
    fs.chmodSync(dir, 0o755); // the embedded PostgreSQL runs as `postgres` when we are root
    files = [
      writeCandleFile(dir, { exchange: 'synthetic', symbol: 'AAA/USDT', timeframe: '1h' }, randomWalkCandles({ timeframe: '1h', count: ROWS, seed: 11 })),
      writeCandleFile(dir, { exchange: 'synthetic', symbol: 'BBB/USDT', timeframe: '1h' }, randomWalkCandles({ timeframe: '1h', count: ROWS, seed: 12, startPrice: 250 })),
    ];
    env = await embeddedStackEnv(path.join(dir, 'home'), {
      INITIAL_CAPITAL: String(INITIAL_CAPITAL),
      ...influx.env,
    });
    first = await replay({});
    ledger = JSON.parse((await trader(['trades', '--json'])).stdout) as TradeRow[];
    decisions = Object.fromEntries([...first.stdout.matchAll(/([A-Z]+\/USDT) (\d+) decisions/g)].map((m) => [m[1], Number(m[2])]));
  });
  after(async () => {
    await influx?.close();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  const flux = (q: string) => influx.flux(q);
  const replayed = (bucket: string, measurement: string, field: string) =>
    `from(bucket: "${bucket}") |> range(start: 0) |> filter(fn: (r) => r._measurement == "${measurement}" and r.account == "replay" and r._field == "${field}")`;

  it('writes points that agree with the ledger: trade count and PnL sum per symbol, the last equity, one decision per decided candle', async () => {
    assert.ok(ledger.length >= 4, `the replay should trade (got ${ledger.length} trades)`);
    assert.deepEqual(new Set(ledger.map((t) => t.symbol)), new Set(SYMBOLS), 'both symbols trade');

    const counts = await flux(`${replayed('trading_bot', 'trade', 'pnl')} |> group(columns: ["symbol"]) |> count()`);
    const sums = await flux(`${replayed('trading_bot', 'trade', 'pnl')} |> group(columns: ["symbol"]) |> sum()`);
    for (const symbol of SYMBOLS) {
      const mine = ledger.filter((t) => t.symbol === symbol);
      assert.equal(Number(counts.find((r) => r.symbol === symbol)?._value), mine.length, `${symbol}: trade points vs ledger trades`);
      const pnl = Number(sums.find((r) => r.symbol === symbol)?._value);
      assert.ok(Math.abs(pnl - sum(mine.map((t) => t.pnl))) < 1e-6, `${symbol}: PnL ${pnl} in InfluxDB, ${sum(mine.map((t) => t.pnl))} in the ledger`);
    }
    const [lastEquity] = await flux(`${replayed('trading_bot', 'equity', 'equity')} |> last()`);
    const expected = INITIAL_CAPITAL + sum(ledger.map((t) => t.pnl));
    assert.ok(Math.abs(Number(lastEquity._value) - expected) < 1e-6, `last equity ${String(lastEquity._value)}, the ledger says ${expected}`);

    const [exitTimes] = await flux(`${replayed('trading_bot', 'trade', 'pnl')} |> group() |> keep(columns: ["_time"]) |> sort(columns: ["_time"]) |> last(column: "_time")`);
    assert.equal(new Date(String(exitTimes._time)).getTime(), Math.max(...ledger.map((t) => t.exitTime)), 'trade points carry the replayed exit time');

    const decided = await flux(`${replayed('trading_bot', 'decision', 'action_code')} |> group(columns: ["symbol"]) |> count()`);
    for (const symbol of SYMBOLS) assert.equal(Number(decided.find((r) => r.symbol === symbol)?._value), decisions[symbol], `${symbol}: one decision point per decision`);
    const orders = await flux(`${replayed('trading_bot', 'order', 'count')} |> group(columns: ["status"]) |> sum()`);
    const byStatus = Object.fromEntries(orders.map((r) => [r.status, Number(r._value)]));
    assert.ok(byStatus.placed >= 2 * ledger.length && byStatus.filled >= 2 * ledger.length, `orders placed and filled: ${JSON.stringify(byStatus)}`);
    const [outcomes] = await flux(`${replayed('trading_bot', 'model_outcome', 'hit')} |> group() |> count()`);
    // Every decided candle's prediction is scored once its 4-candle horizon closed, except the last 4 of each series.
    assert.equal(Number(outcomes._value), sum(SYMBOLS.map((s) => decisions[s] - 4)), 'every prediction is scored once its horizon passed');

    const closed = first.logs.find((l) => l.msg === 'metrics writer closed' || l.msg === 'metrics writer closed: some points were dropped');
    assert.ok(!closed || closed.dropped === 0, `nothing dropped with the server up: ${JSON.stringify(closed)}`);
  });

  it('served the Temporal SDK metrics on TEMPORAL_METRICS_ADDRESS while it ran, with the worker task metrics and its own counters', () => {
    const p = first.prometheus;
    assert.ok(p, 'the endpoint answered with worker metrics during the replay');
    for (const name of ['temporal_workflow_task_schedule_to_start_latency_bucket', 'temporal_workflow_task_execution_latency_count', 'temporal_activity_execution_latency_count', 'temporal_worker_task_slots_available']) {
      assert.match(p, new RegExp(`^${name}\\{[^}]*task_queue="trading"`, 'm'), `${name} for the trading task queue`);
    }
    assert.match(p, /^trader_metrics_points_written\{[^}]*measurement="decision"[^}]*\} [1-9]/m, "the writer's own counter is on the same endpoint");
  });

  it('answers every query of every dashboard panel, and its variables, with data (Flux as Grafana sends it)', async () => {
    // A replay has no exchange circuit breaker (its market is a file): the breaker panel's data
    // comes from a real ccxt adapter whose breaker a local exchange stand-in opens, sampled by the
    // same process metrics a worker runs.
    const standin = await ExchangeStandin.start({ markets: [{ csvPath: files[0] }] });
    const writer = createMetricsWriter(influx.target, createLogger({ level: 'silent' }), { flushIntervalMs: 100 });
    try {
      const resilience = resilienceFor('binance:metrics-test', { maxRetries: 0, breakerThreshold: 2, halfOpenAfterMs: 60_000 });
      const adapter = CcxtExchangeAdapter.create({ exchangeId: 'binance', apiUrl: standin.url, timeoutMs: 3_000, rateLimitMs: 1, ccxtOptions: { fetchMarkets: { types: ['spot'] } } }, { resilience, log: createLogger({ level: 'silent' }) });
      standin.inject({ path: '/api/v3/klines', times: 2, fault: { kind: 'status', status: 503 } });
      for (let i = 0; i < 2; i++) await adapter.fetchCandles('AAA/USDT', '1h').catch(() => undefined);
      assert.equal(adapter.breakerState().state, 'open');
      const sampler = startProcessMetrics({ writer, log: createLogger({ level: 'silent' }), worker: 'trading', intervalMs: 60_000 });
      await sampler.stop();
      await writer.close();
    } finally {
      await standin.close();
    }

    const dashboard = JSON.parse(fs.readFileSync(path.join(REPO, 'deploy', 'grafana', 'dashboards', 'durable-trader.json'), 'utf8')) as {
      templating: { list: Array<{ name: string; query: string }> };
      panels: Array<{ type: string; title: string; targets?: Array<{ refId: string; query: string }> }>;
    };
    // Grafana's Flux macros and variable formats, replaced as Grafana replaces them before sending.
    const grafana = (q: string) =>
      q
        .replace(/v\.defaultBucket/g, '"trading_bot"')
        .replace(/v\.timeRangeStart/g, '1970-01-01T00:00:00Z')
        .replace(/v\.timeRangeStop/g, 'now()')
        .replace(/v\.windowPeriod/g, '1h')
        .replace(/\$\{account\}/g, 'replay')
        .replace(/\$\{symbol:json\}/g, JSON.stringify(SYMBOLS));

    const variables = Object.fromEntries(await Promise.all(dashboard.templating.list.map(async (v) => [v.name, (await flux(grafana(v.query))).map((r) => r._value)] as const)));
    assert.deepEqual(variables.account, ['replay']);
    assert.deepEqual([...(variables.symbol as string[])].sort(), SYMBOLS);

    const queries = dashboard.panels.filter((p) => p.type !== 'row').flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p.title, refId: t.refId, query: t.query })));
    assert.ok(queries.length >= 20, `${queries.length} panel queries`);
    for (const q of queries) assert.doesNotMatch(q.query, /\$(?!\{(account|symbol:json)\})|\bv\.(?!defaultBucket|timeRangeStart|timeRangeStop|windowPeriod)\w+/, `${q.panel} ${q.refId}: only the dashboard's variables and Grafana's Flux macros`);
    const empty: string[] = [];
    for (const q of queries) {
      const rows = await flux(grafana(q.query)).catch((err: { body?: string; message?: string }) => {
        throw new Error(`panel "${q.panel}" query ${q.refId} fails: ${err.body ?? err.message}\n${grafana(q.query)}`);
      });
      if (rows.length === 0) empty.push(`${q.panel} (${q.refId})`);
    }
    assert.deepEqual(empty, [], 'panels whose query returned no data');
    const measured = new Set(queries.flatMap((q) => [...q.query.matchAll(/_measurement == "(\w+)"/g)].map((m) => m[1])));
    const unused = Object.keys(MEASUREMENTS).filter((m) => !measured.has(m) && m !== 'retrain');
    assert.deepEqual(unused, [], 'every measurement but retrain has a panel');
  });

  it('with InfluxDB stopped mid-replay, the replay makes the same trades and the dropped counter accounts for every lost point', async () => {
    await influx.createDatabase('outage');
    let stoppedAt: number | undefined;
    const outage = await replay({ INFLUXDB_BUCKET: 'outage', LOG_LEVEL: 'warn' }, async () => {
      if (stoppedAt !== undefined || !influx.running()) return;
      // Mid-replay: once the first hundred decisions have reached InfluxDB.
      const [n] = await flux(`${replayed('outage', 'decision', 'action_code')} |> group() |> count()`).catch(() => [] as Record<string, unknown>[]);
      if (n && Number(n._value) >= 100) {
        await influx.stop();
        stoppedAt = Number(n._value);
      }
    });
    assert.ok(stoppedAt !== undefined, 'InfluxDB was stopped during the replay');
    const trades = JSON.parse((await trader(['trades', '--json'])).stdout) as TradeRow[];
    // Same decisions: symbol, entry and exit candle, exit reason. Sizes to 1e-5 relative: the
    // ensemble scores the symbols' rows in one ONNX batch when their calls meet in one event-loop
    // turn (models/inference.ts), and a batch of one or two differs in float32's last bits, which
    // the confidence-scaled size carries; a replay with a model strategy is reproducible to that.
    const key = (t: TradeRow) => [t.symbol, t.entryTime, t.exitTime, t.exitReason].join('|');
    const byKey = (ts: TradeRow[]) => new Map(ts.map((t) => [key(t), t]));
    assert.deepEqual([...byKey(trades).keys()].sort(), [...byKey(ledger).keys()].sort(), 'the same trades as the run with InfluxDB up');
    for (const [k, t] of byKey(trades)) {
      const u = byKey(ledger).get(k)!;
      assert.ok(Math.abs(t.qty - u.qty) <= 1e-5 * u.qty && Math.abs(t.pnl - u.pnl) <= 1e-5 * Math.max(1, Math.abs(u.pnl)), `${k}: qty ${t.qty} vs ${u.qty}, pnl ${t.pnl} vs ${u.pnl}`);
    }

    const closed = outage.logs.find((l) => l.msg === 'metrics writer closed: some points were dropped') as { dropped: number; droppedBy: Record<string, number>; written: number } | undefined;
    assert.ok(closed, `the writer reports what it dropped when it closes:\n${outage.stdout.slice(-3000)}`);
    assert.ok(outage.logs.some((l) => l.msg === 'metrics points dropped (trading is not affected)' && l.level === 'warn'), 'and warned while it happened');

    await influx.start();
    const counted = async (measurement: string, field: string) => Number((await flux(`${replayed('outage', measurement, field)} |> group() |> count()`))[0]?._value ?? 0);
    const tradePoints = await counted('trade', 'pnl');
    const decisionPoints = await counted('decision', 'action_code');
    assert.ok(decisionPoints >= 100 && decisionPoints < sum(Object.values(decisions)), `decisions written before the outage: ${decisionPoints}`);
    assert.equal(decisionPoints + (closed.droppedBy.decision ?? 0), sum(Object.values(decisions)), 'decision points written + dropped = decisions made');
    assert.equal(tradePoints + (closed.droppedBy.trade ?? 0), trades.length, 'trade points written + dropped = trades in the ledger');
    assert.ok((closed.droppedBy.decision ?? 0) > 0, `points were lost: ${JSON.stringify(closed.droppedBy)}`);
  });
});

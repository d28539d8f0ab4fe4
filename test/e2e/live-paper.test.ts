import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { CcxtExchangeAdapter } from '../../activities/exchange/ccxt-adapter';
import { ExchangeResilience } from '../../activities/exchange/resilience';
import { engineConfigs } from '../../control/start-trading';
import { parseConfig } from '../../infra/config';
import { createLogger } from '../../infra/logger';
import { CandleStore } from '../../ledger/candle-store';
import type { Candle } from '../../lib/candles';
import { symbolWorkflowId, type SymbolStateView } from '../../lib/contracts/trading';
import { stateQuery } from '../../workflows/messages';
import { freePort, freshDatabase, type TestDatabase } from '../../testkit/db';
import { ExchangeStandin } from '../../testkit/exchange-standin';
import { sampledMarketCandles } from '../../testkit/candles';
import { liveEntrySeries, type LiveEntrySeries } from '../../testkit/live-market';

/**
 * Paper trading on live market data, end to end and on the wall clock: `trader up` as a real
 * process in paper mode (DRY_RUN=true, not a replay), its real workflows, worker, Temporal dev
 * server and ledger, and the real ccxt binance client reaching a local stand-in of Binance's REST
 * API through EXCHANGE_API_URL. The stand-in serves generated 1m candles re-timed onto the live
 * clock (testkit/live-market.ts chose them so that the `rules` strategy, started fresh,
 * enters on the second candle close after start-up), then goes down for two candles and publishes
 * one candle late.
 */

const M = 60_000;
const SYMBOL = 'BTC/USDT';
const WORKFLOW_ID = symbolWorkflowId('binance', SYMBOL);
const ACCOUNT = 'paper-binance';
const REPO = path.resolve(__dirname, '..', '..');
// How long after a close the trader asks for the candle (control/start-trading candleDelayMs).
const CANDLE_DELAY_MS = 5_000;
// "On time": seen decided within the close + CANDLE_DELAY_MS + this (the read, the decision, the
// orders, and our 250 ms polling), on a machine whose two cores other work shares.
const ON_TIME_MS = 5_000;
// The late candle is published this long after its close; the trader asks again every 5 s.
const LATE_MS = 20_000;
const LATE_RETRY_MS = 5_000;

describe('ccxt adapter: closed means closed when the request was sent', () => {
  it('a candle that closes while its request is in flight comes back still forming and is not taken as closed', async () => {
    const first = Date.UTC(2025, 0, 1);
    const candles = sampledMarketCandles(SYMBOL, M, first, 10, 0);
    const close = candles[8].timestamp + M; // candle 8 closes here; 9 is never served
    const standin = await ExchangeStandin.start({ markets: [{ candles: candles.slice(0, 9), symbol: SYMBOL, timeframe: '1m' }], now: close - 1 });
    try {
      let clock = close - 1;
      const a = CcxtExchangeAdapter.create(
        { exchangeId: 'binance', apiUrl: standin.url, rateLimitMs: 1, ccxtOptions: { fetchMarkets: { types: ['spot'] } } },
        { resilience: new ExchangeResilience('binance-inflight', {}, createLogger({ level: 'silent' })), now: () => clock, log: createLogger({ level: 'silent' }) },
      );
      await a.loadMarkets();
      // The answer is built when the request arrives (candle 8 still forming: its open price only), and our clock passes its close before it is back.
      standin.inject({ path: '/api/v3/klines', fault: { kind: 'delay', ms: 300 } });
      const pending = a.fetchCandles(SYMBOL, '1m', undefined, 3);
      await new Promise((r) => setTimeout(r, 100));
      clock = close + 1;
      const got = await pending;
      assert.deepEqual(
        got.map((c) => c.timestamp),
        [5, 6, 7].map((i) => candles[i].timestamp),
        'candle 8 is not in the answer, though it has closed by the time the answer came',
      );
      // Asked again now, it is closed and served whole.
      standin.now = close + 1;
      assert.deepEqual((await a.fetchCandles(SYMBOL, '1m', undefined, 1))[0], candles[8]);
    } finally {
      await standin.close();
    }
  });

  it('a retry sent after the close is judged by its own sending time: the candle closed meanwhile comes back final', async () => {
    const first = Date.UTC(2025, 0, 1);
    const candles = sampledMarketCandles(SYMBOL, M, first, 10, 0);
    const close = candles[8].timestamp + M;
    const standin = await ExchangeStandin.start({ markets: [{ candles: candles.slice(0, 9), symbol: SYMBOL, timeframe: '1m' }], now: close - 1 });
    try {
      let clock = close - 1;
      // The retry waits 0.5 to 1 s: time to move both clocks past the close once the first attempt failed.
      const resilience = new ExchangeResilience('binance-retry', { initialDelayMs: 1000 }, createLogger({ level: 'silent' }));
      const a = CcxtExchangeAdapter.create(
        { exchangeId: 'binance', apiUrl: standin.url, rateLimitMs: 1, ccxtOptions: { fetchMarkets: { types: ['spot'] } } },
        { resilience, now: () => clock, log: createLogger({ level: 'silent' }) },
      );
      await a.loadMarkets();
      standin.inject({ path: '/api/v3/klines', fault: { kind: 'status', status: 503 } });
      const pending = a.fetchCandles(SYMBOL, '1m', undefined, 3);
      while (resilience.stats.retries === 0) await new Promise((r) => setTimeout(r, 1));
      clock = close + 1;
      standin.now = close + 1;
      const got = await pending;
      assert.equal(resilience.stats.retries, 1, 'one retry');
      assert.deepEqual(
        got.map((c) => c.timestamp),
        [6, 7, 8].map((i) => candles[i].timestamp),
        'candle 8 closed before the retry was sent, and is in its answer',
      );
      assert.deepEqual(got[2], candles[8]);
    } finally {
      await standin.close();
    }
  });
});

interface Sample {
  at: number;
  view: SymbolStateView;
}

/** Every decision the symbol workflow reports, by polling its state query (as `trader status` does). */
class DecisionWatch {
  readonly samples: Sample[] = [];
  /** Candle open time -> when its decision was first seen, and the decision count then. */
  readonly decided = new Map<number, { seenAt: number; count: number; action: string; reason: string }>();
  readonly breakerSeen: Array<{ at: number; state: string }> = [];
  private stopped = false;
  private readonly done: Promise<void>;

  constructor(private readonly client: Client) {
    this.done = this.loop();
  }

  private async loop(): Promise<void> {
    const handle = this.client.workflow.getHandle(WORKFLOW_ID);
    while (!this.stopped) {
      try {
        const view = await handle.query(stateQuery);
        const at = Date.now();
        this.samples.push({ at, view });
        const d = view.lastDecision;
        if (d && !this.decided.has(d.candleTime)) this.decided.set(d.candleTime, { seenAt: at, count: view.decisions, action: d.action, reason: d.reason });
        const b = view.exchangeBreaker?.state;
        if (b && this.breakerSeen.at(-1)?.state !== b) this.breakerSeen.push({ at, state: b });
      } catch {
        // not started yet
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  last(): SymbolStateView | undefined {
    return this.samples.at(-1)?.view;
  }

  async until<T>(what: string, deadline: number, probe: () => T | undefined | false): Promise<T> {
    for (;;) {
      const v = probe();
      if (v) return v;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; decided so far: ${JSON.stringify([...this.decided.entries()].map(([t, d]) => [new Date(t).toISOString(), d]))}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.done;
  }
}

function cli(env: Record<string, string>, args: string[]): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [path.join(REPO, 'bin', 'trader.js'), ...args], { env: { ...process.env, LOG_LEVEL: 'warn', ...env }, cwd: env.TRADER_HOME, timeout: 120_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: stdout + stderr }),
    );
  });
}

const iso = (ms: number) => new Date(ms).toISOString();

describe('trader up in paper mode on the live clock (1m candles from a local exchange stand-in, through ccxt)', function () {
  // About 8 minutes of wall clock: start-up, four decided closes, two candles down, one late.
  this.timeout(15 * M);
  let db: TestDatabase;
  let home: string;
  let env: Record<string, string>;
  let series: LiveEntrySeries;
  let standin: ExchangeStandin;
  let child: ChildProcess | undefined;
  let output = '';
  let connection: Connection | undefined;

  before(async () => {
    const cfg = parseConfig({ SYMBOLS: SYMBOL, TIMEFRAME: '1m' });
    const [engine] = engineConfigs(cfg, [SYMBOL], '1m', 'rules');
    const capital = cfg.risk.initialCapital;
    series = liveEntrySeries({
      engine,
      workflowId: WORKFLOW_ID,
      // What the trader's entry gate sees from a fresh ledger.
      portfolio: { openPositions: 0, totalExposure: 0, equity: capital, peakEquity: capital, dayStartEquity: capital, dailyPnl: 0 },
      // More than the feature cache asks for before its first decision (1,000 candles and a margin).
      history: 1300,
      after: 8,
      variant: 1,
    });
    standin = await ExchangeStandin.start({
      markets: [{ candles: series.candles, symbol: SYMBOL, timeframe: '1m', retimeAtFirstRequest: { lastClosedIndex: series.first } }],
      clock: Date.now,
    });
    db = await freshDatabase();
    home = fs.mkdtempSync(path.join(os.tmpdir(), 'dt-live-'));
    fs.chmodSync(home, 0o755);
    env = {
      TRADER_HOME: home,
      DATABASE_URL: db.url,
      TEMPORAL_PORT: String(await freePort()),
      TEMPORAL_UI_PORT: String(await freePort()),
      EXCHANGE: 'binance',
      EXCHANGE_API_URL: standin.url,
      SYMBOLS: SYMBOL,
      TIMEFRAME: '1m',
      DRY_RUN: 'true',
      STRATEGY: 'rules',
    };
    delete process.env.TEMPORAL_ADDRESS;
  });

  after(async () => {
    await connection?.close().catch(() => undefined);
    if (child && child.exitCode === null) {
      child.kill('SIGKILL');
      await new Promise((r) => child!.once('exit', r));
    }
    await standin?.close();
    await db?.drop();
    if (home) fs.rmSync(home, { recursive: true, force: true });
  });

  it('decides every candle close on time, enters where the strategy says, rides out two candles of outage and a late candle, and keeps the ledger, the candle store and equity snapshots', async () => {
    child = spawn(process.execPath, [path.join(REPO, 'bin', 'trader.js'), 'up'], { cwd: home, env: { ...process.env, LOG_LEVEL: 'warn', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
    const exited = new Promise<number | null>((resolve) => child!.on('exit', (code) => resolve(code)));
    const startedAt = Date.now();

    // Start-up ends with the symbol workflow's first candle read: the stand-in re-times its series then.
    for (;;) {
      if (standin.retimedAt(SYMBOL) !== undefined) break;
      if (child.exitCode !== null) assert.fail(`trader up exited (${child.exitCode}):\n${output}`);
      if (Date.now() - startedAt > 4 * M) assert.fail(`no candle read within 4 minutes:\n${output}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const startup = Date.now() - startedAt;
    const served: Candle[] = standin.servedCandles(SYMBOL);
    const open = (i: number) => served[i].timestamp;
    const close = (i: number) => served[i].timestamp + M;
    const F = series.first;
    const E = series.entry;
    assert.equal(E, F + 2);
    connection = await Connection.connect({ address: `127.0.0.1:${env.TEMPORAL_PORT}` });
    const watch = new DecisionWatch(new Client({ connection }));
    const decidedOn = () => [...watch.decided.keys()].map((t) => served.findIndex((c) => c.timestamp === t));
    const klinesReads = (from: number, to: number) => standin.requests.filter((r) => r.path === '/api/v3/klines' && r.query.limit === '3' && r.query.startTime === undefined && r.at >= from && r.at < to);

    try {
      // 1. The first decision at start-up (the candle that had just closed), then three closes on
      //    time; the strategy enters on the second of them.
      await watch.until(`the decision on candle F+3 (${iso(open(E + 1))})`, close(E + 1) + 60_000, () => watch.decided.has(open(E + 1)));
      // 2. The stand-in goes down right away: every request's connection is dropped.
      standin.inject({ fault: { kind: 'drop' }, times: Infinity });
      const downAt = Date.now();
      assert.ok(downAt < close(E + 2) + CANDLE_DELAY_MS, `down before candle E+2 is asked for (${iso(downAt)})`);
      assert.deepEqual(decidedOn(), [F, F + 1, E, E + 1], 'each candle decided once, in order');
      assert.deepEqual(
        [F, F + 1, E, E + 1].map((i) => watch.decided.get(open(i))!.count),
        [1, 2, 3, 4],
        'one decision per candle',
      );
      const lags = [F + 1, E, E + 1].map((i) => watch.decided.get(open(i))!.seenAt - close(i));
      for (const [k, lag] of lags.entries()) {
        assert.ok(lag >= CANDLE_DELAY_MS - 1000 && lag <= CANDLE_DELAY_MS + ON_TIME_MS, `candle ${k + 1} after start-up decided ${lag} ms after its close (bound: ${CANDLE_DELAY_MS} + ${ON_TIME_MS} ms)`);
      }
      const atEntry = watch.decided.get(open(E))!;
      assert.deepEqual(
        [F, F + 1, E].map((i) => watch.decided.get(open(i))!.action),
        series.decisions.map((d) => d.action),
        `the live decisions are the offline ones (${series.decisions.map((d) => d.reason).join(' / ')})`,
      );
      assert.equal(atEntry.action, 'enter');

      // The entry order and its fill are in the ledger, placed once at the entry candle's close.
      const entryId = series.entryIntent.clientOrderId;
      const entryOrder = await db.ledger.getOrder(entryId);
      assert.ok(entryOrder, `entry order ${entryId} in the ledger`);
      assert.equal(entryOrder.status, 'filled');
      assert.equal(entryOrder.exchange, 'paper');
      assert.equal(entryOrder.workflowId, WORKFLOW_ID);
      assert.ok(Math.abs(Number(entryOrder.qty) - series.entryIntent.qty) / series.entryIntent.qty < 1e-3, `qty ${entryOrder.qty} is the engine's ${series.entryIntent.qty} fitted to the market`);
      const fills = await db.sql<{ qty: string; price: string; fee: string; ts: Date }[]>`select f.qty::text, f.price::text, f.fee::text, f.ts from fills f join orders o on o.id = f.order_id where o.client_order_id = ${entryId}`;
      assert.equal(fills.length, 1, 'one fill');
      assert.ok(Math.abs(Number(fills[0].price) / served[E].close - 1) < 0.005, `filled at ${fills[0].price}, the entry candle's close ${served[E].close} with the paper exchange's slippage`);
      assert.ok(Number(fills[0].fee) > 0, 'a taker fee');
      assert.ok(fills[0].ts.getTime() >= close(E) && fills[0].ts.getTime() < close(E) + CANDLE_DELAY_MS + ON_TIME_MS, `filled at ${fills[0].ts.toISOString()}, just after the entry candle's close`);
      const protective = await db.sql<{ client_order_id: string; type: string; status: string }[]>`select client_order_id, type, status from orders where decision_seq = 3 and client_order_id <> ${entryId} order by id`;
      assert.deepEqual(protective.map((o) => o.type).sort(), ['limit', 'stop_market'], 'a stop and a target rest after the entry');

      // 3. Down for two candles: the breaker opens (and operators see it), nothing is decided.
      // The late candle (E+4) is set up now: published LATE_MS after its close.
      standin.publishLate(SYMBOL, open(E + 4), close(E + 4) + LATE_MS);
      const upAgainAt = close(E + 3) + CANDLE_DELAY_MS + 5_000;
      const opened = await watch.until('the breaker open', upAgainAt, () => watch.breakerSeen.find((b) => b.state === 'open'));
      const status = await cli(env, ['status']);
      await new Promise((r) => setTimeout(r, Math.max(0, upAgainAt - Date.now())));
      standin.clearFaults();
      const upAt = Date.now();
      assert.equal(status.code, 0, status.out);
      assert.match(status.out, /exchange circuit breaker: open since .* after \d+ failures/, `trader status during the outage:\n${status.out}`);
      assert.ok(opened.at > downAt && opened.at < upAt, `the breaker opened during the outage (${JSON.stringify(watch.breakerSeen)})`);
      assert.ok(watch.samples.filter((s) => s.at > downAt && s.at < upAt).every((s) => s.view.decisions === 4), 'no decision while the exchange was down');
      assert.ok(/circuit breaker open/i.test(output) || /exchange circuit breaker opened/.test(output), 'the breaker opening is logged');

      // 4. Back: the newest closed candle (E+3) is decided once; E+2, which closed while down, never.
      await watch.until('the decision after the outage', upAt + 60_000, () => watch.decided.has(open(E + 3)));
      const recovered = watch.decided.get(open(E + 3))!;
      assert.equal(recovered.count, 5, 'one decision when it came back');
      assert.ok(!watch.decided.has(open(E + 2)), 'the candle that closed while the exchange was down is not decided on late');
      await watch.until('the breaker closed again', upAt + 60_000, () => watch.last()?.exchangeBreaker?.state === 'closed');

      // 5. The late candle: asked for at its close + delay, again every few seconds, decided once when it appears.
      const published = close(E + 4) + LATE_MS;
      await watch.until('the decision on the late candle', published + 45_000, () => watch.decided.has(open(E + 4)));
      const late = watch.decided.get(open(E + 4))!;
      const asks = klinesReads(close(E + 4), published);
      assert.ok(asks.length >= 2, `asked for again while it was late (${asks.length} reads between its close and its publication)`);
      assert.ok(late.seenAt >= published, 'not decided before it was published');
      assert.ok(late.seenAt - published <= LATE_RETRY_MS + ON_TIME_MS, `decided ${late.seenAt - published} ms after it was published`);
      assert.equal(late.count, 6, 'decided once');
      await new Promise((r) => setTimeout(r, 2_000));
      assert.equal(watch.last()?.decisions, 6, 'and not again');
    } finally {
      await watch.stop();
    }
    assert.deepEqual(decidedOn(), [F, F + 1, E, E + 1, E + 3, E + 4]);

    // 6. The closed candles it read are in the candle store, exactly as served; none still forming.
    const stored = await new CandleStore(db.sql).candles('binance', SYMBOL, '1m');
    const byTime = new Map(served.map((c) => [c.timestamp, c]));
    for (const c of stored) assert.deepEqual(c, byTime.get(c.timestamp), `stored candle ${iso(c.timestamp)} is the served one`);
    const storedTimes = new Set(stored.map((c) => c.timestamp));
    for (let i = F - 999; i <= E + 4; i++) assert.ok(storedTimes.has(open(i)), `candle ${i - F} (${iso(open(i))}) is stored`);
    assert.ok(stored.every((c) => c.timestamp <= open(E + 4)), 'nothing newer than the last closed candle');

    // 7. Equity snapshots: one per portfolio check (every minute), equity = cash + exposure, the position in them.
    const curve = await db.ledger.equityCurve({ account: ACCOUNT });
    const minutes = (Date.now() - startedAt - startup) / M;
    assert.ok(curve.length >= Math.floor(minutes) - 1, `${curve.length} snapshots in ${minutes.toFixed(1)} minutes of trading`);
    for (const s of curve) {
      assert.ok(Math.abs(Number(s.cash) + Number(s.exposure) - Number(s.equity)) < 1e-6, `equity = cash + exposure at ${s.ts.toISOString()}`);
      assert.ok(s.drawdown !== null && Number(s.drawdown) >= 0 && Number(s.drawdown) < 0.05, `drawdown ${s.drawdown}`);
    }
    const [position] = await db.sql<{ opened_at: Date; closed_at: Date | null }[]>`select opened_at, closed_at from positions where symbol = ${SYMBOL} order by id limit 1`;
    assert.ok(position, 'the entry opened a position');
    const before = curve.filter((s) => s.ts < position.opened_at);
    const during = curve.filter((s) => s.ts > position.opened_at && (position.closed_at === null || s.ts < position.closed_at));
    assert.ok(before.every((s) => Number(s.exposure) === 0 && Number(s.cash) === 10_000), 'flat before the entry: all cash');
    assert.ok(during.length > 0, 'a snapshot while the position was open');
    assert.ok(during.every((s) => Number(s.exposure) > 0 && Number(s.cash) < 10_000), 'the position in exposure, its cost out of cash');

    const status = await cli(env, ['status']);
    assert.equal(status.code, 0, status.out);
    assert.match(status.out, /^equity [\d.]+ \(cash [\d.]+, exposure [\d.]+\), drawdown [\d.]+ % from peak [\d.]+; snapshot .* UTC$/m, status.out);
    const equity = await cli(env, ['equity', '--since', '1h', '--every', '1m', '--json']);
    assert.equal(equity.code, 0, equity.out);
    const history = JSON.parse(equity.out) as { account: string; snapshots: number; rows: unknown[] };
    assert.equal(history.account, ACCOUNT);
    assert.ok(history.snapshots >= curve.length, 'trader equity reads the same snapshots');

    child.kill('SIGINT');
    assert.equal(await exited, 0, output);
    console.log(
      `      start-up ${(startup / 1000).toFixed(1)} s; decided ${[...watch.decided.values()].map((d, k) => `#${k + 1} ${d.action}`).join(', ')}; ` +
        `on-time lags ${[F + 1, E, E + 1].map((i) => `${watch.decided.get(open(i))!.seenAt - close(i)} ms`).join(', ')}; ` +
        `late candle decided ${watch.decided.get(open(E + 4))!.seenAt - close(E + 4)} ms after its close; ${curve.length} equity snapshots; total ${((Date.now() - startedAt) / 1000).toFixed(0)} s`,
    );
  });
});

import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Candle } from '../../lib/candles';
import { computeFeatureMatrix, FEATURE_SCHEMA, featureRow } from '../../lib/features';
import { createLogger } from '../../infra/logger';
import { clientOrderId, clientOrderIdPrefix, engineConfig, initialSymbolState, settle, type OrderIntent, type SymbolState } from '../../lib/engine';
import { barReturns, BacktestInputError, computeMetrics, maxDrawdown, sharpeRatio, sortinoRatio, type BacktestResult } from '../../lib/backtest';
import { FeatureCache, FeatureCacheError } from '../../lib/features/cache';
import { executeIntentsStep, InvalidIntentError, prepareCandleStep, type TradeRecorder } from '../../lib/trading/candle-io';
import { ExchangeNetworkError } from '../../lib/exchange/errors';
import { InMemoryPaperStateStore } from '../../lib/exchange/paper-state';
import { PaperExchange } from '../../lib/exchange/paper-exchange';
import { ReplayMarketData } from '../../lib/exchange/replay-market-data';
import { spotMarket, StaticMarketCatalog } from '../../lib/exchange/markets';
import type { ExchangeAdapter } from '../../lib/exchange/types';
import { readCandleCsv } from '../../infra/candle-files';
import { runBacktest } from '../../backtester/run';
import { PostgresPaperStateStore } from '../../activities/exchange/paper-state-pg';
import { freshDatabase } from '../../testkit/db';
import { fixtureCandleFile } from '../../testkit/fixtures';

const BTC = fixtureCandleFile('fixture_BTC-USDT_1h.csv');
const ETH = fixtureCandleFile('synthetic_ETH-USDT_1h.csv');
const HOUR = 3_600_000;
const { warmup } = FEATURE_SCHEMA;
const btc = readCandleCsv(BTC).candles;
const eth = readCandleCsv(ETH).candles;

const sameVector = (a: ArrayLike<number>, b: ArrayLike<number>, what: string) => {
  assert.equal(a.length, b.length, what);
  for (let j = 0; j < a.length; j++) if (!Object.is(a[j], b[j])) assert.fail(`${what}: ${FEATURE_SCHEMA.names[j]} ${a[j]} != ${b[j]}`);
};

const allClosed = (symbol: string, candles: Candle[]) => new ReplayMarketData({ now: () => Number.MAX_SAFE_INTEGER }).addCandles(symbol, '1h', candles);

describe('feature cache', () => {
  const matrix = computeFeatureMatrix(btc);

  it('streamed candle by candle, equals computeFeatureMatrix over the same candles bit for bit', async () => {
    const cache = new FeatureCache({ source: allClosed('BTC/USDT', btc), history: 'all' });
    assert.equal(await cache.vectorAt('BTC/USDT', '1h', btc[warmup - 1]), null, 'warm-up gives no vector');
    for (let i = warmup; i < btc.length; i++) {
      const v = await cache.vectorAt('BTC/USDT', '1h', btc[i], btc[i - 1].timestamp);
      assert.ok(v, `vector at ${i}`);
      sameVector(v, featureRow(matrix, i - warmup), `row ${i - warmup}`);
    }
    assert.equal(cache.stats.rebuilds, 1, 'one cold start, then pushes only');
    assert.equal(cache.stats.pushes, btc.length - warmup + warmup);
  });

  it('a cold cache (restarted worker) rebuilds from the start of the data and gives the same vectors', async () => {
    for (const i of [warmup, 777, 2_500, btc.length - 1]) {
      const cache = new FeatureCache({ source: allClosed('BTC/USDT', btc), history: 'all', pageSize: 700 });
      sameVector((await cache.vectorAt('BTC/USDT', '1h', btc[i], btc[i - 1].timestamp)) as number[], featureRow(matrix, i - warmup), `cold at ${i}`);
      // Not the next candle (one skipped): rebuilt, still exact.
      sameVector((await cache.vectorAt('BTC/USDT', '1h', btc[Math.min(i + 2, btc.length - 1)], btc[i + 1]?.timestamp)) as number[], featureRow(matrix, Math.min(i + 2, btc.length - 1) - warmup), `skip at ${i}`);
    }
  });

  it('live: a window of the last N candles equals the matrix over that window', async () => {
    const cache = new FeatureCache({ source: allClosed('BTC/USDT', btc), history: { candles: 1000 }, pageSize: 300 });
    // 1,000 spans the file's first gaps (December 2020): the window counts candles, not hours.
    for (const i of [1_000, 1_500, 4_000]) {
      const v = await cache.vectorAt('BTC/USDT', '1h', btc[i]);
      const window = computeFeatureMatrix(btc.slice(i - 999, i + 1));
      sameVector(v as number[], featureRow(window, window.rowCount - 1), `window at ${i}`);
    }
  });

  it('refuses a candle the market data does not have', async () => {
    const cache = new FeatureCache({ source: allClosed('BTC/USDT', btc), history: 'all' });
    await assert.rejects(cache.vectorAt('BTC/USDT', '1h', { ...btc[900], timestamp: btc[900].timestamp + 1 }), FeatureCacheError);
  });
});

/** A paper exchange over one recorded series with a settable clock, as the backtester builds it. */
function paperOver(symbol: string, candles: Candle[], cash = 10_000) {
  const clock = { now: 0 };
  const data = new ReplayMarketData({ now: () => clock.now }).addCandles(symbol, '1h', candles);
  const market = spotMarket(symbol);
  const store = new InMemoryPaperStateStore();
  const exchange = new PaperExchange({
    account: `test/${symbol}`,
    store,
    marketData: data,
    markets: new StaticMarketCatalog([market]),
    timeframe: '1h',
    initialBalances: { [market.quote]: cash },
    now: () => clock.now,
    log: createLogger({ level: 'silent' }),
  });
  const features = new FeatureCache({ source: data, history: 'all' });
  const replay = { candles: () => candles, setNow: (ms: number) => void (clock.now = ms) };
  return { clock, data, exchange, features, replay, store };
}

describe('prepareCandleStep and executeIntentsStep against the paper exchange', () => {
  const wf = 'trader/binance/BTC/USDT';

  it('replay: starts on the first candle with features, moves the clock to its close, ends with done', async () => {
    const p = paperOver('BTC/USDT', btc.slice(0, warmup + 3));
    const first = await prepareCandleStep(p, { workflowId: wf, symbol: 'BTC/USDT', timeframe: '1h', after: null, fillsSince: 0 });
    assert.equal(first.input?.candle.timestamp, btc[warmup].timestamp);
    assert.equal(p.clock.now, btc[warmup].timestamp + HOUR);
    sameVector(first.input!.features, featureRow(computeFeatureMatrix(btc), 0), 'first decision vector');
    assert.equal(first.input?.tradable, true);
    let after = first.input!.candle.timestamp;
    for (let k = 0; k < 2; k++) after = (await prepareCandleStep(p, { workflowId: wf, symbol: 'BTC/USDT', timeframe: '1h', after, fillsSince: 0 })).input!.candle.timestamp;
    const end = await prepareCandleStep(p, { workflowId: wf, symbol: 'BTC/USDT', timeframe: '1h', after, fillsSince: 0 });
    assert.deepEqual([end.done, end.input], [true, undefined]);
  });

  it('a candle after a gap is reported and not tradable', async () => {
    // The fixture BTC hours have no gaps: take three out.
    const gappy = btc.filter((_, k) => k < warmup + 200 || k >= warmup + 203);
    const p = paperOver('BTC/USDT', gappy);
    const i = gappy.findIndex((c, k) => k > warmup && c.timestamp - gappy[k - 1].timestamp > HOUR);
    assert.ok(i > 0, 'the BTC series has a gap');
    const r = await prepareCandleStep(p, { workflowId: wf, symbol: 'BTC/USDT', timeframe: '1h', after: gappy[i - 1].timestamp, fillsSince: 0 });
    assert.equal(r.input?.candle.timestamp, gappy[i].timestamp);
    assert.equal(r.input?.tradable, false);
    assert.match(r.problems.join('\n'), /gap: \d+ candle\(s\) missing/);
  });

  it('live: decides on the newest closed candle only, and says when candles were skipped', async () => {
    const p = paperOver('BTC/USDT', btc);
    p.clock.now = btc[1000].timestamp + HOUR + 60_000; // candle 1001 still forming
    const r = await prepareCandleStep({ exchange: p.exchange, features: p.features, now: () => p.clock.now }, { workflowId: wf, symbol: 'BTC/USDT', timeframe: '1h', after: btc[997].timestamp, fillsSince: 0 });
    assert.equal(r.input?.candle.timestamp, btc[1000].timestamp);
    assert.match(r.problems.join('\n'), /2 closed candle\(s\) .* were not decided on/);
    const none = await prepareCandleStep({ exchange: p.exchange, features: p.features, now: () => p.clock.now }, { workflowId: wf, symbol: 'BTC/USDT', timeframe: '1h', after: btc[1000].timestamp, fillsSince: 0 });
    assert.deepEqual([none.done, none.input], [false, undefined], 'nothing new closed yet');
  });

  it('exactly once: a repeated call finds the order by client id instead of placing a second one; the intent is recorded first', async () => {
    const p = paperOver('BTC/USDT', btc);
    p.clock.now = btc[900].timestamp + HOUR;
    const calls: string[] = [];
    const recorder: TradeRecorder = {
      async recordIntent(i) {
        calls.push(`intent ${i.clientOrderId} seq ${i.decisionSeq} exists=${(await p.exchange.fetchOrderByClientId('BTC/USDT', i.clientOrderId)) !== null}`);
      },
      async recordOrder(id, o) {
        calls.push(`order ${id} ${o.status}`);
      },
      async recordFill(id, f) {
        calls.push(`fill ${id} ${f.tradeId} ${f.qty}@${f.price}`);
      },
      async recordRejection(id, reason) {
        calls.push(`rejected ${id} ${reason.slice(0, 20)}`);
      },
    };
    const entry: OrderIntent = { tag: 'entry', side: 'buy', type: 'market', qty: 0.01, price: btc[900].close, reason: 'test', clientOrderId: clientOrderId(wf, 7, 'en') };
    const a = await executeIntentsStep({ exchange: p.exchange, recorder }, { symbol: 'BTC/USDT', intents: [entry] });
    const b = await executeIntentsStep({ exchange: p.exchange, recorder }, { symbol: 'BTC/USDT', intents: [entry] });
    assert.deepEqual(b, a, 'the retry reports the same order and fill');
    assert.equal(a.fills.length, 1);
    assert.deepEqual([a.fills[0].price, a.fills[0].qty, a.fills[0].tag, a.fills[0].time], [btc[900].close, 0.01, 'entry', btc[900].timestamp + HOUR]);
    assert.ok(Math.abs(a.fills[0].fee - 0.01 * btc[900].close * 0.001) < 1e-9, 'taker fee 0.1 %');
    assert.equal((await p.exchange.fetchMyTrades('BTC/USDT')).length, 1, 'one fill on the exchange');
    assert.match(calls[0], /^intent dt[0-9a-f]{8}-7-en seq 7 exists=false$/);
    assert.match(calls[3], /exists=true/, 'the second attempt also records first, then finds the order');
  });

  it('the candle read records a fill the ledger lacks, and only that: one seen again at the inclusive cursor or recorded by executeIntentsStep is returned, not recorded again', async () => {
    const p = paperOver('BTC/USDT', btc);
    p.clock.now = btc[900].timestamp + HOUR;
    // The ledger's side of it: fills by trade id, as knownFillIds reads them.
    const ledgerFills = new Set<string>();
    const calls: string[] = [];
    const recorder: TradeRecorder = {
      async recordIntent(i) {
        calls.push(`intent ${i.clientOrderId}`);
      },
      async recordOrder(id, o) {
        calls.push(`order ${id} ${o.status}`);
      },
      async recordFill(id, f) {
        calls.push(`fill ${id} ${f.tradeId}`);
        ledgerFills.add(f.tradeId);
      },
      async recordRejection(id) {
        calls.push(`rejected ${id}`);
      },
      async recordedFills(ids) {
        calls.push(`lookup ${ids.length}`);
        return new Set(ids.filter((id) => ledgerFills.has(id)));
      },
    };
    const id = clientOrderId(wf, 5, 'en');
    const entry: OrderIntent = { tag: 'entry', side: 'buy', type: 'market', qty: 0.01, price: btc[900].close, reason: 'test', clientOrderId: id };
    const placed = await executeIntentsStep({ exchange: p.exchange, recorder }, { symbol: 'BTC/USDT', intents: [entry] });
    const [tradeId] = [...ledgerFills];
    assert.ok(tradeId, 'executeIntentsStep recorded the entry fill');
    const read = (after: number, fillsSince: number, r: TradeRecorder) => {
      p.clock.now = after + 2 * HOUR + 60_000;
      return prepareCandleStep({ exchange: p.exchange, features: p.features, now: () => p.clock.now, recorder: r }, { workflowId: wf, symbol: 'BTC/USDT', timeframe: '1h', after, fillsSince });
    };

    calls.length = 0;
    const first = await read(btc[900].timestamp, 0, recorder);
    assert.deepEqual(first.fills, placed.fills, 'the engine still gets the fill (it ignores one it applied)');
    assert.deepEqual(calls, ['lookup 1'], 'one lookup, nothing recorded again');
    calls.length = 0;
    const again = await read(btc[901].timestamp, first.fillsSince, recorder);
    assert.equal(first.fillsSince, placed.fills[0].time);
    assert.deepEqual(again.fills, placed.fills, 'the inclusive cursor returns the fill at its time again');
    assert.deepEqual(calls, ['lookup 1']);

    // The fill is on the exchange but not in the ledger (recorded nowhere yet): the read records it, order first.
    ledgerFills.clear();
    calls.length = 0;
    await read(btc[901].timestamp, first.fillsSince, recorder);
    assert.deepEqual(calls, ['lookup 1', `order ${id} closed`, `fill ${id} ${tradeId}`]);
    // A recorder that cannot tell records every fill found, as before (each call idempotent).
    const { recordedFills: _lookup, ...plain } = recorder;
    calls.length = 0;
    await read(btc[901].timestamp, first.fillsSince, plain);
    assert.deepEqual(calls, [`order ${id} closed`, `fill ${id} ${tradeId}`]);
  });

  it('given the engine state, an entry that fills gets its stop and target in the same call; settle applies them without sending again', async () => {
    const p = paperOver('BTC/USDT', btc);
    p.clock.now = btc[900].timestamp + HOUR;
    const cfg = engineConfig({ symbol: 'BTC/USDT', strategy: 'rules', risk: {}, timeframeMs: HOUR, sleeveCapital: 10_000 });
    const ctx = { workflowId: wf };
    const id = clientOrderId(wf, 7, 'en');
    const state: SymbolState = { ...initialSymbolState(cfg), seq: 7, pending: [{ clientOrderId: id, tag: 'entry', seq: 7 }] };
    const entry: OrderIntent = { tag: 'entry', side: 'buy', type: 'market', qty: 0.01, price: btc[900].close, reason: 'test', clientOrderId: id };
    const calls: OrderIntent[][] = [];
    const execute = (intents: OrderIntent[], _why: string, before: SymbolState) => {
      calls.push(intents);
      return executeIntentsStep({ exchange: p.exchange }, { symbol: 'BTC/USDT', intents, engine: { state: before, cfg, ctx } });
    };
    const out = { state, closed: [], rejected: [], sent: 0 };
    await settle(out, [entry], { execute }, cfg, ctx, 'test entry');
    assert.equal(calls.length, 1, 'one call placed the entry, its stop and its target');
    const [stopId, targetId] = [clientOrderId(wf, 7, 'st'), clientOrderId(wf, 7, 'tp')];
    assert.deepEqual([out.state.position?.stopOrderId, out.state.position?.targetOrderId], [stopId, targetId]);
    assert.deepEqual(out.state.pending.map((o) => o.clientOrderId), [stopId, targetId], 'the engine waits on the protective orders, not the entry');
    assert.equal(out.sent, 3);
    const open = await p.exchange.fetchOpenOrders('BTC/USDT');
    const six = (x: number | null | undefined) => (x == null ? x : Number(x.toFixed(6)));
    assert.deepEqual(open.map((o) => [o.clientOrderId, o.type, six(o.stopPrice ?? o.price)]), [
      [stopId, 'stop_market', six(out.state.position?.stopPrice)],
      [targetId, 'limit', six(out.state.position?.targetPrice)],
    ]);
    // The same report without the engine state is what an older activity returns: settle sends the follow-ups itself.
    const q = paperOver('BTC/USDT', btc);
    q.clock.now = p.clock.now;
    const plain: OrderIntent[][] = [];
    const out2 = { state, closed: [], rejected: [], sent: 0 };
    await settle(out2, [entry], { execute: (intents) => (plain.push(intents), executeIntentsStep({ exchange: q.exchange }, { symbol: 'BTC/USDT', intents })) }, cfg, ctx, 'test entry');
    assert.deepEqual(plain.map((b) => b.map((i) => i.clientOrderId)), [[id], [stopId, targetId]]);
    assert.deepEqual(out2.state, out.state, 'one call or two, the engine ends in the same state');
  });

  it('exactly once across a crash between the entry\'s fill and its protective orders: the retry places the stop and target once', async () => {
    const p = paperOver('BTC/USDT', btc);
    p.clock.now = btc[900].timestamp + HOUR;
    const cfg = engineConfig({ symbol: 'BTC/USDT', strategy: 'rules', risk: {}, timeframeMs: HOUR, sleeveCapital: 10_000 });
    const id = clientOrderId(wf, 4, 'en');
    const state: SymbolState = { ...initialSymbolState(cfg), seq: 4, pending: [{ clientOrderId: id, tag: 'entry', seq: 4 }] };
    const entry: OrderIntent = { tag: 'entry', side: 'buy', type: 'market', qty: 0.01, price: btc[900].close, reason: 'test', clientOrderId: id };
    const stopId = clientOrderId(wf, 4, 'st');
    let crashed = 0;
    // The worker dies after the entry filled and was recorded, just as it turns to the stop.
    const recorder: TradeRecorder = {
      async recordIntent(i) {
        if (i.clientOrderId === stopId && crashed++ === 0) throw new Error('simulated crash before the stop was sent');
      },
      async recordOrder() {},
      async recordFill() {},
      async recordRejection() {},
    };
    const args = { symbol: 'BTC/USDT', intents: [entry], engine: { state, cfg, ctx: { workflowId: wf } } };
    await assert.rejects(executeIntentsStep({ exchange: p.exchange, recorder }, args), /simulated crash/);
    assert.deepEqual((await p.exchange.fetchOpenOrders('BTC/USDT')).map((o) => o.clientOrderId), [], 'the entry filled, nothing protects it yet');
    const retry = await executeIntentsStep({ exchange: p.exchange, recorder }, args);
    assert.deepEqual(retry.next?.sent, [stopId, clientOrderId(wf, 4, 'tp')]);
    assert.deepEqual(retry.next?.orders.map((o) => o.status), ['open', 'open']);
    const account = await p.store.snapshot('test/BTC/USDT');
    assert.deepEqual(account?.orders.map((o) => o.clientOrderId), [id, stopId, clientOrderId(wf, 4, 'tp')], 'one entry, one stop, one target');
    assert.equal(account?.fills.length, 1, 'the entry filled once');
  });

  it('permanent refusals come back as rejected, transient errors are thrown for the retry policy', async () => {
    const p = paperOver('BTC/USDT', btc);
    p.clock.now = btc[900].timestamp + HOUR;
    const above = btc[900].close * 1.01;
    const stop: OrderIntent = { tag: 'stop', side: 'sell', type: 'stop_market', qty: 0.01, stopPrice: above, reason: 'stop_loss', clientOrderId: clientOrderId(wf, 3, 'st') };
    const r = await executeIntentsStep({ exchange: p.exchange }, { symbol: 'BTC/USDT', intents: [stop] });
    assert.equal(r.rejected.length, 1);
    assert.match(r.rejected[0].reason, /InsufficientFundsError|InvalidOrderError/);
    let calls = 0;
    const flaky: ExchangeAdapter = Object.assign(Object.create(p.exchange) as ExchangeAdapter, {
      fetchOrderByClientId: async () => {
        calls++;
        throw new ExchangeNetworkError('ECONNRESET');
      },
    });
    await assert.rejects(executeIntentsStep({ exchange: flaky }, { symbol: 'BTC/USDT', intents: [{ ...stop, stopPrice: btc[900].close * 0.9 }] }), ExchangeNetworkError);
    assert.equal(calls, 1);
    // A malformed intent is an engine bug: thrown as InvalidIntentError, nothing sent.
    await assert.rejects(executeIntentsStep({ exchange: flaky }, { symbol: 'BTC/USDT', intents: [{ ...stop, qty: 0 }] }), (e: Error) => e instanceof InvalidIntentError && /qty/.test(e.message));
    assert.equal(calls, 1);
  });

  it('fills are attributed by the workflow prefix: another workflow on the same account is not ours', async () => {
    const p = paperOver('BTC/USDT', btc);
    p.clock.now = btc[900].timestamp + HOUR;
    const mine = clientOrderId(wf, 1, 'en');
    const theirs = clientOrderId('trader/binance/OTHER', 1, 'en');
    await executeIntentsStep({ exchange: p.exchange }, { symbol: 'BTC/USDT', intents: [mine, theirs].map((id) => ({ tag: 'entry' as const, side: 'buy' as const, type: 'market' as const, qty: 0.01, reason: 't', clientOrderId: id })) });
    const r = await prepareCandleStep(p, { workflowId: wf, symbol: 'BTC/USDT', timeframe: '1h', after: btc[900].timestamp, fillsSince: 0 });
    assert.deepEqual(r.fills.map((f) => f.clientOrderId), [mine]);
    assert.ok(mine.startsWith(clientOrderIdPrefix(wf)) && !theirs.startsWith(clientOrderIdPrefix(wf)), 'prefixes differ');
  });
});

describe('backtest over recorded BTC/USDT and ETH/USDT 1h', function () {
  this.timeout(120_000); // full backtests over the 1h BTC and ETH fixtures, and PostgreSQL
  let full: BacktestResult;
  let dir: string;
  before(async () => {
    full = await runBacktest({ files: [BTC, ETH], strategy: 'rules', initialCapital: 10_000 });
    dir = mkdtempSync(path.join(tmpdir(), 'backtest-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  /** The first `rows` candles of a recorded file, under the same conventional name in a temp dir. */
  const truncated = (file: string, rows: number) => {
    const lines = readFileSync(file, 'utf8').trimEnd().split('\n');
    const out = path.join(dir, String(rows), path.basename(file));
    mkdirSync(path.dirname(out), { recursive: true });
    writeFileSync(out, lines.slice(0, rows + 1).join('\n') + '\n');
    return out;
  };

  it('is deterministic: a second run gives the same trades, metrics and curve', async () => {
    const again = await runBacktest({ files: [ETH, BTC], strategy: 'rules', initialCapital: 10_000 });
    assert.deepEqual(again.trades, full.trades);
    assert.deepEqual(again.metrics, full.metrics);
    assert.deepEqual(again.equityCurve, full.equityCurve);
  });

  it('trades are consistent with the candles: prices inside the candle, stops never better than the stop, fees at 10 bps', () => {
    const byTime = new Map<string, Map<number, Candle>>([['BTC/USDT', new Map(btc.map((c) => [c.timestamp + HOUR, c]))], ['ETH/USDT', new Map(eth.map((c) => [c.timestamp + HOUR, c]))]]);
    const seen = new Set<string>();
    const lastExit = new Map<string, number>();
    assert.ok(full.trades.length > 50, `only ${full.trades.length} trades`);
    for (const t of full.trades) {
      const candles = byTime.get(t.symbol)!;
      const entry = candles.get(t.entryTime);
      const exit = candles.get(t.exitTime);
      assert.ok(entry && exit, `${t.symbol} trade times are candle closes (${t.entryTime}, ${t.exitTime})`);
      assert.equal(t.entryPrice, entry.close, 'market entry at the decision candle close (no slippage configured)');
      assert.ok(t.exitTime > t.entryTime, 'exit after entry');
      assert.ok(t.exitPrice >= exit.low && t.exitPrice <= exit.high, `exit ${t.exitPrice} inside [${exit.low}, ${exit.high}]`);
      assert.ok(t.entryTime >= (lastExit.get(t.symbol) ?? 0), 'one position at a time per symbol');
      lastExit.set(t.symbol, t.exitTime);
      const rel = (a: number, b: number) => Math.abs(a - b) / b;
      if (t.exitReason === 'stop_loss') assert.ok(t.exitPrice <= t.entryPrice * 0.98 * (1 + 1e-12), `stop exit ${t.exitPrice} better than the stop ${t.entryPrice * 0.98}`);
      if (t.exitReason === 'take_profit') assert.ok(rel(t.exitPrice, t.entryPrice * 1.04) < 1e-12, `target exit ${t.exitPrice} is the target`);
      assert.ok(rel(t.fees, (t.entryPrice + t.exitPrice) * t.qty * 0.001) < 1e-9, 'fees 10 bps each side');
      assert.ok(Math.abs(t.pnl - ((t.exitPrice - t.entryPrice) * t.qty - t.fees)) < 1e-9, 'pnl after fees');
      // Sized on the sleeve: 5 % of its equity at entry, x0.75 in a sideways regime, lots truncated to 1e-8.
      const sleeve = 5_000 + full.trades.filter((o) => o.symbol === t.symbol && o.exitTime <= t.entryTime).reduce((a, o) => a + o.pnl, 0);
      const notional = t.entryPrice * t.qty;
      assert.ok(notional <= 0.05 * sleeve * (1 + 1e-9) && notional >= 0.05 * 0.75 * sleeve - 1e-8 * t.entryPrice, `notional ${notional} for a sleeve of ${sleeve}`);
      seen.add(t.exitReason);
    }
    assert.deepEqual([...seen].sort(), ['signal', 'stop_loss', 'take_profit']);
    assert.ok(new Set(full.trades.map((t) => t.symbol)).size === 2, 'both symbols trade');
  });

  it('equity adds up: the paper accounts hold what the engine says, and the curve ends at initial + PnL', () => {
    const m = full.metrics;
    assert.ok(Math.abs(m.finalEquity - full.exchangeEquity) < 1e-6, `${m.finalEquity} vs exchange ${full.exchangeEquity}`);
    const realized = full.trades.reduce((a, t) => a + t.pnl, 0);
    const open = full.openPositions.reduce((a, p) => a + (p.unrealizedPnl ?? 0), 0);
    assert.ok(Math.abs(m.finalEquity - (10_000 + realized + open)) < 1e-6);
    assert.equal(m.trades, full.trades.length);
    assert.equal(full.equityCurve.length, m.bars + 1);
    assert.equal(full.symbols[0].decisions, btc.length - warmup);
  });

  it('sleeves are independent: BTC alone on half the capital trades exactly as BTC beside ETH', async () => {
    const alone = await runBacktest({ files: [BTC], strategy: 'rules', initialCapital: 5_000 });
    assert.deepEqual(alone.trades, full.trades.filter((t) => t.symbol === 'BTC/USDT'));
  });

  it('account gates (opt-in) read one account view: with at most 1 concurrent position, positions never overlap', async () => {
    const overlaps = (trades: BacktestResult['trades']) =>
      trades.some((a) => trades.some((b) => a.symbol < b.symbol && a.entryTime < b.exitTime && b.entryTime < a.exitTime));
    assert.ok(overlaps(full.trades), 'without the gates BTC and ETH positions overlap');
    const gated = await runBacktest({ files: [BTC, ETH], strategy: 'rules', initialCapital: 10_000, risk: { maxConcurrentPositions: 1 }, accountGates: true });
    assert.ok(gated.trades.length > 50, `${gated.trades.length} trades`);
    assert.equal(overlaps(gated.trades), false);
    assert.equal(gated.config.accountGates, true);
  });

  it('gives the same backtest on the PostgreSQL paper store as in memory (the two stores keep one contract)', async () => {
    const files = [truncated(BTC, 1_000), truncated(ETH, 1_000)];
    const db = await freshDatabase();
    try {
      const pg = await runBacktest({ files, strategy: 'rules', initialCapital: 10_000, slippage: { bps: 5 }, paperStore: new PostgresPaperStateStore(db.sql) });
      const memory = await runBacktest({ files, strategy: 'rules', initialCapital: 10_000, slippage: { bps: 5 }, paperStore: new InMemoryPaperStateStore() });
      assert.ok(memory.trades.length > 3, `only ${memory.trades.length} trades`);
      assert.deepEqual(pg, memory);
      // 5 bps of slippage: market entries pay it.
      const t = memory.trades[0];
      const c = btc.concat(eth).find((k) => k.timestamp + HOUR === t.entryTime && Math.abs(k.close * 1.0005 - t.entryPrice) < 1e-6 * k.close);
      assert.ok(c, `entry ${t.entryPrice} is a close plus 5 bps`);
    } finally {
      await db.drop();
    }
  });

  it('positions open at the end of the data are reported, not closed', async () => {
    const firstBtc = full.trades.find((t) => t.symbol === 'BTC/USDT')!;
    const rows = btc.findIndex((c) => c.timestamp + HOUR === firstBtc.entryTime) + 1;
    const r = await runBacktest({ files: [truncated(BTC, rows)], strategy: 'rules', initialCapital: 5_000 });
    assert.equal(r.trades.length, 0);
    assert.equal(r.openPositions.length, 1);
    const p = r.openPositions[0];
    assert.deepEqual([p.symbol, p.entryTime, p.entryPrice, p.qty, p.markPrice], ['BTC/USDT', firstBtc.entryTime, firstBtc.entryPrice, firstBtc.qty, btc[rows - 1].close]);
    assert.equal(p.stopPrice, firstBtc.entryPrice * 0.98);
  });

  it('bad input is refused with a clear message', async () => {
    await assert.rejects(runBacktest({ files: [BTC, BTC], strategy: 'rules', initialCapital: 1 }), (e: Error) => e instanceof BacktestInputError && /given twice/.test(e.message));
    await assert.rejects(runBacktest({ files: [path.join(dir, 'nope_BTC-USDT_1h.csv')], strategy: 'rules', initialCapital: 1 }), (e: Error) => e instanceof BacktestInputError && /no such file/.test(e.message));
    const wrongTf = path.join(dir, 'binance_BTC-USDT_5m.csv');
    writeFileSync(wrongTf, readFileSync(truncated(BTC, 600)));
    await assert.rejects(runBacktest({ files: [wrongTf], strategy: 'rules', initialCapital: 1 }), (e: Error) => e instanceof BacktestInputError && /mostly 1h apart but the timeframe is 5m/.test(e.message));
    await assert.rejects(runBacktest({ files: [BTC], strategy: 'rules', initialCapital: -5 }), (e: Error) => e instanceof BacktestInputError && /initialCapital/.test(e.message));
    await assert.rejects(runBacktest({ files: [BTC], strategy: 'rules', initialCapital: 1, risk: { stopLossPct: 2 } }), (e: Error) => e instanceof BacktestInputError && /stopLossPct/.test(e.message));
  });

  it('a file too short for the features makes no decision', async () => {
    const r = await runBacktest({ files: [truncated(BTC, warmup)], strategy: 'rules', initialCapital: 1_000 });
    assert.deepEqual([r.symbols[0].decisions, r.trades.length, r.metrics.finalEquity], [0, 0, 1_000]);
  });
});

describe('backtest metrics', () => {
  const day = 86_400_000;
  const curve = [100, 110, 99, 121, 121].map((equity, i) => ({ time: i * day, equity }));

  it('match a hand computation', () => {
    // Returns: +10 %, -10 %, +22.2222 %, 0 %.
    const r = barReturns(curve);
    assert.deepEqual(r.map((x) => Number(x.toFixed(6))), [0.1, -0.1, 0.222222, 0]);
    const mean = (0.1 - 0.1 + 2 / 9 + 0) / 4;
    const sd = Math.sqrt(r.reduce((a, x) => a + (x - mean) ** 2, 0) / 3);
    assert.ok(Math.abs((sharpeRatio(r, 365) as number) - (mean / sd) * Math.sqrt(365)) < 1e-12);
    assert.ok(Math.abs((sortinoRatio(r, 365) as number) - (mean / Math.sqrt(0.01 / 4)) * Math.sqrt(365)) < 1e-12);
    assert.equal(maxDrawdown(curve), 0.1);
    const m = computeMetrics({ equity: curve, trades: [{ pnl: 30, fees: 1 }, { pnl: -10, fees: 1 }, { pnl: 5, fees: 1 }, { pnl: 0, fees: 0.5 }], timeframeMs: day, exposure: 0.5, buyAndHoldReturn: 0.3 });
    assert.ok(Math.abs(m.totalReturn - 0.21) < 1e-12);
    assert.ok(Math.abs((m.annualizedReturn as number) - (1.21 ** (365 / 4) - 1)) < 1e-6 * (1.21 ** (365 / 4)));
    assert.ok(Math.abs((m.calmar as number) - (m.annualizedReturn as number) / 0.1) < 1e-6 * (m.calmar as number));
    assert.equal(m.profitFactor, 3.5);
    assert.equal(m.expectancy, 25 / 4);
    assert.equal(m.winRate, 0.5);
    assert.deepEqual([m.trades, m.wins, m.losses, m.totalFees, m.exposure, m.buyAndHoldReturn, m.bars, m.periodsPerYear], [4, 2, 1, 3.5, 0.5, 0.3, 4, 365]);
  });

  it('undefined ratios are null, never Infinity or NaN', () => {
    const flat = computeMetrics({ equity: [{ time: 0, equity: 100 }, { time: HOUR, equity: 100 }], trades: [], timeframeMs: HOUR, exposure: 0, buyAndHoldReturn: null });
    assert.deepEqual([flat.sharpe, flat.sortino, flat.calmar, flat.profitFactor, flat.expectancy, flat.winRate, flat.maxDrawdown], [null, null, null, null, null, null, 0]);
    assert.doesNotMatch(JSON.stringify(flat), /null,"sharpe":Infinity|NaN/);
    const onlyWins = computeMetrics({ equity: curve, trades: [{ pnl: 1, fees: 0 }], timeframeMs: day, exposure: 0, buyAndHoldReturn: null });
    assert.equal(onlyWins.profitFactor, null);
  });
});

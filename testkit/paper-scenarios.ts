import assert from 'node:assert/strict';
import { ApplicationFailure } from '@temporalio/common';
import { decAdd, decMul, decSub, roundToStep } from '../lib/decimal';
import {
  InsufficientFundsError,
  InvalidOrderError,
  OrderBelowMinimumError,
  OrderNotFoundError,
  PaperStateConflictError,
} from '../lib/exchange/errors';
import { toTemporalFailure } from '../activities/exchange/error-mapping';
import { spotMarket, StaticMarketCatalog } from '../lib/exchange/markets';
import { PaperExchange, type PaperExchangeOptions } from '../lib/exchange/paper-exchange';
import type { PaperRead, PaperStateChange, PaperStateStore } from '../lib/exchange/paper-state';
import { createLogger } from '../infra/logger';
import { fixtureCandleFile } from './fixtures';
import { readCandleCsv } from '../infra/candle-files';
import { replayFromFiles } from '../infra/candle-files';

const BTC_1H = fixtureCandleFile('fixture_BTC-USDT_1h.csv');
const HOUR = 3_600_000;
const candles = readCandleCsv(BTC_1H).candles;
const MAKER = 0.0002;
const TAKER = 0.0007;

const up = (x: number) => Number(roundToStep(x, '0.01', 'up'));
const down = (x: number) => Number(roundToStep(x, '0.01', 'down'));
/** Close time of candle i: the "now" at which a decision on it is taken. */
const closeOf = (i: number) => candles[i].timestamp + HOUR;

/**
 * The paper exchange's behaviour, run against any PaperStateStore: test/unit/paper-exchange.test.ts
 * runs it in memory, test/integration/paper-state-pg.test.ts on PostgreSQL. Call inside a describe().
 * `newStore` may hand out stores that share data (one database): every scenario uses accounts
 * of its own.
 */
export function paperExchangeScenarios(newStore: () => PaperStateStore): void {
  let accounts = 0;

  function paperAt(index: number, over: Partial<PaperExchangeOptions> = {}) {
    const clock = { now: closeOf(index) };
    const store = over.store ?? newStore();
    const account = `paper-test-${++accounts}`;
    const replay = replayFromFiles([BTC_1H], { now: () => clock.now });
    const markets = new StaticMarketCatalog([
      spotMarket('BTC/USDT', { amountPrecision: { kind: 'step', step: '0.00001' }, pricePrecision: { kind: 'step', step: '0.01' }, minAmount: 0.00001, minCost: 10 }),
    ]);
    const make = (o: Partial<PaperExchangeOptions> = {}) =>
      new PaperExchange({
        account,
        store,
        marketData: replay,
        markets,
        timeframe: '1h',
        initialBalances: { USDT: '10000' },
        fees: { maker: MAKER, taker: TAKER },
        slippage: { bps: 5 },
        now: () => clock.now,
        log: createLogger({ level: process.env.LOG_LEVEL ?? 'silent' }),
        ...over,
        ...o,
      });
    return { clock, store, paper: make(), make };
  }

  const K = 8000; // 2020-11-29, BTC near 18,000: the scenarios' quantities are sized for that price

  it('fills a market buy at the last close plus slippage, charges the taker fee, and books it exactly', async () => {
    const { paper } = paperAt(K);
    const order = await paper.createOrder({ clientOrderId: 'mkt-1', symbol: 'BTC/USDT', side: 'buy', type: 'market', qty: 0.0123456 });
    const price = up(candles[K].close * 1.0005);
    assert.equal(order.status, 'closed');
    assert.equal(order.qty, 0.01234, 'amount truncated to the 0.00001 lot');
    assert.equal(order.avgFillPrice, price);
    const cost = decMul('0.01234', price);
    const fee = decMul(cost, TAKER);
    assert.equal(order.fee?.cost, Number(fee));
    const bal = await paper.fetchBalance();
    assert.equal(bal.BTC.total, 0.01234);
    assert.equal(bal.USDT.total, Number(decSub('10000', decAdd(cost, fee))));
    const [trade] = await paper.fetchMyTrades('BTC/USDT');
    assert.deepEqual([trade.clientOrderId, trade.liquidity, trade.price, trade.timestamp], ['mkt-1', 'taker', price, closeOf(K)]);
  });

  it('rests a limit buy and fills it as maker at its price on the first later candle that trades through it', async () => {
    const { clock, paper } = paperAt(K);
    const limit = down(candles[K].close * 0.985);
    const j = candles.findIndex((c, i) => i > K && c.low < limit);
    assert.ok(j > K, 'the recording must dip below the limit later');
    assert.ok(candles.slice(K - 200, K + 1).some((c) => c.low < limit), 'and had dipped below it before the order existed, which must not count');
    const placed = await paper.createOrder({ clientOrderId: 'bid-1', symbol: 'BTC/USDT', side: 'buy', type: 'limit', qty: 0.1, price: limit });
    assert.equal(placed.status, 'open');

    clock.now = closeOf(j) - 1; // candle j still forming
    assert.equal((await paper.fetchOrderByClientId('BTC/USDT', 'bid-1'))?.status, 'open');
    clock.now = closeOf(j);
    const filled = await paper.fetchOrderByClientId('BTC/USDT', 'bid-1');
    assert.equal(filled?.status, 'closed');
    assert.equal(filled?.avgFillPrice, limit);
    assert.equal(filled?.updatedAt, closeOf(j));
    const [trade] = await paper.fetchMyTrades('BTC/USDT');
    assert.equal(trade.liquidity, 'maker');
    assert.equal(trade.fee?.cost, Number(decMul(decMul('0.1', limit), MAKER)));
  });

  it('fits orders to precision and refuses those below the minimum notional as non-retryable', async () => {
    const { paper } = paperAt(K);
    const last = candles[K].close;
    const tooSmall = paper.createOrder({ clientOrderId: 'small-1', symbol: 'BTC/USDT', side: 'buy', type: 'market', qty: 9 / last });
    await assert.rejects(tooSmall, (e: unknown) => {
      assert.ok(e instanceof OrderBelowMinimumError && e instanceof InvalidOrderError);
      assert.equal(e.reason, 'cost_below_min');
      assert.equal(e.retryable, false);
      assert.match(e.message, /minimum notional 10/);
      return true;
    });
    await assert.rejects(paper.createOrder({ clientOrderId: 'small-2', symbol: 'BTC/USDT', side: 'buy', type: 'market', qty: 0.000004 }), /rounds down to 0/);
    const ok = await paper.createOrder({ clientOrderId: 'ok-1', symbol: 'BTC/USDT', side: 'buy', type: 'limit', qty: 0.0012345678, price: last * 0.9 + 0.004321 });
    assert.equal(ok.qty, 0.00123);
    assert.equal(ok.price, Number(roundToStep(last * 0.9 + 0.004321, '0.01', 'nearest')));
    assert.equal((await paper.fetchOpenOrders()).length, 1, 'refused orders leave nothing behind');
  });

  it('when a stop and a target are both touched inside one candle, fills the stop and cancels the target', async () => {
    // A red candle whose range straddles the previous close: the colour heuristic (high first)
    // would fill the target; the pessimistic rule must fill the stop.
    const k = candles.findIndex((c, i) => i > K && c.close < c.open && c.low < candles[i - 1].close * 0.995 && c.high > candles[i - 1].close * 1.005 && c.timestamp - candles[i - 1].timestamp === HOUR);
    assert.ok(k > K);
    const { clock, paper } = paperAt(k - 1);
    const entry = await paper.createOrder({ clientOrderId: 'entry', symbol: 'BTC/USDT', side: 'buy', type: 'market', qty: 0.05 });
    assert.equal(entry.status, 'closed');
    const prev = candles[k - 1].close;
    const stopPrice = down((candles[k].low + prev) / 2);
    const targetPrice = up((candles[k].high + prev) / 2);
    await paper.createOrder({ clientOrderId: 'stop', symbol: 'BTC/USDT', side: 'sell', type: 'stop_market', qty: 0.05, stopPrice });
    await paper.createOrder({ clientOrderId: 'target', symbol: 'BTC/USDT', side: 'sell', type: 'limit', qty: 0.05, price: targetPrice });
    const reserved = await paper.fetchBalance();
    assert.deepEqual([reserved.BTC.used, reserved.BTC.free], [0.05, 0], 'both exits share the same coins');

    clock.now = closeOf(k);
    const stop = await paper.fetchOrderByClientId('BTC/USDT', 'stop');
    const target = await paper.fetchOrderByClientId('BTC/USDT', 'target');
    assert.equal(stop?.status, 'closed');
    assert.equal(stop?.avgFillPrice, down(stopPrice * 0.9995), 'stop fills at its level less slippage');
    assert.equal(target?.status, 'canceled');
    assert.match(target?.reason ?? '', /no longer had the funds/);
    assert.equal((await paper.fetchBalance()).BTC?.total ?? 0, 0);
    assert.deepEqual((await paper.fetchMyTrades('BTC/USDT')).map((t) => [t.clientOrderId, t.liquidity]), [['entry', 'taker'], ['stop', 'taker']]);
  });

  it('places an order at most once per clientOrderId, also from a new instance over the same store', async () => {
    const { paper, make } = paperAt(K);
    const req = { clientOrderId: 'once-1', symbol: 'BTC/USDT', side: 'buy' as const, type: 'market' as const, qty: 0.01 };
    const first = await paper.createOrder(req);
    const again = await paper.createOrder(req);
    const restarted = await make().createOrder({ ...req, qty: 0.02 });
    assert.deepEqual(again, first);
    assert.deepEqual(restarted, first, 'the first order wins whatever the repeat says');
    assert.equal((await paper.fetchMyTrades('BTC/USDT')).length, 1);
    assert.equal((await paper.fetchBalance()).BTC.total, 0.01);
    // Concurrent placements of the same id still make one order.
    const racing = await Promise.all([1, 2, 3].map(() => make().createOrder({ ...req, clientOrderId: 'once-2' })));
    assert.equal(new Set(racing.map((o) => o.id)).size, 1);
    assert.equal((await paper.fetchMyTrades('BTC/USDT')).length, 2);
  });

  it('keeps its state across a restart: a new instance over the same store sees and fills the old orders', async () => {
    const { clock, paper, make } = paperAt(K);
    const limit = down(candles[K].close * 0.985);
    const j = candles.findIndex((c, i) => i > K && c.low < limit);
    await paper.createOrder({ clientOrderId: 'persist-1', symbol: 'BTC/USDT', side: 'buy', type: 'limit', qty: 0.1, price: limit });
    const before = await paper.fetchBalance();

    const restarted = make();
    assert.deepEqual(await restarted.fetchBalance(), before);
    assert.deepEqual((await restarted.fetchOpenOrders('BTC/USDT')).map((o) => o.clientOrderId), ['persist-1']);
    clock.now = closeOf(j);
    assert.equal((await restarted.fetchOrderByClientId('BTC/USDT', 'persist-1'))?.status, 'closed');
    assert.equal((await paper.fetchOrderByClientId('BTC/USDT', 'persist-1'))?.status, 'closed', 'the old instance reads the same store');
    // Initial balances apply only to a new account: the stored one wins.
    assert.equal((await make({ initialBalances: { USDT: '1' } }).fetchBalance()).BTC.total, 0.1);
  });

  it('refuses unfunded orders and stops that would trigger at once, as non-retryable Temporal failures', async () => {
    const { paper } = paperAt(K);
    const unfunded = await paper.createOrder({ clientOrderId: 'big', symbol: 'BTC/USDT', side: 'buy', type: 'market', qty: 1 }).catch((e: unknown) => e);
    assert.ok(unfunded instanceof InsufficientFundsError);
    assert.match(unfunded.message, /needs .* USDT, account has 10000 USDT/);
    const failure = toTemporalFailure(unfunded);
    assert.ok(failure instanceof ApplicationFailure);
    assert.deepEqual([failure.nonRetryable, failure.type], [true, 'InsufficientFundsError']);
    await assert.rejects(paper.createOrder({ clientOrderId: 'sell-nothing', symbol: 'BTC/USDT', side: 'sell', type: 'limit', qty: 0.01, price: 1e6 }), InsufficientFundsError);
    await paper.createOrder({ clientOrderId: 'buy-some', symbol: 'BTC/USDT', side: 'buy', type: 'market', qty: 0.01 });
    const early = paper.createOrder({ clientOrderId: 'stop-high', symbol: 'BTC/USDT', side: 'sell', type: 'stop_market', qty: 0.01, stopPrice: candles[K].close * 1.01 });
    await assert.rejects(early, (e: unknown) => e instanceof InvalidOrderError && /trigger immediately/.test(e.message));
    await assert.rejects(paper.createOrder({ clientOrderId: 'x', symbol: 'ETH/USDT', side: 'buy', type: 'market', qty: 1 }), /no market rules for ETH\/USDT/);
  });

  it('cancels resting orders, which then never fill; cancelling a finished or unknown order is explicit', async () => {
    const { clock, paper } = paperAt(K);
    const limit = down(candles[K].close * 0.985);
    const j = candles.findIndex((c, i) => i > K && c.low < limit);
    await paper.createOrder({ clientOrderId: 'bid-c', symbol: 'BTC/USDT', side: 'buy', type: 'limit', qty: 0.1, price: limit });
    const canceled = await paper.cancelOrder('BTC/USDT', { clientOrderId: 'bid-c' });
    assert.equal(canceled.status, 'canceled');
    clock.now = closeOf(j + 5);
    assert.equal((await paper.fetchOrderByClientId('BTC/USDT', 'bid-c'))?.status, 'canceled');
    assert.equal((await paper.fetchBalance()).USDT.total, 10000);
    await assert.rejects(paper.cancelOrder('BTC/USDT', { clientOrderId: 'nope' }), OrderNotFoundError);
    const done = await paper.createOrder({ clientOrderId: 'm', symbol: 'BTC/USDT', side: 'buy', type: 'market', qty: 0.01 });
    assert.equal((await paper.cancelOrder('BTC/USDT', { id: done.id })).status, 'closed');
  });

  it('is deterministic: the same candles and seed give the same fills, a different seed different slippage', async () => {
    async function run(seed: number) {
      const { clock, paper } = paperAt(K, { slippage: { bps: 2, rangeFraction: 0.05, randomBps: 20, seed } });
      await paper.createOrder({ clientOrderId: 'r-entry', symbol: 'BTC/USDT', side: 'buy', type: 'market', qty: 0.1 });
      await paper.createOrder({ clientOrderId: 'r-stop', symbol: 'BTC/USDT', side: 'sell', type: 'stop_market', qty: 0.1, stopPrice: down(candles[K].close * 0.98) });
      clock.now = closeOf(K + 300);
      return (await paper.fetchMyTrades('BTC/USDT')).map((t) => [t.clientOrderId, t.price, t.timestamp]);
    }
    const a = await run(1);
    assert.equal(a.length, 2, 'the stop was hit within 300 hours');
    assert.deepEqual(await run(1), a);
    assert.notDeepEqual(await run(2), a);
  });

  it('redoes an operation when another writer committed first (optimistic concurrency)', async () => {
    class ConflictOnce implements PaperStateStore {
      conflicts = 0;
      constructor(private readonly inner: PaperStateStore) {}
      read(account: string, what: PaperRead) {
        return this.inner.read(account, what);
      }
      snapshot(account: string) {
        return this.inner.snapshot(account);
      }
      async commit(account: string, expected: number, change: PaperStateChange) {
        if (this.conflicts++ === 0) throw new PaperStateConflictError('simulated concurrent writer');
        return this.inner.commit(account, expected, change);
      }
    }
    const store = new ConflictOnce(newStore());
    const { paper } = paperAt(K, { store });
    const o = await paper.createOrder({ clientOrderId: 'cc-1', symbol: 'BTC/USDT', side: 'buy', type: 'market', qty: 0.01 });
    assert.equal(o.status, 'closed');
    assert.equal(store.conflicts, 2);
    assert.equal((await paper.fetchMyTrades('BTC/USDT')).length, 1);
    const inner = newStore();
    const a = `conflict-${++accounts}`;
    await inner.commit(a, 0, { balances: {}, cursors: {}, nextId: 1, orders: [], fills: [] });
    await assert.rejects(inner.commit(a, 0, { balances: {}, cursors: {}, nextId: 1, orders: [], fills: [] }), PaperStateConflictError);
  });
}

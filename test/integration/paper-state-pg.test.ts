import assert from 'node:assert/strict';
import { decAdd, decCmp, decSub } from '../../lib/decimal';
import { connect } from '../../infra/postgres';
import { InsufficientFundsError, PaperStateConflictError } from '../../lib/exchange/errors';
import { spotMarket, StaticMarketCatalog } from '../../lib/exchange/markets';
import { PaperExchange } from '../../lib/exchange/paper-exchange';
import { InMemoryPaperStateStore, type PaperStateChange, type PaperStateStore } from '../../lib/exchange/paper-state';
import { PostgresPaperStateStore } from '../../activities/exchange/paper-state-pg';
import { createLogger } from '../../infra/logger';
import { freshDatabase, testLog, type TestDatabase } from '../../testkit/db';
import { fixtureCandleFile } from '../../testkit/fixtures';
import { paperExchangeScenarios } from '../../testkit/paper-scenarios';
import { readCandleCsv } from '../../infra/candle-files';
import { replayFromFiles } from '../../infra/candle-files';

const BTC_1H = fixtureCandleFile('fixture_BTC-USDT_1h.csv');
const HOUR = 3_600_000;
const candles = readCandleCsv(BTC_1H).candles;
const K = 2000;

let db: TestDatabase;

describe('paper exchange state in PostgreSQL', function () {
  this.timeout(60_000); // starts this process's embedded PostgreSQL on first use (seconds)
  before(async () => {
    db = await freshDatabase();
  });
  after(async () => {
    await db?.drop();
  });

  describe('the paper exchange scenarios (test/unit/paper-exchange.test.ts) on the PostgreSQL store', () => {
    paperExchangeScenarios(() => new PostgresPaperStateStore(db.sql));
  });

/** A paper exchange on its own store at the close of candle `index`. */
function paperOn(store: PaperStateStore, account: string, clock = { now: candles[K].timestamp + HOUR }, initialBalances: Record<string, string> = { USDT: '10000' }) {
  return new PaperExchange({
    account,
    store,
    marketData: replayFromFiles([BTC_1H], { now: () => clock.now }),
    markets: new StaticMarketCatalog([spotMarket('BTC/USDT', { amountPrecision: { kind: 'step', step: '0.00001' }, pricePrecision: { kind: 'step', step: '0.01' }, minCost: 10 })]),
    timeframe: '1h',
    initialBalances,
    now: () => clock.now,
    log: createLogger({ level: process.env.LOG_LEVEL ?? 'silent' }),
  });
}

/** A second connection pool: what another process (a restarted worker, a second worker) would have. */
function otherProcess() {
  return connect(db.url, testLog, { max: 4 });
}

const change = (over: Partial<PaperStateChange> = {}): PaperStateChange => ({ balances: { USDT: '100' }, cursors: {}, nextId: 1, orders: [], fills: [], ...over });

describe('PostgresPaperStateStore', function () {
  this.timeout(60_000); // starts this process's embedded PostgreSQL on first use (seconds)
  it('loads exactly what was committed: the same state as the in-memory store after the same commits', async () => {
    const pg = new PostgresPaperStateStore(db.sql);
    const mem = new InMemoryPaperStateStore();
    const order = {
      id: 'paper-1', clientOrderId: 'c-1', symbol: 'BTC/USDT', side: 'buy' as const, type: 'limit' as const, status: 'open' as const,
      qty: 0.1 + 0.2, filledQty: 0, price: 1e-7, stopPrice: undefined, createdAt: 1_614_038_400_000, updatedAt: 1_614_038_400_000,
    };
    const filled = { ...order, status: 'closed' as const, filledQty: order.qty, avgFillPrice: 1e-7, cost: 3.0000000000000004e-8, fee: { cost: 6e-12, currency: 'USDT' }, updatedAt: 1_614_042_000_000, reason: 'x' };
    const stop = { id: 'paper-2', symbol: 'BTC/USDT', side: 'sell' as const, type: 'stop_market' as const, status: 'open' as const, qty: 123456789.12345678, filledQty: 0, price: undefined, stopPrice: 50_000.01 };
    const fill = {
      id: 'paper-1-1', orderId: 'paper-1', clientOrderId: 'c-1', symbol: 'BTC/USDT', side: 'buy' as const, qty: order.qty, price: 1e-7,
      cost: '0.00000003000000000000000000001', fee: '-0.000000000006', feeCurrency: 'USDT', liquidity: 'maker' as const, timestamp: 1_614_042_000_000, candleTs: 1_614_038_400_000,
    };
    const commits: Array<[number, PaperStateChange]> = [
      [0, change({ balances: { USDT: '10000.000000000000000000001', BTC: '0' }, nextId: 2, orders: [order], cursors: { 'BTC/USDT': 1_614_034_800_000 } })],
      [1, change({ balances: { USDT: '9999.5', BTC: '0.30000000000000004' }, nextId: 3, orders: [filled, stop], fills: [fill], cursors: { 'BTC/USDT': 1_614_038_400_000, 'ETH/USDT': 0 } })],
    ];
    for (const [expected, c] of commits) {
      assert.equal(await pg.commit('exact', expected, c), await mem.commit('exact', expected, c));
    }
    const restarted = otherProcess();
    try {
      const loaded = await new PostgresPaperStateStore(restarted).snapshot('exact');
      assert.deepEqual(loaded, await mem.snapshot('exact'));
      assert.equal(loaded?.orders[0].qty, 0.1 + 0.2, 'a double reads back as the same double');
      assert.equal(loaded?.balances.USDT, '9999.5');
    } finally {
      await restarted.end({ timeout: 5 });
    }
    assert.equal(await pg.snapshot('never-stored'), undefined);
  });

  it('keeps a paper account across a restart: a new process sees its balances, resting orders and fills, and fills them', async () => {
    const clock = { now: candles[K].timestamp + HOUR };
    const first = paperOn(new PostgresPaperStateStore(db.sql), 'restart', clock);
    await first.createOrder({ clientOrderId: 'r-mkt', symbol: 'BTC/USDT', side: 'buy', type: 'market', qty: 0.01 });
    const limit = Math.floor(candles[K].close * 0.985);
    const j = candles.findIndex((c, i) => i > K && c.low < limit);
    assert.ok(j > K, 'the recording dips below the limit later');
    await first.createOrder({ clientOrderId: 'r-bid', symbol: 'BTC/USDT', side: 'buy', type: 'limit', qty: 0.1, price: limit });
    const balance = await first.fetchBalance();

    const pool = otherProcess();
    try {
      const second = paperOn(new PostgresPaperStateStore(pool), 'restart', clock, { USDT: '1' });
      assert.deepEqual(await second.fetchBalance(), balance, 'the stored account wins over initial balances');
      assert.deepEqual((await second.fetchOpenOrders()).map((o) => o.clientOrderId), ['r-bid']);
      assert.deepEqual((await second.fetchMyTrades('BTC/USDT')).map((t) => t.clientOrderId), ['r-mkt']);
      clock.now = candles[j].timestamp + HOUR;
      assert.equal((await second.fetchOrderByClientId('BTC/USDT', 'r-bid'))?.status, 'closed');
      assert.equal((await first.fetchBalance()).BTC.total, 0.11, 'the first process reads the fill the second one matched');
    } finally {
      await pool.end({ timeout: 5 });
    }
  });

  it('lets exactly one of two writers with the same expected version commit', async () => {
    const a = new PostgresPaperStateStore(db.sql);
    const pool = otherProcess();
    try {
      const b = new PostgresPaperStateStore(pool);
      const v = await a.commit('race', 0, change());
      const results = await Promise.allSettled([
        a.commit('race', v, change({ balances: { USDT: '1' } })),
        b.commit('race', v, change({ balances: { USDT: '2' } })),
      ]);
      const won = results.filter((r) => r.status === 'fulfilled');
      const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
      assert.equal(won.length, 1, 'one writer wins');
      assert.ok(lost[0]?.reason instanceof PaperStateConflictError, `the other gets a conflict, got ${String(lost[0]?.reason)}`);
      assert.match(String(lost[0].reason.message), /stored version 2, expected version 1/);
      const state = await a.snapshot('race');
      assert.equal(state?.version, 2);
      assert.ok(['1', '2'].includes(state?.balances.USDT ?? ''), 'the winner wrote all of its change');
      // Two first commits of a new account: one creates it, the other conflicts.
      const firsts = await Promise.allSettled([a.commit('race-new', 0, change()), b.commit('race-new', 0, change())]);
      assert.deepEqual(firsts.map((r) => r.status).sort(), ['fulfilled', 'rejected']);
    } finally {
      await pool.end({ timeout: 5 });
    }
  });

  it('never double-spends when two paper exchanges in two processes trade one account at once', async () => {
    const pool = otherProcess();
    try {
      const ex = [paperOn(new PostgresPaperStateStore(db.sql), 'shared'), paperOn(new PostgresPaperStateStore(pool), 'shared')];
      // Each buy costs ~15 % of the account: at most 6 of the 16 can be funded.
      const qty = Number(((10000 * 0.15) / candles[K].close).toFixed(5));
      const buy = (n: number) => ex[n % 2].createOrder({ clientOrderId: `ds-${n}`, symbol: 'BTC/USDT', side: 'buy', type: 'market', qty });
      const results = await Promise.allSettled(Array.from({ length: 16 }, (_, n) => buy(n)));
      // A conflict that outlived the exchange's own redo is retryable: retry it, as Temporal would.
      for (const [n, r] of results.entries()) {
        if (r.status === 'rejected' && r.reason instanceof PaperStateConflictError) [results[n]] = await Promise.allSettled([buy(n)]);
      }
      const filled = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
      const errors = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : []));
      for (const e of errors) assert.ok(e instanceof InsufficientFundsError, `only refusals for lack of funds, got ${String(e)}`);
      assert.equal(filled.length, 6, `exactly the affordable buys fill (got ${filled.length}; errors: ${errors.map(String).join('; ')})`);

      const trades = await ex[1].fetchMyTrades('BTC/USDT');
      assert.deepEqual(trades.map((t) => t.clientOrderId).sort(), filled.map((o) => o.clientOrderId).sort(), 'every accepted order has its one fill, nothing else');
      const state = await new PostgresPaperStateStore(db.sql).snapshot('shared');
      const spent = state!.fills.reduce((s, f) => decAdd(s, decAdd(f.cost, f.fee)), '0');
      const bought = state!.fills.reduce((s, f) => decAdd(s, f.qty), '0');
      assert.equal(decCmp(decAdd(state!.balances.USDT, spent), '10000'), 0, 'cash + what was spent = what the account started with, exactly');
      assert.equal(decCmp(state!.balances.BTC, bought), 0);
      assert.ok(decCmp(state!.balances.USDT, '0') >= 0, 'never below zero');
      assert.ok(decCmp(decSub(state!.balances.USDT, spent), '10000') < 0, 'sanity: something was spent');
    } finally {
      await pool.end({ timeout: 5 });
    }
  });

  it('resets one account for a fresh run; writers that read it before the reset cannot write into the new one', async () => {
    const store = new PostgresPaperStateStore(db.sql);
    const paper = paperOn(store, 'replay-run');
    const other = paperOn(store, 'other-run');
    await paper.createOrder({ clientOrderId: 'old-1', symbol: 'BTC/USDT', side: 'buy', type: 'market', qty: 0.01 });
    await other.createOrder({ clientOrderId: 'keep-1', symbol: 'BTC/USDT', side: 'buy', type: 'market', qty: 0.01 });
    const stale = await store.snapshot('replay-run');

    assert.equal(await store.resetAccount('replay-run'), true);
    assert.equal(await store.snapshot('replay-run'), undefined);
    assert.equal(await store.resetAccount('replay-run'), false, 'resetting a reset account does nothing');
    assert.equal(await store.resetAccount('no-such-account'), false);
    await assert.rejects(store.commit('replay-run', stale!.version, change()), PaperStateConflictError);

    assert.deepEqual(await paper.fetchBalance(), { USDT: { total: 10000, used: 0, free: 10000 } }, 'starts again from the initial balances');
    assert.deepEqual(await paper.fetchMyTrades('BTC/USDT'), []);
    const again = await paper.createOrder({ clientOrderId: 'old-1', symbol: 'BTC/USDT', side: 'buy', type: 'market', qty: 0.02 });
    assert.equal(again.qty, 0.02, 'the old client order id is free again');
    const fresh = await store.snapshot('replay-run');
    assert.ok(fresh!.version > stale!.version, `versions keep counting across a reset (${stale!.version} -> ${fresh!.version})`);
    await assert.rejects(store.commit('replay-run', stale!.version, change()), PaperStateConflictError);
    assert.deepEqual((await other.fetchMyTrades('BTC/USDT')).map((t) => t.clientOrderId), ['keep-1'], 'other accounts are untouched');
  });

  it('refuses bad input with a clear error and leaves the stored state as it was', async () => {
    const store = new PostgresPaperStateStore(db.sql);
    const v = await store.commit('bad', 0, change());
    await assert.rejects(store.commit('bad', v, change({ balances: { USDT: '-0.01' } })), /refusing a negative balance \(USDT -0.01\)/);
    await assert.rejects(store.commit('bad', v, change({ cursors: { 'BTC/USDT': 1.5 } })), /cursor BTC\/USDT must be whole milliseconds/);
    await assert.rejects(store.commit('bad', v, change({ nextId: 0 })), /nextId must be an integer >= 1/);
    await assert.rejects(store.snapshot('has space'), /paper account name must be 1-200 printable ASCII/);
    const state = await store.snapshot('bad');
    assert.deepEqual([state?.version, state?.balances], [v, { USDT: '100' }]);
  });
});
});

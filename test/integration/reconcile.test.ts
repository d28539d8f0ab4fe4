import assert from 'node:assert/strict';
import { spotMarket, StaticMarketCatalog } from '../../lib/exchange/markets';
import { PaperExchange } from '../../lib/exchange/paper-exchange';
import { PostgresPaperStateStore } from '../../activities/exchange/paper-state-pg';
import type { OrderRequest } from '../../lib/exchange/types';
import { reconcile, type Difference } from '../../activities/trading/reconcile';
import { LedgerTradeRecorder } from '../../activities/trading/recorder';
import { createLogger } from '../../infra/logger';
import { freshDatabase, type TestDatabase } from '../../testkit/db';
import { fixtureCandleFile } from '../../testkit/fixtures';
import { readCandleCsv } from '../../infra/candle-files';
import { replayFromFiles } from '../../infra/candle-files';

const BTC_1H = fixtureCandleFile('fixture_BTC-USDT_1h.csv');
const HOUR = 3_600_000;
const candles = readCandleCsv(BTC_1H).candles;
const K = 2000;
const SYMBOLS = ['BTC/USDT'];

describe('reconcile: the ledger against a paper exchange on PostgreSQL', function () {
  this.timeout(60_000); // starts this process's embedded PostgreSQL on first use (seconds)
  let db: TestDatabase;
  let clock: { now: number };
  let paper: PaperExchange;
  let recorder: LedgerTradeRecorder;

  function setUp(initialBalances: Record<string, string> = { USDT: '10000' }) {
    clock = { now: candles[K].timestamp + HOUR };
    paper = new PaperExchange({
      account: 'reconcile',
      store: new PostgresPaperStateStore(db.sql),
      marketData: replayFromFiles([BTC_1H], { now: () => clock.now }),
      markets: new StaticMarketCatalog([spotMarket('BTC/USDT', { amountPrecision: { kind: 'step', step: '0.00001' }, pricePrecision: { kind: 'step', step: '0.01' }, minCost: 10 })]),
      timeframe: '1h',
      initialBalances,
      now: () => clock.now,
      log: createLogger({ level: process.env.LOG_LEVEL ?? 'silent' }),
    });
    recorder = new LedgerTradeRecorder(db.ledger, { workflowId: 'trader/paper/BTC-USDT', mode: 'paper', exchange: paper.exchangeId });
  }

  beforeEach(async () => {
    db = await freshDatabase();
    setUp();
  });
  afterEach(async () => {
    await db?.drop();
  });

  /** What the trading activity does: intent, place, record the answer and any fills. */
  async function trade(req: OrderRequest, steps: { order?: boolean; fills?: boolean } = {}) {
    await recorder.recordIntent({ ...req, reason: 'test' });
    const order = await paper.createOrder(req);
    if (steps.order !== false) await recorder.recordOrder(req.clientOrderId, order);
    if (steps.fills !== false) await recordFills();
    return order;
  }

  async function recordFills() {
    for (const t of await paper.fetchMyTrades('BTC/USDT')) {
      await recorder.recordFill(t.clientOrderId!, { tradeId: t.id, clientOrderId: t.clientOrderId!, tag: 'test', side: t.side, qty: t.qty, price: t.price, fee: t.fee!.cost, time: t.timestamp });
    }
  }

  const kinds = (ds: Difference[]) => ds.map((d) => d.kind).sort();

  it('finds nothing when the ledger and the exchange agree, and writes nothing', async () => {
    await trade({ clientOrderId: 'in-buy', symbol: 'BTC/USDT', side: 'buy', type: 'market', qty: 0.05 });
    await trade({ clientOrderId: 'in-stop', symbol: 'BTC/USDT', side: 'sell', type: 'stop_market', qty: 0.05, stopPrice: Math.floor(candles[K].close * 0.9) });
    const limit = Math.floor(candles[K].close * 0.985);
    await trade({ clientOrderId: 'in-bid', symbol: 'BTC/USDT', side: 'buy', type: 'limit', qty: 0.01, price: limit });
    const result = await reconcile(db.ledger, paper, SYMBOLS);
    assert.deepEqual(result, { ok: true, differences: [] });
    assert.deepEqual(await db.ledger.auditTrail({ event: 'reconcile.difference' }), []);

    // The bid fills on a later candle: until the recorder catches up, reconcile sees it; after, all agree again.
    const j = candles.findIndex((c, i) => i > K && c.low < limit && c.low > candles[K].close * 0.9);
    assert.ok(j > K, 'the recording dips to the bid before the stop');
    clock.now = candles[j].timestamp + HOUR;
    const behind = await reconcile(db.ledger, paper, SYMBOLS);
    assert.deepEqual(kinds(behind.differences), ['fill_missing_in_ledger', 'order_status', 'position_qty']);
    const status = behind.differences.find((d) => d.kind === 'order_status');
    assert.deepEqual([status?.clientOrderId, status?.ledgerValue, status?.exchangeValue], ['in-bid', 'open', 'filled']);
    await recorder.recordOrder('in-bid', (await paper.fetchOrderByClientId('BTC/USDT', 'in-bid'))!);
    await recordFills();
    assert.deepEqual(await reconcile(db.ledger, paper, SYMBOLS), { ok: true, differences: [] });
  });

  it('reports an open order the ledger does not know', async () => {
    await trade({ clientOrderId: 'known-buy', symbol: 'BTC/USDT', side: 'buy', type: 'market', qty: 0.01 });
    await paper.createOrder({ clientOrderId: 'by-hand', symbol: 'BTC/USDT', side: 'buy', type: 'limit', qty: 0.01, price: Math.floor(candles[K].close * 0.8) });
    const result = await reconcile(db.ledger, paper, SYMBOLS);
    assert.equal(result.ok, false);
    assert.deepEqual(kinds(result.differences), ['order_unknown_to_ledger']);
    const [d] = result.differences;
    assert.deepEqual([d.clientOrderId, d.exchange, d.symbol, d.ledgerValue, d.exchangeValue], ['by-hand', 'paper', 'BTC/USDT', null, 'open']);
    assert.match(d.message, /open buy limit order paper-\S+ \(client id by-hand\) for 0.01 is not in the ledger/);
  });

  it('reports a fill the ledger lacks (and the position it leaves short), without recording it', async () => {
    const order = await trade({ clientOrderId: 'unrecorded-fill', symbol: 'BTC/USDT', side: 'buy', type: 'market', qty: 0.02 }, { fills: false });
    assert.equal(order.status, 'closed');
    const result = await reconcile(db.ledger, paper, SYMBOLS);
    assert.deepEqual(kinds(result.differences), ['fill_missing_in_ledger', 'position_qty']);
    const fill = result.differences.find((d) => d.kind === 'fill_missing_in_ledger')!;
    const [t] = await paper.fetchMyTrades('BTC/USDT');
    assert.deepEqual([fill.fillId, fill.clientOrderId, fill.exchangeValue], [t.id, 'unrecorded-fill', `buy 0.02 @ ${t.price}`]);
    const position = result.differences.find((d) => d.kind === 'position_qty')!;
    assert.deepEqual([position.currency, position.ledgerValue, position.exchangeValue], ['BTC', '0', '0.02']);
    assert.equal((await db.sql`select count(*)::int as n from fills`)[0].n, 0, 'reconcile reports; it does not write fills');
    assert.deepEqual(await db.ledger.openPositions(), []);
  });

  it('reports a position quantity that differs from the balance, and writes one audit row per difference', async () => {
    setUp({ USDT: '10000', BTC: '0.5' }); // coins the ledger never bought
    await trade({ clientOrderId: 'pos-buy', symbol: 'BTC/USDT', side: 'buy', type: 'market', qty: 0.1 });
    const positions = await db.ledger.openPositions();
    const result = await reconcile(db.ledger, paper, SYMBOLS);
    assert.deepEqual(kinds(result.differences), ['position_qty']);
    assert.deepEqual([result.differences[0].ledgerValue, result.differences[0].exchangeValue], ['0.1', '0.6']);
    await reconcile(db.ledger, paper, SYMBOLS);
    const rows = await db.ledger.auditTrail({ event: 'reconcile.difference' });
    assert.equal(rows.length, 2, 'one row per difference per run');
    assert.deepEqual([rows[0].payload.kind, rows[0].payload.currency, rows[0].payload.ledgerValue], ['position_qty', 'BTC', '0.1']);
    assert.deepEqual(await db.ledger.openPositions(), positions, 'the ledger is never overwritten');
  });

  it('reports a live ledger order the exchange does not have, and one the exchange finished', async () => {
    await recorder.recordIntent({ clientOrderId: 'never-sent', symbol: 'BTC/USDT', side: 'buy', type: 'market', qty: 0.01, reason: 'test' });
    const limit = Math.floor(candles[K].close * 0.8);
    await trade({ clientOrderId: 'canceled-there', symbol: 'BTC/USDT', side: 'buy', type: 'limit', qty: 0.01, price: limit });
    await paper.cancelOrder('BTC/USDT', { clientOrderId: 'canceled-there' });
    const result = await reconcile(db.ledger, paper, SYMBOLS);
    assert.deepEqual(
      result.differences.map((d) => [d.kind, d.clientOrderId, d.ledgerValue, d.exchangeValue]).sort(),
      [['order_missing_on_exchange', 'never-sent', 'intent', null], ['order_status', 'canceled-there', 'open', 'canceled']],
    );
    assert.equal((await db.ledger.getOrder('canceled-there'))?.status, 'open', 'reported, not applied');
  });

  it('refuses symbols that are not ccxt symbols', async () => {
    await assert.rejects(reconcile(db.ledger, paper, ['BTCUSDT']), /symbols must be ccxt symbols such as BTC\/USDT/);
  });
});

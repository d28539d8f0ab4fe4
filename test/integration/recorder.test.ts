import assert from 'node:assert/strict';
import { OrderIntentConflict, OrderNotFound } from '../../ledger/errors';
import { Ledger } from '../../ledger/ledger';
import { connect } from '../../infra/postgres';
import { LedgerTradeRecorder, type TradeFill, type TradeIntent } from '../../activities/trading/recorder';
import type { ExchangeOrder } from '../../lib/exchange/types';
import { freshDatabase, testLog, type TestDatabase } from '../../testkit/db';

const T0 = Date.UTC(2024, 0, 2, 10);

describe('LedgerTradeRecorder on PostgreSQL', function () {
  this.timeout(60_000); // starts this process's embedded PostgreSQL on first use (seconds)
  let db: TestDatabase;
  let recorder: LedgerTradeRecorder;
  before(async () => {
    db = await freshDatabase();
    recorder = new LedgerTradeRecorder(db.ledger, { workflowId: 'trader/paper/BTC-USDT', mode: 'paper', exchange: 'paper' });
  });
  after(async () => {
    await db?.drop();
  });

  const count = async (table: 'orders' | 'fills' | 'trades', clientOrderId: string): Promise<number> => {
    const [r] =
      table === 'orders'
        ? await db.sql<{ n: number }[]>`select count(*)::int as n from orders where client_order_id = ${clientOrderId}`
        : table === 'fills'
          ? await db.sql<{ n: number }[]>`select count(*)::int as n from fills f join orders o on o.id = f.order_id where o.client_order_id = ${clientOrderId}`
          : await db.sql<{ n: number }[]>`select count(*)::int as n from trades`;
    return r.n;
  };
  const audits = async (event: string, clientOrderId: string) =>
    (await db.ledger.auditTrail({ event })).filter((a) => a.payload.clientOrderId === clientOrderId);

  const intent = (clientOrderId: string, over: Partial<TradeIntent> = {}): TradeIntent => ({ clientOrderId, symbol: 'BTC/USDT', side: 'buy', type: 'market', qty: 0.01, price: 50_000, decisionSeq: 7, reason: 'signal', ...over });
  const exchangeOrder = (clientOrderId: string, over: Partial<ExchangeOrder> = {}): ExchangeOrder => ({
    id: `ex-${clientOrderId}`, clientOrderId, symbol: 'BTC/USDT', side: 'buy', type: 'market', status: 'closed', qty: 0.01, filledQty: 0.01, avgFillPrice: 50_000, createdAt: T0, updatedAt: T0, ...over,
  });
  const fill = (clientOrderId: string, over: Partial<TradeFill> = {}): TradeFill => ({ tradeId: `ex-${clientOrderId}-1`, clientOrderId, tag: 'entry', side: 'buy', qty: 0.01, price: 50_000, fee: 0.35, time: T0, ...over });

  it('leaves one order and one fill when every call of an activity is replayed', async () => {
    for (let attempt = 0; attempt < 3; attempt++) {
      await recorder.recordIntent(intent('replayed-1'));
      await recorder.recordOrder('replayed-1', exchangeOrder('replayed-1'));
      await recorder.recordFill('replayed-1', fill('replayed-1'));
    }
    assert.equal(await count('orders', 'replayed-1'), 1);
    assert.equal(await count('fills', 'replayed-1'), 1);
    const order = await db.ledger.getOrder('replayed-1');
    assert.deepEqual([order?.status, order?.filledQty, order?.exchangeOrderId, order?.qty, order?.price, order?.decisionSeq], ['filled', '0.01', 'ex-replayed-1', '0.01', '50000', 7]);
    assert.equal((await audits('order.intent', 'replayed-1')).length, 1);
    assert.equal((await audits('fill.recorded', 'replayed-1')).length, 1);
    assert.deepEqual((await db.ledger.orderEvents('replayed-1')).map((e) => e.to), ['intent', 'filled'], 'one transition, not one per retry');
    const [position] = await db.ledger.openPositions();
    assert.deepEqual([position.symbol, position.qty, position.fees], ['BTC/USDT', '0.01', '0.35']);
  });

  it('opens and closes positions from fills and writes the round trip with its fees and exit reason', async () => {
    const r = new LedgerTradeRecorder(db.ledger, { workflowId: 'trader/paper/ETH-USDT', mode: 'replay', exchange: 'paper' });
    const eth = { symbol: 'ETH/USDT' };
    await r.recordIntent(intent('eth-entry', { ...eth, qty: 2, price: 3000 }));
    await r.recordOrder('eth-entry', exchangeOrder('eth-entry', { ...eth, qty: 2, filledQty: 2 }));
    await r.recordFill('eth-entry', fill('eth-entry', { qty: 1.5, price: 3000, fee: 3.15, time: T0 }));
    await r.recordFill('eth-entry', fill('eth-entry', { tradeId: 'ex-eth-entry-2', qty: 0.5, price: 3001, fee: 1.0507, time: T0 + 1000 }));
    let [pos] = (await db.ledger.openPositions()).filter((p) => p.symbol === 'ETH/USDT');
    assert.deepEqual([pos.qty, pos.avgEntryPrice, pos.fees], ['2', '3000.25', '4.2007']);

    await r.recordIntent(intent('eth-stop', { ...eth, side: 'sell', type: 'stop_market', qty: 2, price: undefined, stopPrice: 2900, reason: 'stop_loss' }));
    await r.recordOrder('eth-stop', exchangeOrder('eth-stop', { ...eth, side: 'sell', type: 'stop_market', status: 'open', qty: 2, filledQty: 0, stopPrice: 2900, avgFillPrice: undefined }));
    assert.equal((await db.ledger.getOrder('eth-stop'))?.status, 'open');
    await r.recordFill('eth-stop', fill('eth-stop', { tag: 'stop', side: 'sell', qty: 2, price: 2898.55, fee: 4.05797, time: T0 + 3_600_000 }));
    [pos] = (await db.ledger.openPositions()).filter((p) => p.symbol === 'ETH/USDT');
    assert.equal(pos, undefined, 'the position is closed');

    const [trade] = (await db.ledger.trades()).filter((t) => t.symbol === 'ETH/USDT');
    // (2898.55 - 3000.25) * 2 - (3.15 + 1.0507 + 4.05797)
    assert.deepEqual(
      [trade.qty, trade.entryPrice, trade.exitPrice, trade.fees, trade.pnl, trade.exitReason, trade.exitTime.getTime()],
      ['2', '3000.25', '2898.55', '8.25867', '-211.65867', 'stop_loss', T0 + 3_600_000],
    );
    assert.equal((await db.ledger.getOrder('eth-stop'))?.status, 'filled');
    const closed = (await db.ledger.auditTrail({ event: 'position.closed' })).find((a) => a.payload.clientOrderId === 'eth-stop');
    assert.deepEqual([closed?.actor, closed?.payload.mode, closed?.payload.tag], ['workflow:trader/paper/ETH-USDT', 'replay', 'stop'], 'the audit trail says who, in which mode, which order');
    assert.deepEqual(await db.ledger.positionDiscrepancies(), [], 'positions equal a rebuild from the fills');
  });

  it('records one order when the same intent is recorded concurrently from several connections', async () => {
    const pools = [db.sql, connect(db.url, testLog, { max: 4 }), connect(db.url, testLog, { max: 4 })];
    try {
      const recorders = pools.map((sql) => new LedgerTradeRecorder(new Ledger(sql), { workflowId: 'trader/paper/SOL-USDT', mode: 'paper', exchange: 'paper' }));
      const calls = Array.from({ length: 12 }, (_, n) => recorders[n % 3].recordIntent(intent('racing-1', { symbol: 'SOL/USDT', qty: 3, price: 100 })));
      await Promise.all(calls);
      assert.equal(await count('orders', 'racing-1'), 1);
      assert.equal((await audits('order.intent', 'racing-1')).length, 1);
    } finally {
      await Promise.all(pools.slice(1).map((p) => p.end({ timeout: 5 })));
    }
  });

  it('takes order reports in any order: an older status only attaches the exchange order id', async () => {
    await recorder.recordIntent(intent('late-1', { type: 'limit', qty: 0.02, price: 49_000 }));
    await recorder.recordFill('late-1', fill('late-1', { qty: 0.02, price: 49_000, fee: 0.196 }));
    // The placement's answer (open, nothing filled yet) arrives after the fill was recorded: a retry.
    await recorder.recordOrder('late-1', exchangeOrder('late-1', { type: 'limit', status: 'open', qty: 0.02, filledQty: 0, price: 49_000 }));
    const order = await db.ledger.getOrder('late-1');
    assert.deepEqual([order?.status, order?.exchangeOrderId, order?.filledQty], ['filled', 'ex-late-1', '0.02']);

    await recorder.recordIntent(intent('partial-1', { type: 'limit', qty: 0.03, price: 48_000 }));
    await recorder.recordOrder('partial-1', exchangeOrder('partial-1', { type: 'limit', status: 'open', qty: 0.03, filledQty: 0.01, price: 48_000 }));
    assert.equal((await db.ledger.getOrder('partial-1'))?.status, 'partially_filled');
    await recorder.recordOrder('partial-1', exchangeOrder('partial-1', { type: 'limit', status: 'canceled', qty: 0.03, filledQty: 0.01, price: 48_000, reason: 'canceled on request' }));
    await recorder.recordOrder('partial-1', exchangeOrder('partial-1', { type: 'limit', status: 'canceled', qty: 0.03, filledQty: 0.01, price: 48_000, reason: 'canceled on request' }));
    const events = await db.ledger.orderEvents('partial-1');
    assert.deepEqual(events.map((e) => e.to), ['intent', 'partially_filled', 'canceled']);
    assert.equal(events[2].reason, 'canceled on request');
  });

  it('says which trade ids it has recorded as fills, on its own exchange only', async () => {
    await recorder.recordIntent(intent('known-1'));
    await recorder.recordFill('known-1', fill('known-1', { tradeId: 'known-trade-1' }));
    assert.deepEqual([...(await recorder.recordedFills(['known-trade-1', 'never-seen', 'known-trade-1']))], ['known-trade-1']);
    assert.deepEqual([...(await recorder.recordedFills([]))], []);
    const elsewhere = new LedgerTradeRecorder(db.ledger, { workflowId: 'trader/binance/BTC-USDT', mode: 'live', exchange: 'binance' });
    assert.deepEqual([...(await elsewhere.recordedFills(['known-trade-1']))], [], 'the same trade id on another exchange is another fill');
  });

  it('records a rejection once, and reports (never forces) a status that contradicts the ledger', async () => {
    await recorder.recordIntent(intent('rej-1'));
    await recorder.recordRejection('rej-1', 'InsufficientFundsError: needs 500 USDT, account has 10');
    await recorder.recordRejection('rej-1', 'InsufficientFundsError: needs 500 USDT, account has 10');
    const rejected = await db.ledger.getOrder('rej-1');
    assert.deepEqual([rejected?.status, rejected?.statusReason], ['rejected', 'InsufficientFundsError: needs 500 USDT, account has 10']);
    assert.equal((await db.ledger.orderEvents('rej-1')).length, 2);

    await recorder.recordIntent(intent('conflict-1', { type: 'limit', price: 40_000 }));
    await recorder.recordOrder('conflict-1', exchangeOrder('conflict-1', { type: 'limit', status: 'canceled', filledQty: 0, price: 40_000 }));
    for (let i = 0; i < 2; i++) await recorder.recordOrder('conflict-1', exchangeOrder('conflict-1', { type: 'limit', status: 'closed', price: 40_000 }));
    assert.equal((await db.ledger.getOrder('conflict-1'))?.status, 'canceled', 'the ledger is not overwritten');
    const conflicts = await audits('order.status_conflict', 'conflict-1');
    assert.equal(conflicts.length, 1, 'written once, whatever the retries');
    assert.deepEqual([conflicts[0].payload.ledgerStatus, conflicts[0].payload.reportedStatus, conflicts[0].payload.mode], ['canceled', 'filled', 'paper']);
  });

  it('refuses calls that cannot be right, with errors that say why', async () => {
    await recorder.recordIntent(intent('bad-1'));
    await assert.rejects(recorder.recordIntent(intent('bad-1', { qty: 0.02 })), OrderIntentConflict);
    await assert.rejects(recorder.recordFill('bad-1', fill('other-1')), /fill ex-other-1-1 belongs to client order id other-1/);
    await assert.rejects(recorder.recordFill('bad-1', fill('bad-1', { side: 'sell' })), /is a sell, the order a buy/);
    await assert.rejects(recorder.recordFill('bad-1', fill('bad-1', { qty: Number.NaN })), /fill qty must be a finite number/);
    await assert.rejects(recorder.recordOrder('bad-1', exchangeOrder('bad-1', { symbol: 'ETH/USDT' })), /it is a BTC\/USDT order, the exchange reports ETH\/USDT/);
    await recorder.recordOrder('bad-1', exchangeOrder('bad-1'));
    await assert.rejects(recorder.recordOrder('bad-1', exchangeOrder('bad-1', { id: 'ex-someone-else' })), /one client order id, two exchange orders/);
    await assert.rejects(recorder.recordFill('never-recorded', fill('never-recorded')), OrderNotFound);
    await assert.rejects(recorder.recordIntent(intent('bad-2', { qty: -1 })), /qty: must be > 0/);
    const live = new LedgerTradeRecorder(db.ledger, { workflowId: 'trader/binance/BTC-USDT', mode: 'live', exchange: 'binance' });
    await assert.rejects(live.recordFill('bad-1', fill('bad-1')), /recorded on exchange paper, this recorder writes for binance/);
    assert.throws(() => new LedgerTradeRecorder(db.ledger, { workflowId: 'w', mode: 'dry' as 'paper', exchange: 'paper' }), /mode must be paper, live or replay/);
    assert.throws(() => new LedgerTradeRecorder(db.ledger, { workflowId: 'w', mode: 'paper', exchange: 'Binance US' }), /exchange must be a lowercase exchange id/);
  });
});

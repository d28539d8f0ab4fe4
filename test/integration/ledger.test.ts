import assert from 'node:assert/strict';
import type postgres from 'postgres';
import { ORDER_STATUSES, ORDER_TRANSITIONS, IllegalOrderTransition, assertTransition, canTransition, TERMINAL_ORDER_STATUSES } from '../../lib/order-status';
import { connect } from '../../infra/postgres';
import { Ledger } from '../../ledger/ledger';
import { FeeConversionRequired, FillConflict, OrderIntentConflict, OrderOverfilled } from '../../ledger/errors';
import { freshDatabase, testLog, type TestDatabase } from '../../testkit/db';
import type { OrderIntent } from '../../ledger/types';

const T0 = new Date('2025-01-01T00:00:00Z');
const at = (minutes: number) => new Date(T0.getTime() + minutes * 60_000);

function intent(id: string, over: Partial<OrderIntent> = {}): OrderIntent {
  return { clientOrderId: id, exchange: 'binance', symbol: 'BTC/USDT', side: 'buy', type: 'market', qty: '0.5', ...over };
}

async function count(sql: postgres.Sql, table: string, where = 'true'): Promise<number> {
  const [r] = await sql.unsafe<{ n: number }[]>(`select count(*)::int as n from ${table} where ${where}`);
  return r.n;
}

describe('order status state machine (lib/order-status)', () => {
  it('allows the lifecycle and nothing out of a final status', () => {
    assert.ok(canTransition('intent', 'submitted'));
    assert.ok(canTransition('submitted', 'open'));
    assert.ok(canTransition('open', 'partially_filled'));
    assert.ok(canTransition('partially_filled', 'partially_filled'));
    assert.ok(canTransition('partially_filled', 'filled'));
    assert.ok(!canTransition('open', 'submitted'));
    assert.ok(!canTransition('open', 'rejected'), 'an order the exchange accepted is not rejected later');
    assert.deepEqual([...TERMINAL_ORDER_STATUSES].sort(), ['canceled', 'expired', 'filled', 'rejected']);
    for (const from of TERMINAL_ORDER_STATUSES) {
      for (const to of ORDER_STATUSES) assert.ok(!canTransition(from, to), `${from} -> ${to}`);
    }
    assert.throws(() => assertTransition('filled', 'open', 'c1'), (e: unknown) => e instanceof IllegalOrderTransition && e.name === 'IllegalOrderTransition' && /filled -> open.*c1/.test(e.message));
    assert.throws(() => assertTransition('bogus' as never, 'open'), IllegalOrderTransition);
  });
});

describe('ledger on PostgreSQL', function () {
  this.timeout(60_000); // starts this process's embedded PostgreSQL on first use (seconds)
  let db: TestDatabase;
  let ledger: Ledger;
  before(async () => {
    db = await freshDatabase();
    ledger = db.ledger;
  });
  after(async () => db?.drop());

  describe('order transitions', () => {
    it('the database holds the same transition table as lib/order-status', async () => {
      const rows = await db.sql<{ from_status: string; to_status: string }[]>`select from_status, to_status from order_status_transitions`;
      const fromDb = rows.map((r) => `${r.from_status}->${r.to_status}`).sort();
      const fromTs = Object.entries(ORDER_TRANSITIONS).flatMap(([from, tos]) => tos.map((to) => `${from}->${to}`)).sort();
      assert.deepEqual(fromDb, fromTs);
    });

    it('refuses an illegal transition through the API, and leaves the order as it was', async () => {
      await ledger.recordOrderIntent(intent('tr-api'));
      await ledger.transitionOrder('tr-api', 'submitted', { exchangeOrderId: 'X1' });
      await ledger.transitionOrder('tr-api', 'canceled', { reason: 'kill switch' });
      await assert.rejects(ledger.transitionOrder('tr-api', 'open'), (e: unknown) => e instanceof IllegalOrderTransition && e.from === 'canceled' && e.to === 'open');
      const order = await ledger.getOrder('tr-api');
      assert.equal(order?.status, 'canceled');
      assert.equal(order?.statusReason, 'kill switch');
      assert.deepEqual(
        (await ledger.orderEvents('tr-api')).map((e) => [e.from, e.to, e.reason]),
        [[null, 'intent', null], ['intent', 'submitted', null], ['submitted', 'canceled', 'kill switch']],
      );
    });

    it('refuses an illegal transition made with direct SQL (the trigger, not the API, guards it)', async () => {
      await ledger.recordOrderIntent(intent('tr-sql'));
      await ledger.transitionOrder('tr-sql', 'filled');
      await assert.rejects(db.sql`update orders set status = 'open' where client_order_id = 'tr-sql'`, (e: postgres.PostgresError) => e.code === 'DT001' && /illegal order transition filled -> open/.test(e.message));
      await assert.rejects(db.sql`update orders set status = 'bogus' where client_order_id = 'tr-sql'`, /orders_status_check|illegal/);
      // An order enters as an intent; it cannot be born filled.
      await assert.rejects(
        db.sql`insert into orders (client_order_id, exchange, symbol, side, type, qty, status) values ('tr-born', 'binance', 'BTC/USDT', 'buy', 'market', 1, 'filled')`,
        (e: postgres.PostgresError) => e.code === 'DT001',
      );
      // What was ordered cannot be rewritten, and orders are never deleted.
      await assert.rejects(db.sql`update orders set qty = 2 where client_order_id = 'tr-sql'`, (e: postgres.PostgresError) => e.code === 'DT003');
      await assert.rejects(db.sql`delete from orders where client_order_id = 'tr-sql'`, (e: postgres.PostgresError) => e.code === 'DT002');
      assert.equal((await ledger.getOrder('tr-sql'))?.status, 'filled');
    });

    it('a transition to the status the order already has is a no-op (a retried activity)', async () => {
      await ledger.recordOrderIntent(intent('tr-retry'));
      await ledger.transitionOrder('tr-retry', 'submitted', { exchangeOrderId: 'E-9' });
      const again = await ledger.transitionOrder('tr-retry', 'submitted', { exchangeOrderId: 'E-9' });
      assert.equal(again.status, 'submitted');
      assert.equal((await ledger.orderEvents('tr-retry')).length, 2);
      assert.equal(await count(db.sql, 'audit_log', `event = 'order.transition' and payload->>'clientOrderId' = 'tr-retry'`), 1);
      // An exchange order id, once known, cannot be replaced by another.
      await assert.rejects(ledger.transitionOrder('tr-retry', 'open', { exchangeOrderId: 'E-10' }), /already has exchange order id E-9/);
      // Orders not in a final status are what reconciliation with the exchange looks at.
      const live = (await ledger.liveOrders()).map((o) => o.clientOrderId);
      assert.ok(live.includes('tr-retry'));
      assert.ok(!live.includes('tr-api') && !live.includes('tr-sql'), 'canceled and filled orders are not live');
    });
  });

  describe('recordOrderIntent', () => {
    it('is idempotent on the client order id, and refuses a different order under the same id', async () => {
      const first = await ledger.recordOrderIntent(intent('int-1', { price: '100.50', type: 'limit', decisionSeq: 7, workflowId: 'trader/binance/BTC-USDT', reason: 'signal' }));
      assert.equal(first.created, true);
      assert.equal(first.order.status, 'intent');
      assert.equal(first.order.decisionSeq, 7);
      // Same order written differently ("0.50" is "0.5") is the same intent.
      const second = await ledger.recordOrderIntent(intent('int-1', { qty: '0.50', price: '100.5', type: 'limit', decisionSeq: 7 }));
      assert.equal(second.created, false);
      assert.equal(second.order.id, first.order.id);
      await assert.rejects(ledger.recordOrderIntent(intent('int-1', { qty: '0.6', price: '100.5', type: 'limit' })), OrderIntentConflict);
      assert.equal(await count(db.sql, 'orders', `client_order_id = 'int-1'`), 1);
      assert.equal(await count(db.sql, 'audit_log', `event = 'order.intent' and payload->>'clientOrderId' = 'int-1'`), 1);
    });

    it('validates at the edge: decimal strings only, prices where the order type needs them', async () => {
      await assert.rejects(ledger.recordOrderIntent(intent('bad-1', { qty: 0.5 as unknown as string })), /qty/);
      await assert.rejects(ledger.recordOrderIntent(intent('bad-2', { qty: '1e-3' })), /decimal string/);
      await assert.rejects(ledger.recordOrderIntent(intent('bad-3', { qty: '0' })), /must be > 0/);
      await assert.rejects(ledger.recordOrderIntent(intent('bad-4', { type: 'limit' })), /orders_price_required_check/);
      await assert.rejects(ledger.recordOrderIntent(intent('bad 5')), /printable ASCII/);
      assert.equal(await count(db.sql, 'orders', `client_order_id like 'bad%'`), 0);
    });

    it('two writers racing on one client order id from separate pools leave exactly one order', async () => {
      const poolA = connect(db.url, testLog, { max: 4 });
      const poolB = connect(db.url, testLog, { max: 4 });
      try {
        const a = new Ledger(poolA, { actor: 'writer-a' });
        const b = new Ledger(poolB, { actor: 'writer-b' });
        // Warm both pools so the racing statements do not queue behind connection set-up.
        await Promise.all([poolA`select 1`, poolB`select 1`, poolA`select 1`, poolB`select 1`]);
        for (let i = 0; i < 25; i++) {
          const id = `race-${i}`;
          const results = await Promise.all([a, b, a, b].map((l) => l.recordOrderIntent(intent(id))));
          assert.equal(results.filter((r) => r.created).length, 1, `${id}: exactly one writer creates it`);
          assert.equal(new Set(results.map((r) => r.order.id)).size, 1, `${id}: every writer sees the same row`);
        }
        assert.equal(await count(db.sql, 'orders', `client_order_id like 'race-%'`), 25);
        assert.equal(await count(db.sql, 'audit_log', `event = 'order.intent' and payload->>'clientOrderId' like 'race-%'`), 25);
        assert.equal(await count(db.sql, 'order_events', `order_id in (select id from orders where client_order_id like 'race-%')`), 25);
      } finally {
        await Promise.all([poolA.end(), poolB.end()]);
      }
    });
  });

  describe('recordFill', () => {
    it('opens, increases and closes a position with exact average cost, fees in either currency, and a trade row', async () => {
      const ex = { exchange: 'kraken', symbol: 'ETH/USD' };
      await ledger.recordOrderIntent(intent('rt-buy', { ...ex, qty: '0.5' }));
      const f1 = await ledger.recordFill({ clientOrderId: 'rt-buy', fillId: 'k1', qty: '0.2', price: '100', fee: '0.0002', feeCurrency: 'ETH', ts: at(0) });
      assert.equal(f1.created, true);
      assert.equal(f1.order.status, 'partially_filled');
      // A fee in the base asset means less was received: 0.1998 held, fee 0.02 USD.
      assert.equal(f1.fill.positionQtyDelta, '0.1998');
      assert.equal(f1.fill.feeQuote, '0.02');
      assert.deepEqual([f1.position?.status, f1.position?.qty, f1.position?.avgEntryPrice, f1.position?.realizedPnl], ['open', '0.1998', '100', '-0.02']);
      const f2 = await ledger.recordFill({ clientOrderId: 'rt-buy', fillId: 'k2', qty: '0.3', price: '110', fee: '0.033', feeCurrency: 'USD', ts: at(1) });
      assert.equal(f2.order.status, 'filled');
      assert.equal(f2.order.filledQty, '0.5');
      // (0.1998 * 100 + 0.3 * 110) / 0.4998, truncated at 18 places
      assert.equal(f2.position?.avgEntryPrice, '106.002400960384153661');
      assert.equal(f2.position?.qty, '0.4998');

      await ledger.recordOrderIntent(intent('rt-sell1', { ...ex, side: 'sell', qty: '0.2', reason: 'take_profit' }));
      const s1 = await ledger.recordFill({ clientOrderId: 'rt-sell1', fillId: 'k3', qty: '0.2', price: '120', fee: '0.024', feeCurrency: 'USD', ts: at(2) });
      assert.equal(s1.position?.status, 'open');
      assert.equal(s1.position?.qty, '0.2998');
      assert.equal(s1.trade, null);
      await ledger.recordOrderIntent(intent('rt-sell2', { ...ex, side: 'sell', qty: '0.2998', reason: 'stop_loss' }));
      const s2 = await ledger.recordFill({ clientOrderId: 'rt-sell2', fillId: 'k4', qty: '0.2998', price: '90', fee: '0.026982', feeCurrency: 'USD', ts: at(3) });
      assert.equal(s2.position?.status, 'closed');
      assert.equal(s2.position?.closedAt?.toISOString(), at(3).toISOString());
      const t = s2.trade!;
      assert.equal(t.qty, '0.4998');
      assert.equal(t.entryPrice, '106.002400960384153661');
      assert.equal(t.exitPrice, '102.004801920768307322', 'exit price: (0.2 * 120 + 0.2998 * 90) / 0.4998, truncated');
      assert.equal(t.fees, '0.103982');
      assert.equal(t.exitReason, 'stop_loss');
      // Cash view: paid 0.2*100 + 0.3*110 + 0.033 = 53.033 USD, the 0.0002 ETH fee left 0.4998 ETH;
      // got 0.2*120 - 0.024 + 0.2998*90 - 0.026982 = 50.931018 USD. PnL -2.101982, up to the
      // 18-place truncation of the average price (x 0.4998 < 1e-18); the exact figure was
      // computed independently with Python's decimal module.
      assert.equal(t.pnl, '-2.1019819999999999997678');
      assert.deepEqual((await ledger.trades({ since: at(3) })).map((x) => x.id), [t.id]);
      assert.deepEqual(await ledger.trades({ since: at(4) }), []);
      const events = (await ledger.auditTrail()).filter((e) => ['k1', 'k2', 'k3', 'k4'].includes(e.payload.fillId as string)).map((e) => e.event);
      assert.deepEqual(events, [
        'fill.recorded', 'order.transition', 'position.opened',
        'fill.recorded', 'order.transition', 'position.increased',
        'fill.recorded', 'order.transition', 'position.reduced',
        'fill.recorded', 'order.transition', 'position.closed',
      ]);
    });

    it('is idempotent on the exchange fill id, also when the same fill arrives twice at once', async () => {
      await ledger.recordOrderIntent(intent('dup', { symbol: 'SOL/USDT', qty: '10' }));
      const fill = { clientOrderId: 'dup', fillId: 'd1', qty: '4', price: '20', fee: '0.08', feeCurrency: 'USDT', ts: at(0) };
      const other = connect(db.url, testLog, { max: 2 });
      try {
        const [a, b] = await Promise.all([ledger.recordFill(fill), new Ledger(other).recordFill(fill)]);
        assert.equal([a, b].filter((r) => r.created).length, 1);
        assert.equal(a.fill.id, b.fill.id);
      } finally {
        await other.end();
      }
      const audits = await count(db.sql, 'audit_log');
      const again = await ledger.recordFill(fill);
      assert.equal(again.created, false);
      assert.equal(again.order.filledQty, '4');
      assert.equal(again.position?.qty, '4');
      assert.equal(await count(db.sql, 'fills', `fill_id = 'd1'`), 1);
      assert.equal(await count(db.sql, 'audit_log'), audits);
      await assert.rejects(ledger.recordFill({ ...fill, qty: '5' }), FillConflict);
    });

    it('refuses what would corrupt the ledger, recording nothing', async () => {
      await ledger.recordOrderIntent(intent('guard', { symbol: 'ADA/USDT', qty: '100' }));
      await ledger.recordOrderIntent(intent('guard-rej', { symbol: 'ADA/USDT' }));
      await ledger.transitionOrder('guard-rej', 'rejected', { reason: 'insufficient balance' });
      const before = { fills: await count(db.sql, 'fills'), audit: await count(db.sql, 'audit_log') };
      await assert.rejects(ledger.recordFill({ clientOrderId: 'guard', fillId: 'g1', qty: '101', price: '1', ts: at(0) }), OrderOverfilled);
      await assert.rejects(ledger.recordFill({ clientOrderId: 'guard', fillId: 'g2', qty: '1', price: '1', fee: '0.001', feeCurrency: 'BNB', ts: at(0) }), FeeConversionRequired);
      await assert.rejects(ledger.recordFill({ clientOrderId: 'nope', fillId: 'g3', qty: '1', price: '1', ts: at(0) }), /no order with client order id nope/);
      await assert.rejects(ledger.recordFill({ clientOrderId: 'guard-rej', fillId: 'g4', qty: '0.1', price: '1', ts: at(0) }), IllegalOrderTransition);
      assert.deepEqual({ fills: await count(db.sql, 'fills'), audit: await count(db.sql, 'audit_log') }, before);
      // A fee in a third currency is fine once converted by the caller.
      const ok = await ledger.recordFill({ clientOrderId: 'guard', fillId: 'g2', qty: '1', price: '1', fee: '0.001', feeCurrency: 'BNB', feeQuote: '0.6', ts: at(0) });
      assert.equal(ok.fill.feeQuote, '0.6');
      assert.equal(ok.position?.realizedPnl, '-0.6');
    });

    it('records a late fill on a canceled order, a sell with nothing open, and a sell larger than the position', async () => {
      const m = { symbol: 'DOT/USDT' };
      await ledger.recordOrderIntent(intent('late', { ...m, qty: '2' }));
      await ledger.transitionOrder('late', 'open');
      await ledger.transitionOrder('late', 'canceled', { reason: 'timeout' });
      const late = await ledger.recordFill({ clientOrderId: 'late', fillId: 'l1', qty: '1', price: '5', ts: at(0) });
      assert.equal(late.order.status, 'canceled');
      assert.equal(late.order.filledQty, '1');
      assert.equal(late.position?.qty, '1');
      assert.equal(await count(db.sql, 'audit_log', `event = 'order.late_fill'`), 1);

      await ledger.recordOrderIntent(intent('over', { ...m, side: 'sell', qty: '1.5' }));
      const over = await ledger.recordFill({ clientOrderId: 'over', fillId: 'l2', qty: '1.5', price: '6', ts: at(1) });
      assert.equal(over.position?.status, 'closed');
      assert.equal(over.position?.realizedPnl, '1');
      assert.equal(over.trade?.qty, '1');
      const [oversold] = (await ledger.auditTrail({ event: 'position.oversold' })).filter((e) => e.payload.fillId === 'l2');
      assert.equal(oversold.payload.excess, '0.5');

      await ledger.recordOrderIntent(intent('naked', { ...m, side: 'sell', qty: '1' }));
      const naked = await ledger.recordFill({ clientOrderId: 'naked', fillId: 'l3', qty: '1', price: '6', ts: at(2) });
      assert.equal(naked.position, null);
      assert.equal(naked.order.status, 'filled');
      assert.equal((await ledger.openPositions()).filter((p) => p.symbol === 'DOT/USDT').length, 0);
    });
  });

  describe('append-only tables', () => {
    it('audit_log refuses UPDATE, DELETE and TRUNCATE; fills and order_events refuse changes too', async () => {
      const row = await ledger.audit('operator.note', { text: 'hello' });
      assert.equal(row.actor, 'test');
      await assert.rejects(db.sql`update audit_log set payload = '{}' where id = ${row.id}`, (e: postgres.PostgresError) => e.code === 'DT002' && /append-only/.test(e.message));
      await assert.rejects(db.sql`delete from audit_log where id = ${row.id}`, (e: postgres.PostgresError) => e.code === 'DT002');
      await assert.rejects(db.sql`truncate audit_log`, (e: postgres.PostgresError) => e.code === 'DT002');
      await assert.rejects(db.sql`delete from fills`, (e: postgres.PostgresError) => e.code === 'DT002');
      await assert.rejects(db.sql`update order_events set reason = 'x'`, (e: postgres.PostgresError) => e.code === 'DT002');
      const [still] = await db.sql<{ payload: { text: string } }[]>`select payload from audit_log where id = ${row.id}`;
      assert.equal(still.payload.text, 'hello');
      await assert.rejects(ledger.audit('Not An Event Name'), /audit_log_event_check/);
    });
  });

  describe('equity', () => {
    it('snapshots are idempotent on their time and come back as a curve', async () => {
      await ledger.snapshotEquity({ equity: '10000', cash: '10000', ts: at(0) });
      await ledger.snapshotEquity({ equity: '10012.5', cash: '9000', ts: at(60) });
      const retry = await ledger.snapshotEquity({ equity: '10012.5', cash: '9000', ts: at(60) });
      assert.equal(retry.equity, '10012.5');
      assert.deepEqual((await ledger.equityCurve()).map((s) => [s.ts.toISOString(), s.equity, s.cash]), [
        [at(0).toISOString(), '10000', '10000'],
        [at(60).toISOString(), '10012.5', '9000'],
      ]);
      assert.equal((await ledger.equityCurve({ since: at(1) })).length, 1);
      await assert.rejects(ledger.snapshotEquity({ equity: '-1', cash: '0', ts: at(120) }), /equity: must be >= 0/);
      await assert.rejects(db.sql`insert into equity_snapshots (ts, equity, cash) values (now(), -1, 0)`, /equity_snapshots_equity_check/);
    });

    it('snapshots carry their account, exposure, peak and drawdown; one per account and time', async () => {
      const base = { equity: '9800', cash: '9300.5', exposure: '499.5', peakEquity: '10000', drawdown: '0.02' };
      const a = await ledger.snapshotEquity({ ...base, account: 'paper-binance', ts: at(1000) });
      assert.deepEqual({ ...a, ts: a.ts.toISOString() }, { ...base, account: 'paper-binance', ts: at(1000).toISOString() });
      // Another account at the same time is another row; a retry of the first returns it unchanged.
      await ledger.snapshotEquity({ ...base, equity: '5000', account: 'paper-kraken', ts: at(1000) });
      const retry = await ledger.snapshotEquity({ ...base, equity: '1', account: 'paper-binance', ts: at(1000) });
      assert.equal(retry.equity, '9800', 'the row already there wins');
      await ledger.snapshotEquity({ ...base, equity: '9900', drawdown: '0.01', account: 'paper-binance', ts: at(1001) });
      assert.deepEqual((await ledger.equityCurve({ account: 'paper-binance', since: at(1000) })).map((s) => [s.equity, s.drawdown]), [['9800', '0.02'], ['9900', '0.01']]);
      assert.deepEqual((await ledger.equityCurve({ since: at(1000), until: at(1001) })).map((s) => s.account).sort(), ['paper-binance', 'paper-kraken']);
      assert.equal((await ledger.latestEquitySnapshot('paper-binance'))?.equity, '9900');
      assert.equal((await ledger.latestEquitySnapshot('paper-kraken'))?.equity, '5000');
      assert.equal(await ledger.latestEquitySnapshot('nobody'), null);
      assert.equal((await ledger.latestEquitySnapshot())?.ts.toISOString(), at(1001).toISOString(), 'without an account: the newest of all');
      await assert.rejects(ledger.snapshotEquity({ ...base, drawdown: '1.5', account: 'x', ts: at(1002) }), /drawdown: a fraction, at most 1/);
      await assert.rejects(ledger.snapshotEquity({ ...base, exposure: '-3', account: 'x', ts: at(1002) }), /exposure: must be >= 0/);
    });

    it('cash flow: proceeds minus costs minus fees of the fills on one exchange, exact', async () => {
      const fill = (id: string, qty: string, price: string, fee: string, feeCurrency: string) => ({ clientOrderId: id, fillId: `${id}-f`, qty, price, fee, feeCurrency, ts: at(5) });
      await ledger.recordOrderIntent(intent('cash-buy', { exchange: 'cashx', qty: '0.3' }));
      await ledger.recordFill(fill('cash-buy', '0.3', '100.1', '0.03003', 'USDT'));
      await ledger.recordOrderIntent(intent('cash-sell', { exchange: 'cashx', side: 'sell', qty: '0.1' }));
      await ledger.recordFill(fill('cash-sell', '0.1', '110', '0.011', 'USDT'));
      // A fee in the base asset shrinks the position, not the cash.
      await ledger.recordOrderIntent(intent('cash-buy-2', { exchange: 'cashx', qty: '0.2' }));
      await ledger.recordFill(fill('cash-buy-2', '0.2', '90', '0.0002', 'BTC'));
      // -30.03 - 0.03003 + 11 - 0.011 - 18
      assert.equal(await ledger.cashFlow('cashx'), '-37.07103');
      assert.equal(await ledger.cashFlow('nowhere'), '0');
    });
  });

  describe('schema constraints', () => {
    it('enforce what the domain requires', async () => {
      const reject = (q: Promise<unknown>, constraint: RegExp) => assert.rejects(q, (e: postgres.PostgresError) => constraint.test(e.constraint_name ?? e.message));
      await db.sql`insert into positions (exchange, symbol, qty, avg_entry_price, entry_qty, opened_at) values ('x', 'A/B', 1, 1, 1, now())`;
      await reject(db.sql`insert into positions (exchange, symbol, qty, avg_entry_price, entry_qty, opened_at) values ('x', 'A/B', 1, 1, 1, now())`, /positions_one_open/);
      await reject(db.sql`insert into positions (exchange, symbol, qty, avg_entry_price, entry_qty, opened_at) values ('x', 'C/D', 2, 1, 1, now())`, /positions_qty_balance_check/);
      await reject(db.sql`insert into orders (client_order_id, exchange, symbol, side, type, qty) values ('c1', 'x', 'A/B', 'hold', 'market', 1)`, /orders_side_check/);
      await reject(db.sql`insert into orders (client_order_id, exchange, symbol, side, type, qty) values ('c2', 'x', 'A/B', 'buy', 'market', 0)`, /orders_qty_check/);
      await reject(db.sql`insert into candles values ('x', 'A/B', '1h', now(), 10, 9, 11, 10, 1)`, /candles_range_check/);
      await reject(db.sql`insert into candles values ('x', 'A/B', 'hourly', now(), 10, 12, 9, 10, 1)`, /candles_timeframe_check/);
      const mv = (id: string, role: string) =>
        db.sql`insert into model_versions (id, kind, feature_schema_hash, data_from, data_to, artifact_path, role)
               values (${id}, 'ensemble', 'deadbeef01', '2024-01-01', '2024-06-01', ${'models/' + id}, ${role})`;
      await mv('m1', 'champion');
      await mv('m2', 'challenger');
      await reject(mv('m3', 'champion'), /model_versions_one_champion/);
      await reject(db.sql`insert into model_versions (id, kind, feature_schema_hash, data_from, data_to, artifact_path) values ('m4', 'ppo', 'deadbeef01', '2024-06-01', '2024-01-01', 'x')`, /model_versions_data_range_check/);
    });
  });
});

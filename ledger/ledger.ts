import type postgres from 'postgres';
import type { Logger } from '../infra/logger';
import { IllegalOrderTransition, assertTransition, isTerminalStatus, type OrderStatus } from '../lib/order-status';
import { FeeConversionRequired, FillConflict, OrderIntentConflict, OrderNotFound, OrderOverfilled } from './errors';
import { rebuildPositions, type FillForRebuild } from './rebuild';
import { decCmp, isDecimalString, toDecimalString } from '../lib/decimal';
import { transaction } from '../infra/transaction';
import {
  EquitySnapshotInput,
  FillReport,
  OrderIntent,
  OrderStatusSchema,
  type AuditEntry,
  type EquitySnapshot,
  type Fill,
  type Order,
  type Position,
  type RebuiltPosition,
  type Trade,
  type TradeSummary,
  type TradeTotals,
} from './types';

type Tx = postgres.TransactionSql;
type Row = Record<string, unknown>;

/** First key of pg_advisory_xact_lock(int, int): per-market serialization of fills. */
const MARKET_LOCK_NS = 7_361_001;
/** Same, for auditOnce: per-event serialization of its check-then-insert. */
const AUDIT_ONCE_LOCK_NS = 7_361_002;

const TERMINAL_SQL = ['filled', 'canceled', 'rejected', 'expired'];

export interface FillResult {
  fill: Fill;
  /** False when this fill id was already recorded: nothing changed. */
  created: boolean;
  order: Order;
  /** The position this fill touched (null for a sell with no open position). */
  position: Position | null;
  /** The round trip closed by this fill, if it closed one. */
  trade: Trade | null;
}

/**
 * The ledger: the source of truth for orders, fills, positions and PnL. Every change happens in
 * one transaction together with its audit rows, so a crash at any point leaves either all of
 * it or none. Retries are safe: intents are idempotent on the client order id, fills on the
 * exchange's fill id, transitions to the status an order already has are no-ops.
 *
 * Fills of one market (exchange, symbol) are serialized by an advisory lock taken before the
 * fill row gets its id, so fills.id order is exactly the order positions were updated in, and
 * a rebuild that replays fills by id reproduces them to the last digit.
 */
export class Ledger {
  constructor(
    readonly sql: postgres.Sql,
    private readonly opts: { actor?: string; log?: Logger; context?: Record<string, unknown> } = {},
  ) {}

  /** The same ledger writing audit rows under another actor (e.g. `workflow:<id>`, `cli`). */
  withActor(actor: string): Ledger {
    return new Ledger(this.sql, { ...this.opts, actor });
  }

  /**
   * The same ledger adding `context` (e.g. `{ mode: 'paper' }`) to the payload of every audit row
   * it writes; keys of the row's own payload win. Contexts of chained calls merge.
   */
  withAuditContext(context: Record<string, unknown>): Ledger {
    return new Ledger(this.sql, { ...this.opts, context: { ...this.opts.context, ...context } });
  }

  async recordOrderIntent(input: OrderIntent): Promise<{ order: Order; created: boolean }> {
    const i = OrderIntent.parse(input);
    return transaction(this.sql, async (tx) => {
      const inserted = await tx<Row[]>`
        insert into orders (client_order_id, exchange, symbol, side, type, qty, price, stop_price, workflow_id, decision_seq, reason, strategy, entry_tag)
        values (${i.clientOrderId}, ${i.exchange}, ${i.symbol}, ${i.side}, ${i.type}, ${i.qty}, ${i.price ?? null},
                ${i.stopPrice ?? null}, ${i.workflowId ?? null}, ${i.decisionSeq ?? null}, ${i.reason ?? null},
                ${i.strategy ? tx.json(i.strategy) : null}, ${i.entryTag ?? null})
        on conflict (client_order_id) do nothing
        returning *`;
      if (inserted.length === 1) {
        const order = toOrder(inserted[0]);
        await this.auditTx(tx, 'order.intent', { ...i });
        return { order, created: true };
      }
      // Taken: by a retry of this very intent (fine) or by a different order (an id collision).
      const [existing] = await tx<Row[]>`
        select *, (exchange, symbol, side, type) = (${i.exchange}, ${i.symbol}, ${i.side}, ${i.type})
                  and qty = ${i.qty}::numeric
                  and price is not distinct from ${i.price ?? null}::numeric
                  and stop_price is not distinct from ${i.stopPrice ?? null}::numeric as same
        from orders where client_order_id = ${i.clientOrderId}`;
      const order = toOrder(existing);
      if (!existing.same) {
        const pick = (o: Partial<Order>) => ({ exchange: o.exchange, symbol: o.symbol, side: o.side, type: o.type, qty: o.qty, price: o.price ?? null, stopPrice: o.stopPrice ?? null });
        throw new OrderIntentConflict(i.clientOrderId, pick(order), pick({ ...i, price: i.price ?? null, stopPrice: i.stopPrice ?? null }));
      }
      return { order, created: false };
    });
  }

  /**
   * Moves an order along the state machine. Asking for the status it already has is a no-op
   * (an activity retried after its first attempt committed); an illegal move throws
   * IllegalOrderTransition, and the database trigger refuses it for any other writer too.
   */
  async transitionOrder(clientOrderId: string, to: OrderStatus, opts: { exchangeOrderId?: string; reason?: string } = {}): Promise<Order> {
    OrderStatusSchema.parse(to);
    return transaction(this.sql, async (tx) => {
      const [row] = await tx<Row[]>`select * from orders where client_order_id = ${clientOrderId} for update`;
      if (!row) throw new OrderNotFound(clientOrderId);
      const current = toOrder(row);
      const statusChanges = current.status !== to;
      if (statusChanges) assertTransition(current.status, to, clientOrderId);
      const newExchangeId = opts.exchangeOrderId !== undefined && opts.exchangeOrderId !== current.exchangeOrderId;
      if (!statusChanges && !newExchangeId) return current;
      const [updated] = await tx<Row[]>`
        update orders set
          status = ${to},
          status_reason = ${statusChanges ? (opts.reason ?? null) : current.statusReason},
          exchange_order_id = ${opts.exchangeOrderId ?? current.exchangeOrderId}
        where id = ${current.id}
        returning *`.catch(mapDbError(current.status, to, clientOrderId));
      await this.auditTx(tx, statusChanges ? 'order.transition' : 'order.exchange_order_id', {
        clientOrderId,
        from: current.status,
        to,
        reason: opts.reason ?? null,
        exchangeOrderId: opts.exchangeOrderId ?? current.exchangeOrderId,
      });
      return toOrder(updated);
    });
  }

  /**
   * Records one exchange fill and everything that follows from it, atomically: the fill row,
   * the order's filled quantity and status, the position (open / increase / reduce / close),
   * the trade row of a closed round trip, and audit rows. The same fill id again returns the
   * recorded fill with created=false and changes nothing.
   */
  async recordFill(input: FillReport): Promise<FillResult> {
    const f = FillReport.parse(input);
    return transaction(this.sql, async (tx) => {
      const [head] = await tx<{ exchange: string; symbol: string }[]>`select exchange, symbol from orders where client_order_id = ${f.clientOrderId}`;
      if (!head) throw new OrderNotFound(f.clientOrderId);
      await tx`select pg_advisory_xact_lock(${MARKET_LOCK_NS}, hashtext(${head.exchange + ' ' + head.symbol}))`;
      const [orderRow] = await tx<Row[]>`select * from orders where client_order_id = ${f.clientOrderId} for update`;
      let order = toOrder(orderRow);

      const [dup] = await tx<Row[]>`
        select *, order_id = ${order.id} and qty = ${f.qty}::numeric and price = ${f.price}::numeric and fee = ${f.fee}::numeric as same
        from fills where exchange = ${order.exchange} and fill_id = ${f.fillId}`;
      if (dup) {
        if (!dup.same) throw new FillConflict(f.fillId, `recorded qty ${String(dup.qty)} @ ${String(dup.price)} on order id ${String(dup.order_id)}`);
        const [pos] = await tx<Row[]>`select * from positions where exchange = ${order.exchange} and symbol = ${order.symbol} order by id desc limit 1`;
        return { fill: toFill(dup), created: false, order, position: pos ? toPosition(pos) : null, trade: null };
      }

      if (order.status === 'rejected') throw new IllegalOrderTransition('rejected', 'filled', f.clientOrderId);
      const [base, quote] = marketCurrencies(order.symbol);
      const feeCurrency = f.feeCurrency ?? null;
      const feeIsZero = !/[1-9]/.test(f.fee);
      if (!feeIsZero && feeCurrency === null) throw new FeeConversionRequired(f.fillId, '(none given)', order.symbol);
      if (!feeIsZero && feeCurrency !== base && feeCurrency !== quote && f.feeQuote === undefined) {
        throw new FeeConversionRequired(f.fillId, feeCurrency ?? '', order.symbol);
      }
      const baseFee = !feeIsZero && feeCurrency === base;

      // Arithmetic happens in PostgreSQL's numeric: exact, and one implementation of it.
      const [fillRow] = await tx<Row[]>`
        with v as (
          select ${f.qty}::numeric as qty, ${f.price}::numeric as price, ${f.fee}::numeric as fee,
                 case when ${baseFee} then ${f.fee}::numeric else 0 end as base_fee
        )
        insert into fills (exchange, fill_id, order_id, qty, price, fee, fee_currency, fee_quote, position_qty_delta, ts)
        select ${order.exchange}::text, ${f.fillId}::text, ${order.id}::bigint, v.qty, v.price, v.fee, ${feeCurrency}::text,
               case when v.fee = 0 then 0
                    when ${feeCurrency} = ${quote} then v.fee
                    when ${baseFee} then v.fee * v.price
                    else ${f.feeQuote ?? null}::numeric end,
               case when ${order.side} = 'buy' then v.qty - v.base_fee else -(v.qty + v.base_fee) end,
               ${f.ts}::timestamptz
        from v
        returning *`.catch((err: unknown) => {
        // Same fill id on another order of this exchange (the per-market lock does not cover it).
        if (isPgError(err) && err.code === '23505') throw new FillConflict(f.fillId, 'already recorded on another order of this exchange');
        throw err;
      });
      const fill = toFill(fillRow);
      if (order.side === 'buy' && decCmp(fill.positionQtyDelta, '0') <= 0) {
        throw new Error(`fill ${f.fillId}: a fee of ${f.fee} ${feeCurrency} leaves nothing of the ${f.qty} bought`);
      }
      await this.auditTx(tx, 'fill.recorded', {
        clientOrderId: order.clientOrderId, fillId: fill.fillId, side: order.side, qty: fill.qty, price: fill.price,
        fee: fill.fee, feeCurrency: fill.feeCurrency, feeQuote: fill.feeQuote, ts: fill.ts.toISOString(),
      });

      order = await this.applyFillToOrder(tx, order, fill);
      const { position, trade } = await this.applyFillToPosition(tx, order, fill);
      return { fill, created: true, order, position, trade };
    });
  }

  private async applyFillToOrder(tx: Tx, order: Order, fill: Fill): Promise<Order> {
    const [{ full }] = await tx<{ full: boolean }[]>`select filled_qty + ${fill.qty}::numeric >= qty as full from orders where id = ${order.id}`;
    // A fill on a canceled/expired order is real money (the cancel raced the match): it is
    // recorded, the order keeps its final status. A 'filled' order may get its fills later.
    const target: OrderStatus = isTerminalStatus(order.status) ? order.status : full ? 'filled' : 'partially_filled';
    if (target !== order.status) assertTransition(order.status, target, order.clientOrderId);
    const [row] = await tx<Row[]>`
      update orders set
        filled_qty = filled_qty + ${fill.qty}::numeric,
        status = ${target},
        status_reason = ${target !== order.status ? `fill ${fill.fillId}` : order.statusReason}
      where id = ${order.id}
      returning *`.catch((err: unknown) => {
      if (isPgError(err) && err.code === '23514' && err.constraint_name === 'orders_filled_qty_check') {
        throw new OrderOverfilled(order.clientOrderId, fill.fillId);
      }
      return mapDbError(order.status, target, order.clientOrderId)(err);
    });
    if (target !== order.status) {
      await this.auditTx(tx, 'order.transition', { clientOrderId: order.clientOrderId, fillId: fill.fillId, from: order.status, to: target, reason: `fill ${fill.fillId}` });
    } else if (order.status === 'canceled' || order.status === 'expired') {
      this.opts.log?.warn({ clientOrderId: order.clientOrderId, fillId: fill.fillId, status: order.status }, 'fill on an order already closed; recorded');
      await this.auditTx(tx, 'order.late_fill', { clientOrderId: order.clientOrderId, fillId: fill.fillId, status: order.status });
    }
    return toOrder(row);
  }

  private async applyFillToPosition(tx: Tx, order: Order, fill: Fill): Promise<{ position: Position | null; trade: Trade | null }> {
    const [open] = await tx<Row[]>`
      select * from positions where exchange = ${order.exchange} and symbol = ${order.symbol} and status = 'open' for update`;
    const delta = fill.positionQtyDelta;
    const market = { exchange: order.exchange, symbol: order.symbol, clientOrderId: order.clientOrderId, fillId: fill.fillId };
    if (order.side === 'buy') {
      if (!open) {
        const [row] = await tx<Row[]>`
          insert into positions (exchange, symbol, qty, avg_entry_price, entry_qty, fees, realized_pnl, opened_at)
          values (${order.exchange}, ${order.symbol}, ${delta}::numeric, ${fill.price}::numeric, ${delta}::numeric,
                  ${fill.feeQuote}::numeric, -${fill.feeQuote}::numeric, ${fill.ts})
          returning *`;
        const position = toPosition(row);
        await this.auditTx(tx, 'position.opened', { ...market, positionId: position.id, qty: position.qty, avgEntryPrice: position.avgEntryPrice });
        return { position, trade: null };
      }
      // Average cost, truncated at 18 places exactly as lib/decimal.ts decDivTrunc does.
      const [row] = await tx<Row[]>`
        update positions set
          avg_entry_price = trim_scale(div((qty * avg_entry_price + ${delta}::numeric * ${fill.price}::numeric) * 1e18, qty + ${delta}::numeric) * 1e-18),
          qty = qty + ${delta}::numeric,
          entry_qty = entry_qty + ${delta}::numeric,
          fees = fees + ${fill.feeQuote}::numeric,
          realized_pnl = realized_pnl - ${fill.feeQuote}::numeric,
          updated_at = now()
        where id = ${open.id as string}
        returning *`;
      const position = toPosition(row);
      await this.auditTx(tx, 'position.increased', { ...market, positionId: position.id, qty: position.qty, avgEntryPrice: position.avgEntryPrice });
      return { position, trade: null };
    }

    if (!open) {
      // Long-only: a sell with nothing open sells holdings the ledger never bought (manual trading?).
      this.opts.log?.warn(market, 'sell fill with no open position; recorded, positions unchanged');
      await this.auditTx(tx, 'position.unmatched_sell', { ...market, qty: fill.qty });
      return { position: null, trade: null };
    }
    const [row] = await tx<Row[]>`
      with c as (select least(${open.qty as string}::numeric, -${delta}::numeric) as q)
      update positions set
        qty = qty - c.q,
        exit_qty = exit_qty + c.q,
        exit_notional = exit_notional + c.q * ${fill.price}::numeric,
        realized_pnl = realized_pnl + (${fill.price}::numeric - avg_entry_price) * c.q - ${fill.feeQuote}::numeric,
        fees = fees + ${fill.feeQuote}::numeric,
        status = case when qty - c.q = 0 then 'closed' else 'open' end,
        closed_at = case when qty - c.q = 0 then ${fill.ts}::timestamptz end,
        updated_at = now()
      from c
      where id = ${open.id as string}
      returning positions.*, c.q as closed_qty, (-${delta}::numeric - c.q) as excess`;
    const position = toPosition(row);
    if (/[1-9]/.test(String(row.excess))) {
      this.opts.log?.warn({ ...market, excess: row.excess }, 'sell fill larger than the open position; the excess is not in any position');
      await this.auditTx(tx, 'position.oversold', { ...market, excess: toDecimalString(String(row.excess)) });
    }
    if (position.status === 'open') {
      await this.auditTx(tx, 'position.reduced', { ...market, positionId: position.id, closedQty: toDecimalString(String(row.closed_qty)), qty: position.qty, realizedPnl: position.realizedPnl });
      return { position, trade: null };
    }
    const [tradeRow] = await tx<Row[]>`
      insert into trades (position_id, exchange, symbol, qty, entry_time, entry_price, exit_time, exit_price, fees, pnl, exit_reason)
      select id, exchange, symbol, entry_qty, opened_at, avg_entry_price, closed_at,
             trim_scale(div(exit_notional * 1e18, exit_qty) * 1e-18), fees, realized_pnl, ${order.reason}
      from positions where id = ${position.id}
      returning *`;
    const trade = toTrade(tradeRow);
    await this.auditTx(tx, 'position.closed', {
      ...market, positionId: position.id, tradeId: trade.id, qty: trade.qty, entryPrice: trade.entryPrice, exitPrice: trade.exitPrice,
      fees: trade.fees, pnl: trade.pnl, exitReason: trade.exitReason,
    });
    return { position, trade };
  }

  async getOrder(clientOrderId: string): Promise<Order | null> {
    const [row] = await this.sql<Row[]>`select * from orders where client_order_id = ${clientOrderId}`;
    return row ? toOrder(row) : null;
  }

  /** Orders not in a final status: what reconciliation with the exchange looks at. */
  async liveOrders(): Promise<Order[]> {
    const rows = await this.sql<Row[]>`select * from orders where status <> all(${TERMINAL_SQL}) order by id`;
    return rows.map(toOrder);
  }

  async orderEvents(clientOrderId: string): Promise<{ from: OrderStatus | null; to: OrderStatus; reason: string | null; ts: Date }[]> {
    const rows = await this.sql<Row[]>`
      select e.from_status, e.to_status, e.reason, e.ts from order_events e join orders o on o.id = e.order_id
      where o.client_order_id = ${clientOrderId} order by e.id`;
    return rows.map((r) => ({ from: r.from_status as OrderStatus | null, to: r.to_status as OrderStatus, reason: r.reason as string | null, ts: r.ts as Date }));
  }

  async openPositions(): Promise<Position[]> {
    const rows = await this.sql<Row[]>`select * from positions where status = 'open' order by exchange, symbol, id`;
    return rows.map(toPosition);
  }

  /** Every position, open and closed, by market then age (the order a rebuild produces). */
  async positions(): Promise<Position[]> {
    const rows = await this.sql<Row[]>`select * from positions order by exchange, symbol, id`;
    return rows.map(toPosition);
  }

  async trades(opts: { since?: Date } = {}): Promise<Trade[]> {
    const rows = await this.sql<Row[]>`
      select * from trades where exit_time >= ${opts.since ?? new Date(0)} order by exit_time, id`;
    return rows.map(toTrade);
  }

  /** The last `limit` closed trades, oldest first: a page, not the whole table. */
  async lastTrades(limit: number): Promise<Trade[]> {
    if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`limit must be a positive integer, got ${limit}`);
    const rows = await this.sql<Row[]>`select * from trades order by exit_time desc, id desc limit ${limit}`;
    return rows.map(toTrade).reverse();
  }

  /**
   * Count, wins and PnL of every closed trade and of those closed since each given time, and the
   * best and worst trade: aggregates computed by PostgreSQL, whatever the number of trades.
   */
  async tradeSummary(since: Date[] = []): Promise<TradeSummary> {
    // One row per window, all time first ('-infinity').
    const starts = ['-infinity', ...since.map((d) => d.toISOString())];
    const rows = await this.sql<Row[]>`
      select w.i, count(t.id) as n, count(t.id) filter (where t.pnl > 0) as wins, coalesce(sum(t.pnl), 0)::text as pnl
      from unnest(${this.sql.array(starts)}::timestamptz[]) with ordinality as w(since, i)
      left join trades t on t.exit_time >= w.since
      group by w.i order by w.i`;
    const [all, ...windows] = rows.map((r): TradeTotals => ({ trades: Number(r.n), wins: Number(r.wins), pnl: decimalText(r.pnl) }));
    const [best] = await this.sql<Row[]>`select symbol, pnl from trades order by pnl desc, id limit 1`;
    const [worst] = await this.sql<Row[]>`select symbol, pnl from trades order by pnl asc, id limit 1`;
    const extreme = (r: Row | undefined) => (r ? { symbol: r.symbol as string, pnl: decimalText(r.pnl) } : null);
    return { all, since: windows, best: extreme(best), worst: extreme(worst) };
  }

  /** Realized PnL of every closed trade, and of those closed at or after `since`, as exact decimals. */
  async realizedPnl(since: Date): Promise<{ total: string; since: string }> {
    const [r] = await this.sql<{ total: string; since: string }[]>`
      select coalesce(sum(pnl), 0)::text as total, coalesce(sum(pnl) filter (where exit_time >= ${since}), 0)::text as since from trades`;
    return r;
  }

  /**
   * Net quote-currency cash flow of every fill on `exchange`: sale proceeds minus purchase costs
   * minus fees, exact. Added to the starting capital it is the account's cash. A fee charged in
   * the base asset is not subtracted here: it already shrank the position (fills.position_qty_delta);
   * one in a third currency (BNB) is counted at its quote value, as if paid from cash.
   */
  async cashFlow(exchange: string): Promise<string> {
    const [r] = await this.sql<{ flow: string }[]>`
      select coalesce(sum(case when o.side = 'sell' then f.qty * f.price else -(f.qty * f.price) end
                          - case when f.fee_currency = split_part(o.symbol, '/', 1) then 0 else f.fee_quote end), 0)::text as flow
      from fills f join orders o on o.id = f.order_id
      where f.exchange = ${exchange}`;
    return toDecimalString(r.flow);
  }

  /** Idempotent on (account, ts): a retried snapshot returns the row already there. */
  async snapshotEquity(input: EquitySnapshotInput): Promise<EquitySnapshot> {
    const s = EquitySnapshotInput.parse(input);
    return transaction(this.sql, async (tx) => {
      const [row] = await tx<Row[]>`
        insert into equity_snapshots (account, ts, equity, cash, exposure, peak_equity, drawdown)
        values (${s.account}, ${s.ts}, ${s.equity}, ${s.cash}, ${s.exposure}, ${s.peakEquity ?? null}, ${s.drawdown ?? null})
        on conflict (account, ts) do nothing returning *`;
      if (row) {
        await this.auditTx(tx, 'equity.snapshot', { account: s.account, ts: s.ts.toISOString(), equity: s.equity, cash: s.cash, exposure: s.exposure, drawdown: s.drawdown ?? null });
        return toSnapshot(row);
      }
      const [existing] = await tx<Row[]>`select * from equity_snapshots where account = ${s.account} and ts = ${s.ts}`;
      return toSnapshot(existing);
    });
  }

  /** Snapshots in time order; of one account when `account` is given. */
  async equityCurve(opts: { since?: Date; until?: Date; account?: string } = {}): Promise<EquitySnapshot[]> {
    const rows = await this.sql<Row[]>`
      select * from equity_snapshots
      where ts >= ${opts.since ?? new Date(0)} and (${opts.until ?? null}::timestamptz is null or ts < ${opts.until ?? null})
        and (${opts.account ?? null}::text is null or account = ${opts.account ?? null})
      order by ts, id`;
    return rows.map(toSnapshot);
  }

  /** The newest snapshot (of one account when given), or null when none was written. */
  async latestEquitySnapshot(account?: string): Promise<EquitySnapshot | null> {
    const [row] = await this.sql<Row[]>`
      select * from equity_snapshots where (${account ?? null}::text is null or account = ${account ?? null})
      order by ts desc, id desc limit 1`;
    return row ? toSnapshot(row) : null;
  }

  /** Positions derived from the fills alone, replayed in the order they were recorded. */
  async rebuildPositionsFromFills(): Promise<RebuiltPosition[]> {
    return rebuildPositions(await transaction(this.sql, (tx) => fillsForRebuild(tx), 'read only'));
  }

  /** Differences between the stored positions and a rebuild from fills; empty when they agree. */
  async positionDiscrepancies(): Promise<string[]> {
    // Read both in one snapshot, or a fill committed in between would look like a discrepancy.
    const [stored, rebuilt] = await transaction(this.sql, async (tx) => {
      const positionsRows = await tx<Row[]>`select * from positions order by exchange, symbol, id`;
      return [positionsRows.map(toPosition), rebuildPositions(await fillsForRebuild(tx))] as const;
    }, 'isolation level repeatable read read only');
    const out: string[] = [];
    const n = Math.max(stored.length, rebuilt.length);
    for (let i = 0; i < n; i++) {
      const s = stored[i];
      const r = rebuilt[i];
      if (!s || !r) {
        out.push(`position #${i}: ${s ? `stored ${s.exchange} ${s.symbol} #${s.id} not derivable from fills` : `missing: fills give ${r!.exchange} ${r!.symbol} opened ${r!.openedAt.toISOString()}`}`);
        continue;
      }
      const fields = ['exchange', 'symbol', 'status', 'qty', 'avgEntryPrice', 'entryQty', 'exitQty', 'exitNotional', 'realizedPnl', 'fees', 'openedAt', 'closedAt'] as const;
      for (const k of fields) {
        const a = norm(s[k]);
        const b = norm(r[k]);
        if (a !== b) out.push(`${s.exchange} ${s.symbol} position #${s.id}: ${k} stored ${a}, from fills ${b}`);
      }
    }
    return out;
  }

  async audit(event: string, payload: Record<string, unknown> = {}): Promise<AuditEntry> {
    return transaction(this.sql, (tx) => this.auditTx(tx, event, payload));
  }

  /**
   * Writes an audit row unless this actor already wrote one with the same event and payload:
   * for findings that an activity retry would otherwise record again.
   */
  async auditOnce(event: string, payload: Record<string, unknown> = {}): Promise<{ entry: AuditEntry; created: boolean }> {
    return transaction(this.sql, async (tx) => {
      await tx`select pg_advisory_xact_lock(${AUDIT_ONCE_LOCK_NS}, hashtext(${event}))`;
      const full = { ...this.opts.context, ...payload };
      const [existing] = await tx<Row[]>`
        select * from audit_log
        where event = ${event} and actor is not distinct from ${this.opts.actor ?? null} and payload = ${tx.json(full as postgres.JSONValue)}::jsonb
        order by id limit 1`;
      if (existing) return { entry: toAudit(existing), created: false };
      return { entry: await this.auditTx(tx, event, payload), created: true };
    });
  }

  /** Which of these exchange fill ids (trade ids) the ledger has recorded for `exchange`: what reconciliation checks. */
  async knownFillIds(exchange: string, fillIds: readonly string[]): Promise<Set<string>> {
    if (fillIds.length === 0) return new Set();
    const rows = await this.sql<{ fill_id: string }[]>`select fill_id from fills where exchange = ${exchange} and fill_id = any(${[...fillIds]})`;
    return new Set(rows.map((r) => r.fill_id));
  }

  async auditTrail(opts: { event?: string; since?: Date; limit?: number } = {}): Promise<AuditEntry[]> {
    const rows = await this.sql<Row[]>`
      select * from audit_log
      where ts >= ${opts.since ?? new Date(0)} ${opts.event ? this.sql`and event = ${opts.event}` : this.sql``}
      order by id limit ${opts.limit ?? 1000}`;
    return rows.map(toAudit);
  }

  private async auditTx(tx: Tx, event: string, payload: Record<string, unknown>): Promise<AuditEntry> {
    const [row] = await tx<Row[]>`
      insert into audit_log (event, actor, payload) values (${event}, ${this.opts.actor ?? null}, ${tx.json({ ...this.opts.context, ...payload } as postgres.JSONValue)})
      returning *`;
    return toAudit(row);
  }
}

async function fillsForRebuild(tx: Tx): Promise<FillForRebuild[]> {
  const rows = await tx<Row[]>`
    select o.exchange, o.symbol, o.side, f.price, f.fee_quote, f.position_qty_delta, f.ts
    from fills f join orders o on o.id = f.order_id
    order by f.id`;
  return rows.map((r) => ({
    exchange: r.exchange as string,
    symbol: r.symbol as string,
    side: r.side as 'buy' | 'sell',
    price: r.price as string,
    feeQuote: r.fee_quote as string,
    positionQtyDelta: r.position_qty_delta as string,
    ts: r.ts as Date,
  }));
}

function norm(v: unknown): string {
  if (v instanceof Date) return v.toISOString();
  if (v === null || v === undefined) return 'null';
  const s = String(v);
  return isDecimalString(s) ? toDecimalString(s) : s;
}

/** BTC/USDT -> [BTC, USDT]; BTC/USDT:USDT (derivatives) -> [BTC, USDT]. */
export function marketCurrencies(symbol: string): [string, string] {
  const [base, rest] = symbol.split('/');
  return [base, rest.split(':')[0]];
}

interface PgErrorLike {
  code: string;
  constraint_name?: string;
  message: string;
}
function isPgError(err: unknown): err is PgErrorLike {
  return typeof err === 'object' && err !== null && 'code' in err && typeof (err as PgErrorLike).code === 'string';
}

/** The trigger's refusals (SQLSTATE DT001) become the same named error the API throws. */
function mapDbError(from: string, to: string, clientOrderId: string) {
  return (err: unknown): never => {
    if (isPgError(err) && err.code === 'DT001') throw new IllegalOrderTransition(from, to, clientOrderId);
    throw err;
  };
}

const text = (v: unknown): string | null => (v === null || v === undefined ? null : String(v));
const decimalText = (v: unknown): string => toDecimalString(String(v));
const decimalOrNull = (v: unknown): string | null => (v === null || v === undefined ? null : decimalText(v));

function toOrder(r: Row): Order {
  return {
    id: String(r.id),
    clientOrderId: r.client_order_id as string,
    exchangeOrderId: text(r.exchange_order_id),
    exchange: r.exchange as string,
    symbol: r.symbol as string,
    side: r.side as Order['side'],
    type: r.type as Order['type'],
    qty: decimalText(r.qty),
    price: decimalOrNull(r.price),
    stopPrice: decimalOrNull(r.stop_price),
    status: r.status as OrderStatus,
    statusReason: text(r.status_reason),
    filledQty: decimalText(r.filled_qty),
    workflowId: text(r.workflow_id),
    decisionSeq: r.decision_seq === null ? null : Number(r.decision_seq),
    reason: text(r.reason),
    createdAt: r.created_at as Date,
    updatedAt: r.updated_at as Date,
  };
}

function toFill(r: Row): Fill {
  return {
    id: String(r.id),
    exchange: r.exchange as string,
    fillId: r.fill_id as string,
    orderId: String(r.order_id),
    qty: decimalText(r.qty),
    price: decimalText(r.price),
    fee: decimalText(r.fee),
    feeCurrency: text(r.fee_currency),
    feeQuote: decimalText(r.fee_quote),
    positionQtyDelta: decimalText(r.position_qty_delta),
    ts: r.ts as Date,
    recordedAt: r.recorded_at as Date,
  };
}

function toPosition(r: Row): Position {
  return {
    id: String(r.id),
    exchange: r.exchange as string,
    symbol: r.symbol as string,
    status: r.status as Position['status'],
    qty: decimalText(r.qty),
    avgEntryPrice: decimalText(r.avg_entry_price),
    entryQty: decimalText(r.entry_qty),
    exitQty: decimalText(r.exit_qty),
    exitNotional: decimalText(r.exit_notional),
    realizedPnl: decimalText(r.realized_pnl),
    fees: decimalText(r.fees),
    openedAt: r.opened_at as Date,
    closedAt: (r.closed_at as Date | null) ?? null,
  };
}

function toTrade(r: Row): Trade {
  return {
    id: String(r.id),
    positionId: String(r.position_id),
    exchange: r.exchange as string,
    symbol: r.symbol as string,
    side: 'long',
    qty: decimalText(r.qty),
    entryTime: r.entry_time as Date,
    entryPrice: decimalText(r.entry_price),
    exitTime: r.exit_time as Date,
    exitPrice: decimalText(r.exit_price),
    fees: decimalText(r.fees),
    pnl: decimalText(r.pnl),
    exitReason: text(r.exit_reason),
  };
}

function toSnapshot(r: Row): EquitySnapshot {
  return {
    ts: r.ts as Date,
    account: r.account as string,
    equity: decimalText(r.equity),
    cash: decimalText(r.cash),
    exposure: decimalText(r.exposure),
    peakEquity: decimalOrNull(r.peak_equity),
    drawdown: decimalOrNull(r.drawdown),
  };
}

function toAudit(r: Row): AuditEntry {
  return { id: String(r.id), ts: r.ts as Date, event: r.event as string, actor: text(r.actor), payload: r.payload as Record<string, unknown> };
}

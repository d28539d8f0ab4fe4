import type { TradeFigures } from '../lib/contracts/trading';
import type postgres from 'postgres';

/**
 * Read-only queries for reports over the ledger (`trader report --from-ledger`). Numbers leave
 * as JS numbers here: a report is analytics, not accounting (the ledger's own API keeps decimal
 * strings).
 */

export interface LedgerTradeRow extends TradeFigures {
  exchange: string;
  side: 'long';
  exitReason: string | null;
  /** The client order ids of the order whose fill opened the position and of the one whose fill closed it. */
  entryOrderId: string | null;
  exitOrderId: string | null;
  /** The stop and target placed with the entry (the orders of the entry's decision), when the ledger has them. */
  stopPrice: number | null;
  targetPrice: number | null;
  /** The strategy's tag of the entry. */
  entryTag?: string;
  /** The strategy that entered (name, version, source and params hashes); absent for trades entered before strategies were files. */
  strategy?: { name: string; version: string; source: string; params: string };
}

interface TradeRow {
  exchange: string;
  symbol: string;
  qty: string;
  entry_time: Date;
  entry_price: string;
  exit_time: Date;
  exit_price: string;
  fees: string;
  pnl: string;
  exit_reason: string | null;
  entry_order_id: string | null;
  exit_order_id: string | null;
  stop_price: string | null;
  target_price: string | null;
  strategy: { name: string; version: string; source: string; params: string } | null;
  entry_tag: string | null;
}

const num = (x: string | null) => (x === null ? null : Number(x));

/**
 * Closed trades in exit order, each with the orders behind it: the buy order whose fill opened
 * the position (it carries the workflow and decision sequence, and the stop (stop_market) and
 * target (sell limit) of that decision are the ones placed at entry), and the sell order whose
 * fill closed it. Every field a backtest's trade carries (`trader trades --json`, the report).
 */
export async function closedTradesForReport(sql: postgres.Sql): Promise<LedgerTradeRow[]> {
  const rows = await sql<TradeRow[]>`
    with entries as (
      select distinct on (t.id) t.id as trade_id, o.workflow_id, o.decision_seq, o.client_order_id, o.strategy, o.entry_tag
      from trades t
      join orders o on o.exchange = t.exchange and o.symbol = t.symbol and o.side = 'buy'
      join fills f on f.order_id = o.id and f.ts = t.entry_time
      order by t.id, o.id
    )
    select t.exchange, t.symbol, t.qty::text, t.entry_time, t.entry_price::text, t.exit_time, t.exit_price::text,
      t.fees::text, t.pnl::text, t.exit_reason, e.client_order_id as entry_order_id, e.strategy, e.entry_tag,
      (select x.client_order_id from orders x join fills xf on xf.order_id = x.id
        where x.exchange = t.exchange and x.symbol = t.symbol and x.side = 'sell' and xf.ts = t.exit_time order by x.id limit 1) as exit_order_id,
      (select s.stop_price::text from orders s
        where s.workflow_id = e.workflow_id and s.decision_seq = e.decision_seq and s.type = 'stop_market' order by s.id limit 1) as stop_price,
      (select g.price::text from orders g
        where g.workflow_id = e.workflow_id and g.decision_seq = e.decision_seq and g.type = 'limit' and g.side = 'sell' order by g.id limit 1) as target_price
    from trades t
    left join entries e on e.trade_id = t.id
    order by t.exit_time, t.symbol, t.id`;
  return rows.map((r) => ({
    exchange: r.exchange,
    symbol: r.symbol,
    side: 'long' as const,
    qty: Number(r.qty),
    entryTime: r.entry_time.getTime(),
    entryPrice: Number(r.entry_price),
    exitTime: r.exit_time.getTime(),
    exitPrice: Number(r.exit_price),
    fees: Number(r.fees),
    pnl: Number(r.pnl),
    exitReason: r.exit_reason,
    entryOrderId: r.entry_order_id,
    exitOrderId: r.exit_order_id,
    stopPrice: num(r.stop_price),
    targetPrice: num(r.target_price),
    ...(r.entry_tag !== null && r.entry_tag !== undefined ? { entryTag: r.entry_tag } : {}),
    ...(r.strategy ? { strategy: r.strategy } : {}),
  }));
}

export interface LedgerOpenPosition {
  exchange: string;
  symbol: string;
  qty: number;
  entryPrice: number;
  openedAt: number;
}

export async function openPositionsForReport(sql: postgres.Sql): Promise<LedgerOpenPosition[]> {
  const rows = await sql<{ exchange: string; symbol: string; qty: string; avg_entry_price: string; opened_at: Date }[]>`
    select exchange, symbol, qty::text, avg_entry_price::text, opened_at from positions where status = 'open' order by exchange, symbol`;
  return rows.map((r) => ({ exchange: r.exchange, symbol: r.symbol, qty: Number(r.qty), entryPrice: Number(r.avg_entry_price), openedAt: r.opened_at.getTime() }));
}

export async function equitySnapshotsForReport(sql: postgres.Sql): Promise<Array<{ time: number; equity: number }>> {
  const rows = await sql<{ ts: Date; equity: string }[]>`select ts, equity::text from equity_snapshots order by ts`;
  return rows.map((r) => ({ time: r.ts.getTime(), equity: Number(r.equity) }));
}

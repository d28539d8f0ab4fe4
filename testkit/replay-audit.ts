import type { TradeFigures } from '../lib/contracts/trading';
import { identityLabel } from '../lib/strategy/run';
import type postgres from 'postgres';

/**
 * What a replay left in its database, checked against itself and against a fault-free backtest
 * of the same candles: the chaos run's verdict.
 *
 * The paper exchange's tables (paper_orders, paper_fills) are what the venue did; the ledger's
 * (orders, fills, trades) what the bot recorded. Exactly-once means: one order per client order
 * id on each side, every fill on both sides, and the same closed trades as the backtest.
 */

export interface TradeRow extends TradeFigures {
  side: string;
  exitReason: string | null;
}

/** Every field of a trade; money to 1e-8 (the ledger keeps exact decimals, the backtest doubles), as test/e2e/parity.test.ts. */
export function tradeKey(t: TradeRow): string {
  const r = (x: number) => x.toFixed(8);
  return [t.symbol, t.side, r(t.qty), t.entryTime, r(t.entryPrice), t.exitTime, r(t.exitPrice), r(t.fees), r(t.pnl), t.exitReason].join('|');
}

/** A trade with the orders behind it, as `trader trades --json` and a backtest's JSON both carry them. */
export interface TradeWithOrders extends TradeRow {
  entryOrderId: string | null;
  exitOrderId: string | null;
  stopPrice: number | null;
  targetPrice: number | null;
  /** The strategy's tag of the entry, when it gave one. */
  entryTag?: string | null;
  /** The strategy that entered (lib/strategy StrategyIdentity); absent for trades entered before strategies were files. */
  strategy?: { name: string; version: string; source: string; params: string } | null;
}

/**
 * tradeKey and the orders: the client order ids of entry and exit, the stop and target placed at
 * entry; then who entered: the entry's tag and the strategy's identity (name, version, source and
 * params hashes). An id is compared without its prefix (lib/engine/ids.ts: a hash of the workflow
 * id, which a backtest's symbol, named after its candle file, does not share with the replay's
 * workflow); what follows it, the decision's sequence number and the order's role, must match.
 * A tag or an identity present on one side only is a difference (absent is written `-`, which no
 * tag or identity can be).
 */
export function tradeWithOrdersKey(t: TradeWithOrders): string {
  const r = (x: number | null) => (x === null ? '-' : x.toFixed(8));
  const unprefixed = (id: string | null) => (id === null ? '-' : id.replace(/^dt[0-9a-f]{8}-/, ''));
  return [tradeKey(t), unprefixed(t.entryOrderId), unprefixed(t.exitOrderId), r(t.stopPrice), r(t.targetPrice), entryTagKey(t), strategyIdentityKey(t)].join('|');
}

/** The entry's tag as a key part: JSON (so a tag holding `|` or `-` cannot pass for another), `-` when absent. */
export function entryTagKey(t: Pick<TradeWithOrders, 'entryTag'>): string {
  return t.entryTag === undefined || t.entryTag === null ? '-' : JSON.stringify(t.entryTag);
}

/** The strategy identity as a key part, `name@version src:SOURCE params:PARAMS` (the logs' form), `-` when absent. */
export function strategyIdentityKey(t: Pick<TradeWithOrders, 'strategy'>): string {
  const s = t.strategy;
  return s === undefined || s === null ? '-' : identityLabel(s);
}

/** Trades in one list and not the other, counted as multisets (a trade recorded twice is one mismatch). */
export function mismatchedTrades(ledger: TradeRow[], backtest: TradeRow[]): { count: number; onlyLedger: string[]; onlyBacktest: string[] } {
  const left = new Map<string, number>();
  for (const t of backtest) left.set(tradeKey(t), (left.get(tradeKey(t)) ?? 0) + 1);
  const onlyLedger: string[] = [];
  for (const t of ledger) {
    const k = tradeKey(t);
    const n = left.get(k) ?? 0;
    if (n > 0) left.set(k, n - 1);
    else onlyLedger.push(k);
  }
  const onlyBacktest = [...left.entries()].flatMap(([k, n]) => Array<string>(n).fill(k));
  return { count: onlyLedger.length + onlyBacktest.length, onlyLedger, onlyBacktest };
}

export interface ExchangeLedgerAudit {
  /** Orders beyond the first per client order id, on the exchange (per account) plus in the ledger. */
  duplicateOrders: number;
  /** Exchange fills without their ledger fill, plus ledger fills the exchange never made. */
  lostFills: number;
  /** Orders on the exchange the ledger has no row for (an order must be recorded before it is sent). */
  ordersMissingInLedger: number;
  /** Ledger orders past `intent` and not `rejected` that the exchange does not have. */
  ordersMissingOnExchange: number;
  /** Orders whose ledger status is not the exchange's (open/filled/canceled). */
  statusMismatches: number;
  exchangeOrders: number;
  exchangeFills: number;
  examples: string[];
}

/** The exchange-side tables against the ledger's, in one replay database (exchange id `paper`). */
export async function auditExchangeAgainstLedger(sql: postgres.Sql): Promise<ExchangeLedgerAudit> {
  const examples: string[] = [];
  const note = (what: string, rows: Array<Record<string, unknown>>) => {
    for (const r of rows.slice(0, 5)) examples.push(`${what}: ${JSON.stringify(r)}`);
  };
  const dupExchange = await sql<{ client_order_id: string; n: number }[]>`
    select account, client_order_id, count(*)::int as n from paper_orders where client_order_id is not null group by 1, 2 having count(*) > 1`;
  const dupLedger = await sql<{ client_order_id: string; n: number }[]>`
    select client_order_id, count(*)::int as n from orders group by 1 having count(*) > 1`;
  note('duplicate order on the exchange', dupExchange);
  note('duplicate order in the ledger', dupLedger);
  const fillsNotInLedger = await sql<Record<string, unknown>[]>`
    select pf.id, pf.client_order_id, pf.qty::text, pf.price::text from paper_fills pf
    where not exists (select 1 from fills f where f.exchange = 'paper' and f.fill_id = pf.id)`;
  const fillsNotOnExchange = await sql<Record<string, unknown>[]>`
    select f.fill_id, f.qty::text, f.price::text from fills f
    where f.exchange = 'paper' and not exists (select 1 from paper_fills pf where pf.id = f.fill_id)`;
  note('exchange fill missing from the ledger', fillsNotInLedger);
  note('ledger fill the exchange never made', fillsNotOnExchange);
  const missingInLedger = await sql<Record<string, unknown>[]>`
    select po.client_order_id, po.status from paper_orders po
    where po.client_order_id is not null and not exists (select 1 from orders o where o.client_order_id = po.client_order_id)`;
  const missingOnExchange = await sql<Record<string, unknown>[]>`
    select o.client_order_id, o.status from orders o
    where o.status not in ('intent', 'rejected') and not exists (select 1 from paper_orders po where po.client_order_id = o.client_order_id)`;
  note('exchange order missing from the ledger', missingInLedger);
  note('ledger order the exchange does not have', missingOnExchange);
  // The paper exchange's statuses in ledger terms: closed = filled.
  const mismatched = await sql<Record<string, unknown>[]>`
    select o.client_order_id, o.status as ledger, po.status as exchange from orders o
    join paper_orders po on po.client_order_id = o.client_order_id
    where (case po.status when 'closed' then 'filled' else po.status end) <> o.status`;
  note('order status differs', mismatched);
  const [counts] = await sql<{ orders: number; fills: number }[]>`
    select (select count(*)::int from paper_orders) as orders, (select count(*)::int from paper_fills) as fills`;
  return {
    duplicateOrders: [...dupExchange, ...dupLedger].reduce((s, r) => s + r.n - 1, 0),
    lostFills: fillsNotInLedger.length + fillsNotOnExchange.length,
    ordersMissingInLedger: missingInLedger.length,
    ordersMissingOnExchange: missingOnExchange.length,
    statusMismatches: mismatched.length,
    exchangeOrders: counts.orders,
    exchangeFills: counts.fills,
    examples,
  };
}

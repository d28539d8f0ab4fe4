import type { Ledger } from '../../ledger/ledger';
import { marketCurrencies } from '../../ledger/ledger';
import type { Order } from '../../ledger/types';
import { decAdd, decCmp, toDecimalString } from '../../lib/decimal';
import { lifecycleStatus, type ExchangeAdapter, type ExchangeOrder } from '../../lib/exchange/types';
import { activityLog, type TradingDeps } from './deps';
import type { ReconcileReport, TradingActivities } from '../../lib/contracts/activities';

/**
 * Compares the ledger with the exchange for some symbols and reports every difference; it never
 * changes the ledger's orders, fills or positions (what is true is for a person or a deliberate
 * recovery step to decide), it only writes one `reconcile.difference` audit row per difference.
 * Run at start-up and on a timer by the trading workflow, which alerts when `ok` is false.
 *
 * What it looks at, per symbol:
 * - open orders on the exchange, by client order id: unknown to the ledger, or known with another
 *   status or filled quantity;
 * - orders the ledger thinks are live (intent, submitted, open, partially filled) that the
 *   exchange does not list as open: missing there, or finished there;
 * - the exchange's trades (fetchMyTrades, from `since`) whose trade id the ledger has no fill for;
 * - per base currency, the exchange's total balance against the ledger's open position quantity.
 *
 * The exchange and the ledger are read one after the other, not in one snapshot: an order that
 * fills between the two reads shows up as a difference once. Confirm a difference with a second
 * run before acting on it.
 */

export const DIFFERENCE_KINDS = [
  /** An open order on the exchange that the ledger has no row for (placed by hand, or by a run that crashed before recording its intent). */
  'order_unknown_to_ledger',
  /** The ledger has a live order the exchange does not know (an intent never sent, or lost). */
  'order_missing_on_exchange',
  /** Both know the order, with different statuses. */
  'order_status',
  /** Both know the open order, with different filled quantities. */
  'order_filled_qty',
  /** A trade on the exchange with no fill in the ledger. */
  'fill_missing_in_ledger',
  /** The exchange's balance of a base currency differs from the ledger's open positions in it. */
  'position_qty',
] as const;
export type DifferenceKind = (typeof DIFFERENCE_KINDS)[number];

export interface Difference {
  kind: DifferenceKind;
  /** The venue key (the ledger's `exchange`). */
  exchange: string;
  symbol: string;
  clientOrderId?: string;
  exchangeOrderId?: string;
  /** The exchange's trade id (fill_missing_in_ledger). */
  fillId?: string;
  /** position_qty: the base currency compared. */
  currency?: string;
  /** What the ledger says (a status, a quantity as decimal text), null when it has nothing. */
  ledgerValue: string | null;
  /** What the exchange says, null when it has nothing. */
  exchangeValue: string | null;
  /** One line for an operator (logs, Telegram). */
  message: string;
}

export interface ReconcileResult {
  ok: boolean;
  differences: Difference[];
}

export interface ReconcileOptions {
  /** The ledger's venue key when it is not the adapter's exchangeId. */
  ledgerExchange?: string;
  /** Only trades from this time (epoch ms) are checked for missing fills; default: what fetchMyTrades returns. */
  since?: number;
}

const LIVE_ON_EXCHANGE = new Set(['open', 'partially_filled']);

export async function reconcile(ledger: Ledger, exchange: ExchangeAdapter, symbols: string[], opts: ReconcileOptions = {}): Promise<ReconcileResult> {
  if (!Array.isArray(symbols) || symbols.some((s) => typeof s !== 'string' || !s.includes('/'))) {
    throw new Error(`reconcile: symbols must be ccxt symbols such as BTC/USDT, got ${JSON.stringify(symbols)}`);
  }
  const venue = opts.ledgerExchange ?? exchange.exchangeId;
  const differences: Difference[] = [];
  const report = (d: Omit<Difference, 'exchange'>) => differences.push({ exchange: venue, ...d });

  // The exchange first: a fill recorded in the ledger after this read cannot look missing.
  const balances = await exchange.fetchBalance();
  const bySymbol = new Map<string, { open: ExchangeOrder[]; trades: Awaited<ReturnType<ExchangeAdapter['fetchMyTrades']>> }>();
  for (const symbol of unique(symbols)) {
    bySymbol.set(symbol, { open: await exchange.fetchOpenOrders(symbol), trades: await exchange.fetchMyTrades(symbol, opts.since) });
  }
  const liveOrders = (await ledger.liveOrders()).filter((o) => o.exchange === venue);
  const positions = (await ledger.openPositions()).filter((p) => p.exchange === venue);

  for (const [symbol, { open, trades }] of bySymbol) {
    const seen = new Set<string>();
    for (const o of open) {
      const known = o.clientOrderId === undefined ? null : await ledger.getOrder(o.clientOrderId);
      const ours = known !== null && known.exchange === venue ? known : null;
      if (!ours) {
        report({
          kind: 'order_unknown_to_ledger', symbol, clientOrderId: o.clientOrderId, exchangeOrderId: o.id, ledgerValue: null, exchangeValue: lifecycleStatus(o),
          message: `${venue} ${symbol}: open ${o.side} ${o.type} order ${o.id}${o.clientOrderId ? ` (client id ${o.clientOrderId})` : ''} for ${o.qty} is not in the ledger`,
        });
        continue;
      }
      seen.add(ours.clientOrderId);
      compareOrder(report, venue, symbol, ours, o);
    }
    for (const l of liveOrders.filter((x) => x.symbol === symbol && !seen.has(x.clientOrderId))) {
      const o = await exchange.fetchOrderByClientId(symbol, l.clientOrderId);
      if (!o) {
        report({
          kind: 'order_missing_on_exchange', symbol, clientOrderId: l.clientOrderId, exchangeOrderId: l.exchangeOrderId ?? undefined, ledgerValue: l.status, exchangeValue: null,
          message: `${venue} ${symbol}: the ledger has order ${l.clientOrderId} as ${l.status}, the exchange has no such order`,
        });
        continue;
      }
      compareOrder(report, venue, symbol, l, o);
    }

    const known = await ledger.knownFillIds(venue, trades.map((t) => t.id));
    for (const t of trades.filter((x) => !known.has(x.id))) {
      report({
        kind: 'fill_missing_in_ledger', symbol, clientOrderId: t.clientOrderId, exchangeOrderId: t.orderId, fillId: t.id, ledgerValue: null,
        exchangeValue: `${t.side} ${toDecimalString(t.qty)} @ ${toDecimalString(t.price)}`,
        message: `${venue} ${symbol}: trade ${t.id} (${t.side} ${t.qty} @ ${t.price}, ${new Date(t.timestamp).toISOString()}${t.clientOrderId ? `, order ${t.clientOrderId}` : ''}) has no fill in the ledger`,
      });
    }
  }

  // Spot, long-only: what is held of a base currency is the sum of the open positions in it.
  const bases = new Map<string, string>();
  for (const symbol of bySymbol.keys()) {
    const base = (await exchange.market(symbol).catch(() => undefined))?.base ?? marketCurrencies(symbol)[0];
    if (!bases.has(base)) bases.set(base, symbol);
  }
  for (const [base, symbol] of bases) {
    const held = positions.filter((p) => marketCurrencies(p.symbol)[0] === base).reduce((sum, p) => decAdd(sum, p.qty), '0');
    const total = toDecimalString(balances[base]?.total ?? 0);
    if (decCmp(held, total) !== 0) {
      report({
        kind: 'position_qty', symbol, currency: base, ledgerValue: held, exchangeValue: total,
        message: `${venue} ${base}: the ledger's open positions hold ${held}, the exchange balance is ${total}`,
      });
    }
  }

  for (const d of differences) await ledger.audit('reconcile.difference', { ...d });
  return { ok: differences.length === 0, differences };
}

function compareOrder(report: (d: Omit<Difference, 'exchange'>) => void, venue: string, symbol: string, l: Order, o: ExchangeOrder): void {
  const theirs = lifecycleStatus(o);
  const base = { symbol, clientOrderId: l.clientOrderId, exchangeOrderId: o.id };
  // open vs partially_filled is a question of filled quantity, asked below.
  const sameStage = l.status === theirs || (LIVE_ON_EXCHANGE.has(l.status) && LIVE_ON_EXCHANGE.has(theirs));
  if (!sameStage) {
    report({ kind: 'order_status', ...base, ledgerValue: l.status, exchangeValue: theirs, message: `${venue} ${symbol}: order ${l.clientOrderId} is ${l.status} in the ledger, ${theirs} on the exchange` });
    return;
  }
  const filled = toDecimalString(o.filledQty);
  if (LIVE_ON_EXCHANGE.has(theirs) && decCmp(filled, l.filledQty) !== 0) {
    report({ kind: 'order_filled_qty', ...base, ledgerValue: l.filledQty, exchangeValue: filled, message: `${venue} ${symbol}: order ${l.clientOrderId} has ${l.filledQty} filled in the ledger, ${filled} on the exchange` });
  }
}

const unique = (xs: string[]) => [...new Set(xs)];

/**
 * The portfolio's reconciliation activity: compares the ledger with the exchange for every
 * symbol and reports differences (one audit row each, see reconcile() above); it never
 * overwrites the ledger. Not in replay: there the exchange's clock is each symbol's own candle,
 * and asking it "now" would fill resting orders against candles the workflow has not reached.
 */
export function createReconcileActivities(deps: TradingDeps): Pick<TradingActivities, 'reconcileAccount'> {
  return {
    async reconcileAccount(args: { symbols: string[] }): Promise<ReconcileReport> {
      const log = activityLog(deps, {});
      if (deps.venue.mode === 'replay') return { ok: true, skipped: 'replay', differences: [] };
      const differences: ReconcileReport['differences'] = [];
      for (const symbol of args.symbols) {
        const res = await reconcile(deps.ledger, deps.venue.adapter(null, symbol), [symbol], { ledgerExchange: deps.venue.exchangeId });
        differences.push(...res.differences.map((d) => ({ symbol: d.symbol, kind: d.kind, message: d.message })));
      }
      if (differences.length > 0) log.warn({ differences }, 'reconciliation found differences between the ledger and the exchange');
      return { ok: differences.length === 0, differences };
    },
  };
}

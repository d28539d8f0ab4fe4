import { z } from 'zod';
import { DecimalString } from '../decimal';
import { PaperStateConflictError } from './errors';
import { ExchangeOrder, OrderSide } from './types';

/**
 * Where the paper exchange keeps an account: balances, every order it accepted, every fill, and
 * how far each market has been matched. Behind an interface so the state survives restarts in
 * PostgreSQL (the ledger) in production and lives in memory in tests and backtests.
 *
 * A call of the paper exchange reads only what it touches (`PaperRead`: the open orders and match
 * cursors of its market, the balances of that market's two currencies, the one order it names,
 * the fills it asks for) and writes only what it changed, so its cost does not grow with the
 * number of orders the account has ever had. The whole account (`snapshot`) is for audits and
 * tests, never for trading.
 *
 * Money is exact decimal text (as PostgreSQL `numeric` comes back), never a float that drifts.
 * Writes are optimistic: `commit` names the version it read, and a store must refuse the write
 * (PaperStateConflictError) if someone else committed in between; the paper exchange then reads
 * again and redoes the operation, which is a pure function of the state and the candles.
 */

export const PaperFill = z.object({
  id: z.string(),
  orderId: z.string(),
  clientOrderId: z.string(),
  symbol: z.string(),
  side: OrderSide,
  qty: z.number().positive(),
  price: z.number().positive(),
  /** qty * price, exact, quote currency. */
  cost: DecimalString,
  /** Exact, in `feeCurrency`. */
  fee: DecimalString,
  feeCurrency: z.string(),
  liquidity: z.enum(['maker', 'taker']),
  /** When the fill became known: placement time for immediate fills, the candle's close otherwise. */
  timestamp: z.number(),
  /** Open time of the candle that filled it (resting orders only). */
  candleTs: z.number().optional(),
});
export type PaperFill = z.infer<typeof PaperFill>;

/** The whole account, as `snapshot` returns it. */
export const PaperAccountState = z.object({
  /** Total per currency, exact decimal text. */
  balances: z.record(z.string(), DecimalString),
  /** Every accepted order, in placement order (open and finished). */
  orders: z.array(ExchangeOrder),
  /** Every fill, in the order they were recorded. */
  fills: z.array(PaperFill),
  /** Per symbol: open time of the last candle matched against open orders. */
  cursors: z.record(z.string(), z.number()),
  nextId: z.number().int().positive(),
  /** Incremented by every commit; 0 = never stored. */
  version: z.number().int().nonnegative(),
});
export type PaperAccountState = z.infer<typeof PaperAccountState>;

/** What one call reads. Omitting `symbols` or `currencies` reads them all (fetchBalance, fetchOpenOrders()). */
export interface PaperRead {
  /** Markets whose open orders and match cursors are read. */
  symbols?: readonly string[];
  /** Currencies whose balances are read. */
  currencies?: readonly string[];
  /** One order, whatever its status. */
  order?: { clientOrderId: string } | { id: string };
  /** Fills of one market with a timestamp at or after `since`, oldest first, at most `limit`. */
  fills?: { symbol: string; since?: number; limit?: number };
}

/** The part of an account a call read. */
export interface PaperAccountView {
  /** Incremented by every commit; 0 = never stored. */
  version: number;
  nextId: number;
  /** The currencies read that have a balance. */
  balances: Record<string, string>;
  /** The markets read that have been matched. */
  cursors: Record<string, number>;
  /** Open orders of the markets read, in placement order. */
  openOrders: ExchangeOrder[];
  /** The order asked for, when it exists. */
  order?: ExchangeOrder;
  /** The fills asked for (empty when none were). */
  fills: PaperFill[];
}

/**
 * One atomic write: balances and cursors to set (the others keep theirs), the id counter, orders
 * to upsert (by id), fills to append.
 */
export interface PaperStateChange {
  balances: Record<string, string>;
  cursors: Record<string, number>;
  nextId: number;
  orders: ExchangeOrder[];
  fills: PaperFill[];
}

export interface PaperStateStore {
  /** What `what` names of the account, or undefined if nothing was ever committed for it. */
  read(account: string, what: PaperRead): Promise<PaperAccountView | undefined>;
  /**
   * Applies `change` atomically if the stored version is still `expectedVersion` (0 for a new
   * account) and returns the new version; otherwise throws PaperStateConflictError.
   */
  commit(account: string, expectedVersion: number, change: PaperStateChange): Promise<number>;
  /** The whole account (every order and fill): for audits and tests. */
  snapshot(account: string): Promise<PaperAccountState | undefined>;
}

/**
 * A store that can also answer at once (process memory): the paper exchange then runs an
 * operation without a promise per step when nothing else is queued on the account (the
 * backtester asks for fills on every candle; the promise machinery was most of that call's cost).
 * Same semantics as `read` and `commit`.
 */
export interface SyncPaperStateStore extends PaperStateStore {
  readSync(account: string, what: PaperRead): PaperAccountView | undefined;
  commitSync(account: string, expectedVersion: number, change: PaperStateChange): number;
  /** The account's version (0: never stored): every commit changes it. */
  versionSync(account: string): number;
}

interface StoredAccount {
  version: number;
  nextId: number;
  balances: Map<string, string>;
  cursors: Map<string, number>;
  /** Every order by id, in placement order. */
  orders: Map<string, ExchangeOrder>;
  byClientId: Map<string, string>;
  /** Open orders per market by id, in placement order. */
  open: Map<string, Map<string, ExchangeOrder>>;
  /** Placement number of every order, to merge the open orders of several markets in placement order. */
  placed: Map<string, number>;
  /** Every fill in recording order, and per market ordered by timestamp. */
  fills: PaperFill[];
  fillsBySymbol: Map<string, PaperFill[]>;
}

/**
 * Accounts in process memory: tests and backtests. Stored orders and fills are frozen copies,
 * handed out as they are (a read copies no record), and replaced, never edited, by a commit: the
 * paper exchange builds a new order object for every change, and a frozen record turns any edit
 * into a TypeError (strict mode), so sharing cannot leak a change past a commit.
 */
export class InMemoryPaperStateStore implements SyncPaperStateStore {
  private readonly accounts = new Map<string, StoredAccount>();

  async read(account: string, what: PaperRead): Promise<PaperAccountView | undefined> {
    return this.readSync(account, what);
  }

  async commit(account: string, expectedVersion: number, change: PaperStateChange): Promise<number> {
    return this.commitSync(account, expectedVersion, change);
  }

  versionSync(account: string): number {
    return this.accounts.get(account)?.version ?? 0;
  }

  readSync(account: string, what: PaperRead): PaperAccountView | undefined {
    const s = this.accounts.get(account);
    if (!s) return undefined;
    const balances: Record<string, string> = {};
    for (const c of what.currencies ?? s.balances.keys()) {
      const v = s.balances.get(c);
      if (v !== undefined) balances[c] = v;
    }
    const cursors: Record<string, number> = {};
    let openOrders: ExchangeOrder[];
    if (what.symbols) {
      openOrders = [];
      for (const symbol of what.symbols) {
        const c = s.cursors.get(symbol);
        if (c !== undefined) cursors[symbol] = c;
        const open = s.open.get(symbol);
        if (open) for (const o of open.values()) openOrders.push(o);
      }
      if (what.symbols.length > 1) openOrders.sort((a, b) => (s.placed.get(a.id) as number) - (s.placed.get(b.id) as number));
    } else {
      for (const [symbol, c] of s.cursors) cursors[symbol] = c;
      openOrders = [...s.open.values()].flatMap((m) => [...m.values()]).sort((a, b) => (s.placed.get(a.id) as number) - (s.placed.get(b.id) as number));
    }
    const view: PaperAccountView = { version: s.version, nextId: s.nextId, balances, cursors, openOrders, fills: [] };
    if (what.order) {
      const id = 'id' in what.order ? what.order.id : s.byClientId.get(what.order.clientOrderId);
      const order = id === undefined ? undefined : s.orders.get(id);
      if (order) view.order = order;
    }
    if (what.fills) {
      const all = s.fillsBySymbol.get(what.fills.symbol) ?? [];
      const since = what.fills.since;
      const from = since === undefined ? 0 : firstAtOrAfter(all, since);
      const to = what.fills.limit === undefined ? all.length : Math.min(all.length, from + what.fills.limit);
      view.fills = all.slice(from, to);
    }
    return view;
  }

  commitSync(account: string, expectedVersion: number, change: PaperStateChange): number {
    let s = this.accounts.get(account);
    const version = s?.version ?? 0;
    if (version !== expectedVersion) {
      throw new PaperStateConflictError(`paper account ${account}: stored version ${version}, expected ${expectedVersion}`, { exchangeId: 'paper', operation: 'commit' });
    }
    if (!s) {
      s = { version: 0, nextId: 1, balances: new Map(), cursors: new Map(), orders: new Map(), byClientId: new Map(), open: new Map(), placed: new Map(), fills: [], fillsBySymbol: new Map() };
      this.accounts.set(account, s);
    }
    for (const changed of change.orders) {
      const o = frozenCopy(changed);
      if (!s.placed.has(o.id)) s.placed.set(o.id, s.placed.size);
      s.orders.set(o.id, o);
      if (o.clientOrderId !== undefined) s.byClientId.set(o.clientOrderId, o.id);
      let open = s.open.get(o.symbol);
      if (o.status === 'open') {
        if (!open) s.open.set(o.symbol, (open = new Map()));
        open.set(o.id, o);
      } else if (open?.delete(o.id) && open.size === 0) {
        s.open.delete(o.symbol);
      }
    }
    for (const added of change.fills) {
      const f = frozenCopy(added);
      s.fills.push(f);
      let bySymbol = s.fillsBySymbol.get(f.symbol);
      if (!bySymbol) s.fillsBySymbol.set(f.symbol, (bySymbol = []));
      // Kept in time order (a fill stamped earlier than the last one goes before it), ties in recording order.
      bySymbol.splice(firstAtOrAfter(bySymbol, f.timestamp + 1), 0, f);
    }
    for (const [c, v] of Object.entries(change.balances)) s.balances.set(c, v);
    for (const [symbol, ts] of Object.entries(change.cursors)) s.cursors.set(symbol, ts);
    s.nextId = change.nextId;
    s.version = version + 1;
    return s.version;
  }

  async snapshot(account: string): Promise<PaperAccountState | undefined> {
    const s = this.accounts.get(account);
    if (!s) return undefined;
    return {
      balances: Object.fromEntries([...s.balances].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))),
      orders: [...s.orders.values()],
      fills: [...s.fills],
      cursors: Object.fromEntries([...s.cursors].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))),
      nextId: s.nextId,
      version: s.version,
    };
  }
}

/** Index of the first fill stamped at or after `t` (fills ordered by timestamp). */
function firstAtOrAfter(fills: readonly PaperFill[], t: number): number {
  let lo = 0;
  let hi = fills.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (fills[mid].timestamp < t) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * A frozen deep copy of a record made of plain objects, arrays and primitives (orders and fills
 * are): structuredClone then freezing was ~4 % of a backtest.
 */
function frozenCopy<T>(value: T): T {
  if (value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return Object.freeze(value.map(frozenCopy)) as T;
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(value)) out[k] = frozenCopy((value as Record<string, unknown>)[k]);
  return Object.freeze(out) as T;
}

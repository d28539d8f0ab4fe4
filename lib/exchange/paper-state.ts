import { z } from 'zod';
import { DecimalString } from '../decimal';
import { PaperStateConflictError } from './errors';
import { ExchangeOrder, OrderSide } from './types';

/**
 * Where the paper exchange keeps an account: balances, every order it accepted, every fill, and
 * how far each market has been matched. Behind an interface so the state survives restarts in
 * PostgreSQL (the ledger) in production and lives in memory in tests.
 *
 * Money is exact decimal text (as PostgreSQL `numeric` comes back), never a float that drifts.
 * Writes are optimistic: `commit` names the version it read, and a store must refuse the write
 * (PaperStateConflictError) if someone else committed in between; the paper exchange then reloads
 * and redoes the operation, which is a pure function of the state and the candles.
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

export const PaperAccountState = z.object({
  /** Total per currency, exact decimal text. */
  balances: z.record(z.string(), DecimalString),
  /** Every accepted order, in placement order (open and finished). */
  orders: z.array(ExchangeOrder),
  fills: z.array(PaperFill),
  /** Per symbol: open time of the last candle matched against open orders. */
  cursors: z.record(z.string(), z.number()),
  nextId: z.number().int().positive(),
  /** Incremented by every commit; 0 = never stored. */
  version: z.number().int().nonnegative(),
});
export type PaperAccountState = z.infer<typeof PaperAccountState>;

/** One atomic write: the new balances, cursors and id counter, orders to upsert (by id), fills to append. */
export interface PaperStateChange {
  balances: Record<string, string>;
  cursors: Record<string, number>;
  nextId: number;
  orders: ExchangeOrder[];
  fills: PaperFill[];
}

export interface PaperStateStore {
  /** The account's state, or undefined if nothing was ever committed for it. */
  load(account: string): Promise<PaperAccountState | undefined>;
  /**
   * Applies `change` atomically if the stored version is still `expectedVersion` (0 for a new
   * account) and returns the new version; otherwise throws PaperStateConflictError.
   */
  commit(account: string, expectedVersion: number, change: PaperStateChange): Promise<number>;
}

export class InMemoryPaperStateStore implements PaperStateStore {
  private readonly accounts = new Map<string, PaperAccountState>();

  async load(account: string): Promise<PaperAccountState | undefined> {
    const s = this.accounts.get(account);
    return s === undefined ? undefined : structuredClone(s);
  }

  async commit(account: string, expectedVersion: number, change: PaperStateChange): Promise<number> {
    const current = this.accounts.get(account);
    const version = current?.version ?? 0;
    if (version !== expectedVersion) {
      throw new PaperStateConflictError(`paper account ${account}: stored version ${version}, expected ${expectedVersion}`, { exchangeId: 'paper', operation: 'commit' });
    }
    const orders = current ? [...current.orders] : [];
    const index = new Map(orders.map((o, i) => [o.id, i]));
    for (const o of change.orders) {
      const i = index.get(o.id);
      if (i === undefined) {
        index.set(o.id, orders.length);
        orders.push(o);
      } else {
        orders[i] = o;
      }
    }
    const next: PaperAccountState = {
      balances: { ...change.balances },
      orders,
      fills: [...(current?.fills ?? []), ...change.fills],
      cursors: { ...change.cursors },
      nextId: change.nextId,
      version: version + 1,
    };
    this.accounts.set(account, structuredClone(next));
    return next.version;
  }
}

import { PaperStateConflictError } from './errors';
import type { PaperAccountState, PaperStateChange, PaperStateStore } from './paper-state';

/**
 * A paper account store for backtests: the same contract as InMemoryPaperStateStore (optimistic
 * versions, atomic commits), without its deep copy of the whole account on every call. Stored
 * orders and fills are frozen and shared between loads instead of cloned; the paper exchange
 * replaces an order rather than editing it, and a frozen record turns any edit into a TypeError
 * (strict mode), so sharing cannot leak a change past a commit. The deep copies cost 80 % of a
 * backtest's time (measured: 2 symbols x 5,000 hourly candles, 29 s -> a few seconds); a test runs
 * the same backtest on both stores and compares every trade.
 */
export class FrozenPaperStateStore implements PaperStateStore {
  // Loads hand out copies of the arrays, so the stored ones are this store's alone and a commit
  // can append to them in place: O(change), not O(account).
  private readonly accounts = new Map<string, { state: PaperAccountState; index: Map<string, number> }>();

  async load(account: string): Promise<PaperAccountState | undefined> {
    const s = this.accounts.get(account)?.state;
    if (!s) return undefined;
    return { balances: { ...s.balances }, orders: [...s.orders], fills: [...s.fills], cursors: { ...s.cursors }, nextId: s.nextId, version: s.version };
  }

  async commit(account: string, expectedVersion: number, change: PaperStateChange): Promise<number> {
    let stored = this.accounts.get(account);
    const version = stored?.state.version ?? 0;
    if (version !== expectedVersion) {
      throw new PaperStateConflictError(`paper account ${account}: stored version ${version}, expected ${expectedVersion}`, { exchangeId: 'paper', operation: 'commit' });
    }
    if (!stored) {
      stored = { state: { balances: {}, orders: [], fills: [], cursors: {}, nextId: 1, version: 0 }, index: new Map() };
      this.accounts.set(account, stored);
    }
    const { state, index } = stored;
    for (const changed of change.orders) {
      const o = deepFreeze(structuredClone(changed));
      const i = index.get(o.id);
      if (i === undefined) {
        index.set(o.id, state.orders.length);
        state.orders.push(o);
      } else {
        state.orders[i] = o;
      }
    }
    for (const f of change.fills) state.fills.push(deepFreeze(structuredClone(f)));
    state.balances = { ...change.balances };
    state.cursors = { ...change.cursors };
    state.nextId = change.nextId;
    state.version = version + 1;
    return state.version;
  }
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object') {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

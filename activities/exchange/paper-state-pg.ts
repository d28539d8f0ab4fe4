import type postgres from 'postgres';
import { transaction } from '../../infra/transaction';
import { PaperStateConflictError } from '../../lib/exchange/errors';
import type { PaperAccountState, PaperFill, PaperStateChange, PaperStateStore } from '../../lib/exchange/paper-state';
import type { ExchangeOrder } from '../../lib/exchange/types';

/**
 * The paper exchange's accounts in PostgreSQL (tables of migration 0005), so DRY_RUN survives
 * restarts and two workers can share one account.
 *
 * A commit is one transaction that first moves the account row from `expectedVersion` to the next
 * version. That UPDATE locks the row, so a second writer with the same expected version waits for
 * the first, then matches no row and gets PaperStateConflictError; the paper exchange reloads and
 * redoes its operation. The PaperExchange's own in-process queue keeps one process from racing
 * itself; this is what stops two processes.
 *
 * Amounts: balances, fill costs and fees are the exchange's exact decimal text, stored as numeric
 * and read back as the same text. Order quantities and prices are JS numbers in ExchangeOrder;
 * they are written with String(x), the shortest text that reads back as the same double, so a
 * load returns exactly what was committed.
 */

type Tx = postgres.TransactionSql;
type Row = Record<string, unknown>;

const ACCOUNT_RE = /^[\x21-\x7e]{1,200}$/;

export class PostgresPaperStateStore implements PaperStateStore {
  constructor(private readonly sql: postgres.Sql) {}

  async load(account: string): Promise<PaperAccountState | undefined> {
    checkAccount(account);
    // One snapshot: a commit landing between the reads would pair new orders with old balances.
    return transaction(
      this.sql,
      async (tx) => {
        // Sent together (postgres.js pipelines the queries of one transaction): one round trip, not five.
        const [[head], balances, orders, fills, cursors] = await Promise.all([
          tx<Row[]>`select version, next_id from paper_accounts where account = ${account} and live`.execute(),
          tx<Row[]>`select currency, total::text as total from paper_balances where account = ${account} order by currency`.execute(),
          tx<Row[]>`select * from paper_orders where account = ${account} order by seq`.execute(),
          tx<Row[]>`select * from paper_fills where account = ${account} order by seq`.execute(),
          tx<Row[]>`select symbol, candle_ts from paper_cursors where account = ${account} order by symbol`.execute(),
        ]);
        if (!head) return undefined;
        return {
          balances: Object.fromEntries(balances.map((r) => [r.currency as string, r.total as string])),
          orders: orders.map(toOrder),
          fills: fills.map(toFill),
          cursors: Object.fromEntries(cursors.map((r) => [r.symbol as string, (r.candle_ts as Date).getTime()])),
          nextId: Number(head.next_id),
          version: Number(head.version),
        } satisfies PaperAccountState;
      },
      'isolation level repeatable read read only',
    );
  }

  async commit(account: string, expectedVersion: number, change: PaperStateChange): Promise<number> {
    checkAccount(account);
    if (!Number.isSafeInteger(expectedVersion) || expectedVersion < 0) throw new RangeError(`paper account ${account}: expectedVersion must be an integer >= 0, got ${expectedVersion}`);
    if (!Number.isSafeInteger(change.nextId) || change.nextId < 1) throw new RangeError(`paper account ${account}: nextId must be an integer >= 1, got ${change.nextId}`);
    return transaction(this.sql, async (tx) => {
      const version = await this.claim(tx, account, expectedVersion, change.nextId);
      // The rest is sent together. postgres.js queries are lazy (sent when first awaited), so each
      // is started with execute() in statement order; statements of one transaction run in the
      // order sent, and the first failure aborts the transaction.
      const balances = Object.entries(change.balances).map(([currency, total]) => ({ account, currency, total }));
      const cursors = Object.entries(change.cursors).map(([symbol, ts]) => ({ account, symbol, candle_ts: toTimestamp(ts, `cursor ${symbol}`) }));
      const orders = change.orders.map((o) => orderRow(account, o));
      const fills = change.fills.map((f) => fillRow(account, f));
      const writes: Promise<unknown>[] = [];
      const send = (q: postgres.PendingQuery<postgres.Row[]>, onError?: (err: unknown) => never) => writes.push(onError ? q.execute().catch(onError) : q.execute());
      send(tx`delete from paper_balances where account = ${account}`);
      if (balances.length > 0) send(tx`insert into paper_balances ${tx(balances, 'account', 'currency', 'total')}`, explainBalance(account, change.balances));
      send(tx`delete from paper_cursors where account = ${account}`);
      if (cursors.length > 0) send(tx`insert into paper_cursors ${tx(cursors, 'account', 'symbol', 'candle_ts')}`);
      if (orders.length > 0) {
        send(tx`
          insert into paper_orders ${tx(orders, ...ORDER_COLUMNS)}
          on conflict (account, id) do update set
            client_order_id = excluded.client_order_id, symbol = excluded.symbol, side = excluded.side, type = excluded.type,
            status = excluded.status, qty = excluded.qty, filled_qty = excluded.filled_qty, price = excluded.price,
            stop_price = excluded.stop_price, avg_fill_price = excluded.avg_fill_price, cost = excluded.cost,
            fee_cost = excluded.fee_cost, fee_currency = excluded.fee_currency, created_at = excluded.created_at,
            updated_at = excluded.updated_at, reason = excluded.reason`);
      }
      if (fills.length > 0) send(tx`insert into paper_fills ${tx(fills, ...FILL_COLUMNS)}`);
      await Promise.all(writes);
      return version;
    });
  }

  /**
   * Forgets one account (balances, orders, fills, cursors): the next PaperExchange call starts it
   * afresh from its initial balances, as for a new replay run. Writers that read the account
   * before the reset get PaperStateConflictError on commit, never a write into the new one.
   * Returns false when there was nothing to reset.
   */
  async resetAccount(account: string): Promise<boolean> {
    checkAccount(account);
    return transaction(this.sql, async (tx) => {
      const [row] = await tx<Row[]>`select live from paper_accounts where account = ${account} for update`;
      if (!row) return false;
      await tx`delete from paper_fills where account = ${account}`;
      await tx`delete from paper_orders where account = ${account}`;
      await tx`delete from paper_balances where account = ${account}`;
      await tx`delete from paper_cursors where account = ${account}`;
      await tx`update paper_accounts set live = false, version = version + 1, updated_at = now() where account = ${account}`;
      return row.live as boolean;
    });
  }

  /** Moves the account row to the next version, or throws PaperStateConflictError. */
  private async claim(tx: Tx, account: string, expectedVersion: number, nextId: number): Promise<number> {
    const rows =
      expectedVersion === 0
        ? // A new account, or one that was reset (its version keeps counting: see migration 0005).
          await tx<{ version: string }[]>`
            insert into paper_accounts (account, version, next_id) values (${account}, 1, ${nextId})
            on conflict (account) do update set version = paper_accounts.version + 1, live = true, next_id = excluded.next_id, updated_at = now()
              where not paper_accounts.live
            returning version`
        : await tx<{ version: string }[]>`
            update paper_accounts set version = version + 1, next_id = ${nextId}, updated_at = now()
            where account = ${account} and version = ${expectedVersion} and live
            returning version`;
    if (rows.length === 1) return Number(rows[0].version);
    const [cur] = await tx<Row[]>`select version, live from paper_accounts where account = ${account}`;
    const stored = !cur ? 'no stored state' : cur.live ? `stored version ${String(cur.version)}` : 'the account was reset';
    throw new PaperStateConflictError(`paper account ${account}: ${stored}, expected version ${expectedVersion}`, { exchangeId: 'paper', operation: 'commit' });
  }
}

function checkAccount(account: string): void {
  if (typeof account !== 'string' || !ACCOUNT_RE.test(account)) {
    throw new RangeError(`paper account name must be 1-200 printable ASCII characters without spaces, got ${JSON.stringify(account)}`);
  }
}

/** A number as the shortest text that reads back as the same double (String(1e-7) = '1e-7', which numeric accepts). */
function num(x: number | undefined, what: string): string | null {
  if (x === undefined) return null;
  if (typeof x !== 'number' || !Number.isFinite(x)) throw new RangeError(`paper state: ${what} must be a finite number, got ${String(x)}`);
  return String(x);
}

function toTimestamp(ms: number, what: string): Date {
  if (!Number.isSafeInteger(ms)) throw new RangeError(`paper state: ${what} must be whole milliseconds since the epoch, got ${ms}`);
  return new Date(ms);
}

const optTimestamp = (ms: number | undefined, what: string): Date | null => (ms === undefined ? null : toTimestamp(ms, what));

const ORDER_COLUMNS = [
  'account', 'id', 'client_order_id', 'symbol', 'side', 'type', 'status', 'qty', 'filled_qty', 'price', 'stop_price',
  'avg_fill_price', 'cost', 'fee_cost', 'fee_currency', 'created_at', 'updated_at', 'reason',
] as const;

function orderRow(account: string, o: ExchangeOrder) {
  const what = (field: string) => `order ${o.id} ${field}`;
  return {
    account,
    id: o.id,
    client_order_id: o.clientOrderId ?? null,
    symbol: o.symbol,
    side: o.side,
    type: o.type,
    status: o.status,
    qty: num(o.qty, what('qty')),
    filled_qty: num(o.filledQty, what('filledQty')),
    price: num(o.price, what('price')),
    stop_price: num(o.stopPrice, what('stopPrice')),
    avg_fill_price: num(o.avgFillPrice, what('avgFillPrice')),
    cost: num(o.cost, what('cost')),
    fee_cost: num(o.fee?.cost, what('fee')),
    fee_currency: o.fee?.currency ?? null,
    created_at: optTimestamp(o.createdAt, what('createdAt')),
    updated_at: optTimestamp(o.updatedAt, what('updatedAt')),
    reason: o.reason ?? null,
  };
}

const FILL_COLUMNS = [
  'account', 'id', 'order_id', 'client_order_id', 'symbol', 'side', 'qty', 'price', 'cost', 'fee', 'fee_currency', 'liquidity', 'ts', 'candle_ts',
] as const;

function fillRow(account: string, f: PaperFill) {
  const what = (field: string) => `fill ${f.id} ${field}`;
  return {
    account,
    id: f.id,
    order_id: f.orderId,
    client_order_id: f.clientOrderId,
    symbol: f.symbol,
    side: f.side,
    qty: num(f.qty, what('qty')),
    price: num(f.price, what('price')),
    cost: f.cost,
    fee: f.fee,
    fee_currency: f.feeCurrency,
    liquidity: f.liquidity,
    ts: toTimestamp(f.timestamp, what('timestamp')),
    candle_ts: optTimestamp(f.candleTs, what('candleTs')),
  };
}

/**
 * The shape the paper exchange gives its orders: `price` and `stopPrice` always present (undefined
 * when unset), every other optional field only when set. A loaded order then deep-equals the one
 * the exchange returned when it placed it, as with the in-memory store.
 */
function toOrder(r: Row): ExchangeOrder {
  const o: ExchangeOrder = {
    id: r.id as string,
    symbol: r.symbol as string,
    side: r.side as ExchangeOrder['side'],
    type: r.type as ExchangeOrder['type'],
    status: r.status as ExchangeOrder['status'],
    qty: Number(r.qty),
    filledQty: Number(r.filled_qty),
    price: r.price === null ? undefined : Number(r.price),
    stopPrice: r.stop_price === null ? undefined : Number(r.stop_price),
  };
  if (r.client_order_id !== null) o.clientOrderId = r.client_order_id as string;
  if (r.avg_fill_price !== null) o.avgFillPrice = Number(r.avg_fill_price);
  if (r.cost !== null) o.cost = Number(r.cost);
  if (r.fee_cost !== null) o.fee = { cost: Number(r.fee_cost), currency: r.fee_currency as string };
  if (r.created_at !== null) o.createdAt = (r.created_at as Date).getTime();
  if (r.updated_at !== null) o.updatedAt = (r.updated_at as Date).getTime();
  if (r.reason !== null) o.reason = r.reason as string;
  return o;
}

function toFill(r: Row): PaperFill {
  const f: PaperFill = {
    id: r.id as string,
    orderId: r.order_id as string,
    clientOrderId: r.client_order_id as string,
    symbol: r.symbol as string,
    side: r.side as PaperFill['side'],
    qty: Number(r.qty),
    price: Number(r.price),
    cost: r.cost as string,
    fee: r.fee as string,
    feeCurrency: r.fee_currency as string,
    liquidity: r.liquidity as PaperFill['liquidity'],
    timestamp: (r.ts as Date).getTime(),
  };
  if (r.candle_ts !== null) f.candleTs = (r.candle_ts as Date).getTime();
  return f;
}

/** The non-negative check is the last line against a double spend: say which balance broke it. */
function explainBalance(account: string, balances: Record<string, string>) {
  return (err: unknown): never => {
    const e = err as { code?: string; constraint_name?: string };
    if (e?.code === '23514' && e.constraint_name === 'paper_balances_total_check') {
      const negative = Object.entries(balances).filter(([, v]) => v.trim().startsWith('-') && /[1-9]/.test(v));
      throw new Error(`paper account ${account}: refusing a negative balance (${negative.map(([c, v]) => `${c} ${v}`).join(', ')}): a bug in the paper exchange, not a retryable conflict`, { cause: err });
    }
    throw err;
  };
}

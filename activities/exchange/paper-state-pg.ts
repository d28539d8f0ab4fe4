import type postgres from 'postgres';
import { transaction } from '../../infra/transaction';
import { PaperStateConflictError } from '../../lib/exchange/errors';
import type { PaperAccountState, PaperAccountView, PaperFill, PaperRead, PaperStateChange, PaperStateStore } from '../../lib/exchange/paper-state';
import type { ExchangeOrder } from '../../lib/exchange/types';

/**
 * The paper exchange's accounts in PostgreSQL (tables of migration 0005, indexes of 0007), so
 * DRY_RUN survives restarts and two workers can share one account.
 *
 * A call of the paper exchange costs two round trips at most, whatever the account's history: one
 * statement reads what the call touches, one statement commits what it changed. The commit first
 * moves the account row from `expectedVersion` to the next version; that UPDATE locks the row, so a
 * second writer with the same expected version waits for the first, then matches no row and gets
 * PaperStateConflictError; the paper exchange reads again and redoes its operation. The
 * PaperExchange's own in-process queue keeps one process from racing itself; this is what stops
 * two processes.
 *
 * Amounts: balances, fill costs and fees are the exchange's exact decimal text, stored as numeric
 * and read back as the same text. Order quantities and prices are JS numbers in ExchangeOrder;
 * they are written as String(x), the shortest text that reads back as the same double, so a read
 * returns exactly what was committed.
 */

type Row = Record<string, unknown>;

const ACCOUNT_RE = /^[\x21-\x7e]{1,200}$/;

export class PostgresPaperStateStore implements PaperStateStore {
  constructor(private readonly sql: postgres.Sql) {}

  /**
   * One statement, so one round trip and one snapshot: the account row with, as JSON, the
   * balances, cursors and open orders of what `what` names, the one order and the fills it asks
   * for. Each part is an index lookup (see migrations 0005 and 0007), whatever the account's history.
   */
  async read(account: string, what: PaperRead): Promise<PaperAccountView | undefined> {
    checkAccount(account);
    const { sql } = this;
    const symbols = what.symbols ? [...what.symbols] : undefined;
    const currencies = what.currencies ? [...what.currencies] : undefined;
    const order = what.order
      ? 'id' in what.order
        ? sql`(select ${orderJson(sql)} from paper_orders o where o.account = a.account and o.id = ${what.order.id})`
        : sql`(select ${orderJson(sql)} from paper_orders o where o.account = a.account and o.client_order_id = ${what.order.clientOrderId})`
      : sql`null::json`;
    const f = what.fills;
    const fills = f
      ? sql`(select coalesce(json_agg(x.j order by x.ts, x.seq), '[]') from (
            select ${fillJson(sql)} as j, p.ts, p.seq from paper_fills p
            where p.account = a.account and p.symbol = ${f.symbol} ${f.since === undefined ? sql`` : sql`and p.ts >= ${toTimestamp(f.since, 'fills since')}`}
            order by p.ts, p.seq ${f.limit === undefined ? sql`` : sql`limit ${f.limit}`}) x)`
      : sql`'[]'::json`;
    const [row] = await sql<Row[]>`
      select a.version, a.next_id,
        (select coalesce(json_object_agg(b.currency, b.total::text), '{}') from paper_balances b
          where b.account = a.account ${currencies ? sql`and b.currency = any(${currencies}::text[])` : sql``}) as balances,
        (select coalesce(json_object_agg(c.symbol, (extract(epoch from c.candle_ts) * 1000)::bigint), '{}') from paper_cursors c
          where c.account = a.account ${symbols ? sql`and c.symbol = any(${symbols}::text[])` : sql``}) as cursors,
        (select coalesce(json_agg(${orderJson(sql)} order by o.seq), '[]') from paper_orders o
          where o.account = a.account and o.status = 'open' ${symbols ? sql`and o.symbol = any(${symbols}::text[])` : sql``}) as open_orders,
        ${order} as one_order,
        ${fills} as fills
      from paper_accounts a where a.account = ${account} and a.live`;
    if (!row) return undefined;
    const view: PaperAccountView = {
      version: Number(row.version),
      nextId: Number(row.next_id),
      balances: row.balances as Record<string, string>,
      cursors: row.cursors as Record<string, number>,
      openOrders: (row.open_orders as unknown[][]).map(orderFromJson),
      fills: (row.fills as unknown[][]).map(fillFromJson),
    };
    if (row.one_order) view.order = orderFromJson(row.one_order as unknown[]);
    return view;
  }

  /**
   * One statement, so one round trip and atomic: moving the account row from `expectedVersion` to
   * the next version locks it (a second writer with the same expected version waits, then matches
   * no row), and every other write happens only if that move returned a row.
   */
  async commit(account: string, expectedVersion: number, change: PaperStateChange): Promise<number> {
    checkAccount(account);
    if (!Number.isSafeInteger(expectedVersion) || expectedVersion < 0) throw new RangeError(`paper account ${account}: expectedVersion must be an integer >= 0, got ${expectedVersion}`);
    if (!Number.isSafeInteger(change.nextId) || change.nextId < 1) throw new RangeError(`paper account ${account}: nextId must be an integer >= 1, got ${change.nextId}`);
    const { sql } = this;
    const balances = Object.entries(change.balances).map(([currency, total]) => ({ currency, total }));
    const cursors = Object.entries(change.cursors).map(([symbol, ts]) => ({ symbol, ms: checkMs(ts, `cursor ${symbol}`) }));
    const orders = change.orders.map(orderRow);
    const fills = change.fills.map(fillRow);
    const claim =
      expectedVersion === 0
        ? // A new account, or one that was reset (its version keeps counting: see migration 0005).
          sql`insert into paper_accounts (account, version, next_id) values (${account}, 1, ${change.nextId})
              on conflict (account) do update set version = paper_accounts.version + 1, live = true, next_id = excluded.next_id, updated_at = now()
                where not paper_accounts.live
              returning version`
        : sql`update paper_accounts set version = version + 1, next_id = ${change.nextId}, updated_at = now()
              where account = ${account} and version = ${expectedVersion} and live
              returning version`;
    const rows = await sql<{ version: string }[]>`
      with claim as (${claim}),
      balances as (
        insert into paper_balances (account, currency, total)
        select ${account}, x.currency, x.total from jsonb_to_recordset(${sql.json(balances)}::jsonb) as x(currency text, total numeric)
        where exists (select 1 from claim)
        on conflict (account, currency) do update set total = excluded.total
        returning 1),
      cursors as (
        insert into paper_cursors (account, symbol, candle_ts)
        select ${account}, x.symbol, timestamptz 'epoch' + x.ms * interval '1 millisecond' from jsonb_to_recordset(${sql.json(cursors)}::jsonb) as x(symbol text, ms bigint)
        where exists (select 1 from claim)
        on conflict (account, symbol) do update set candle_ts = excluded.candle_ts
        returning 1),
      orders as (
        insert into paper_orders (account, id, client_order_id, symbol, side, type, status, qty, filled_qty, price, stop_price,
                                  avg_fill_price, cost, fee_cost, fee_currency, created_at, updated_at, reason)
        select ${account}, x.id, x.client_order_id, x.symbol, x.side, x.type, x.status, x.qty, x.filled_qty, x.price, x.stop_price,
               x.avg_fill_price, x.cost, x.fee_cost, x.fee_currency, timestamptz 'epoch' + x.created_at * interval '1 millisecond', timestamptz 'epoch' + x.updated_at * interval '1 millisecond', x.reason
        from jsonb_to_recordset(${sql.json(orders)}::jsonb) as x(id text, client_order_id text, symbol text, side text, type text, status text,
               qty numeric, filled_qty numeric, price numeric, stop_price numeric, avg_fill_price numeric, cost numeric, fee_cost numeric,
               fee_currency text, created_at bigint, updated_at bigint, reason text)
        where exists (select 1 from claim)
        on conflict (account, id) do update set
          client_order_id = excluded.client_order_id, symbol = excluded.symbol, side = excluded.side, type = excluded.type,
          status = excluded.status, qty = excluded.qty, filled_qty = excluded.filled_qty, price = excluded.price,
          stop_price = excluded.stop_price, avg_fill_price = excluded.avg_fill_price, cost = excluded.cost,
          fee_cost = excluded.fee_cost, fee_currency = excluded.fee_currency, created_at = excluded.created_at,
          updated_at = excluded.updated_at, reason = excluded.reason
        returning 1),
      fills as (
        insert into paper_fills (account, id, order_id, client_order_id, symbol, side, qty, price, cost, fee, fee_currency, liquidity, ts, candle_ts)
        select ${account}, x.id, x.order_id, x.client_order_id, x.symbol, x.side, x.qty, x.price, x.cost, x.fee, x.fee_currency, x.liquidity,
               timestamptz 'epoch' + x.ts * interval '1 millisecond', timestamptz 'epoch' + x.candle_ts * interval '1 millisecond'
        from jsonb_to_recordset(${sql.json(fills)}::jsonb) as x(id text, order_id text, client_order_id text, symbol text, side text, qty numeric,
               price numeric, cost numeric, fee numeric, fee_currency text, liquidity text, ts bigint, candle_ts bigint)
        where exists (select 1 from claim)
        returning 1)
      select version from claim`.catch(explainBalance(account, change.balances));
    if (rows.length === 1) return Number(rows[0].version);
    const [cur] = await sql<Row[]>`select version, live from paper_accounts where account = ${account}`;
    const stored = !cur ? 'no stored state' : cur.live ? `stored version ${String(cur.version)}` : 'the account was reset';
    throw new PaperStateConflictError(`paper account ${account}: ${stored}, expected version ${expectedVersion}`, { exchangeId: 'paper', operation: 'commit' });
  }

  async snapshot(account: string): Promise<PaperAccountState | undefined> {
    checkAccount(account);
    // One snapshot: a commit landing between the reads would pair new orders with old balances.
    return transaction(
      this.sql,
      async (tx) => {
        // Sent together (postgres.js pipelines the queries of one transaction).
        const [[head], balances, orders, fills, cursors] = await Promise.all([
          tx<Row[]>`select version, next_id from paper_accounts where account = ${account} and live`.execute(),
          tx<Row[]>`select currency, total::text as total from paper_balances where account = ${account} order by currency`.execute(),
          tx<Row[]>`select ${orderJson(tx)} as j from paper_orders o where account = ${account} order by seq`.execute(),
          tx<Row[]>`select ${fillJson(tx)} as j from paper_fills p where account = ${account} order by seq`.execute(),
          tx<Row[]>`select symbol, (extract(epoch from candle_ts) * 1000)::bigint as ms from paper_cursors where account = ${account} order by symbol`.execute(),
        ]);
        if (!head) return undefined;
        return {
          balances: Object.fromEntries(balances.map((r) => [r.currency as string, r.total as string])),
          orders: orders.map((r) => orderFromJson(r.j as unknown[])),
          fills: fills.map((r) => fillFromJson(r.j as unknown[])),
          cursors: Object.fromEntries(cursors.map((r) => [r.symbol as string, Number(r.ms)])),
          nextId: Number(head.next_id),
          version: Number(head.version),
        } satisfies PaperAccountState;
      },
      'isolation level repeatable read read only',
    );
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

function checkMs(ms: number, what: string): number {
  if (!Number.isSafeInteger(ms)) throw new RangeError(`paper state: ${what} must be whole milliseconds since the epoch, got ${ms}`);
  return ms;
}

function toTimestamp(ms: number, what: string): Date {
  return new Date(checkMs(ms, what));
}

const optMs = (ms: number | undefined, what: string): number | null => (ms === undefined ? null : checkMs(ms, what));

type Sql = postgres.Sql | postgres.TransactionSql;
const ms = (sql: Sql, column: string) => sql`(extract(epoch from ${sql(column)}) * 1000)::bigint`;

/**
 * An order row as a JSON array (column order of orderFromJson). Numbers come back as JSON numbers,
 * which read as the same doubles that were written (stored as their shortest text, see num).
 */
function orderJson(sql: Sql) {
  return sql`json_build_array(o.id, o.client_order_id, o.symbol, o.side, o.type, o.status, o.qty, o.filled_qty, o.price, o.stop_price,
    o.avg_fill_price, o.cost, o.fee_cost, o.fee_currency, ${ms(sql, 'o.created_at')}, ${ms(sql, 'o.updated_at')}, o.reason)`;
}

/** A fill row as a JSON array (column order of fillFromJson); cost and fee as exact decimal text. */
function fillJson(sql: Sql) {
  return sql`json_build_array(p.id, p.order_id, p.client_order_id, p.symbol, p.side, p.qty, p.price, p.cost::text, p.fee::text,
    p.fee_currency, p.liquidity, ${ms(sql, 'p.ts')}, ${ms(sql, 'p.candle_ts')})`;
}

/** An order as the JSON rows of commit's jsonb_to_recordset: numbers as exact text, times as epoch ms. */
function orderRow(o: ExchangeOrder) {
  const what = (field: string) => `order ${o.id} ${field}`;
  return {
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
    created_at: optMs(o.createdAt, what('createdAt')),
    updated_at: optMs(o.updatedAt, what('updatedAt')),
    reason: o.reason ?? null,
  };
}

function fillRow(f: PaperFill) {
  const what = (field: string) => `fill ${f.id} ${field}`;
  return {
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
    ts: checkMs(f.timestamp, what('timestamp')),
    candle_ts: optMs(f.candleTs, what('candleTs')),
  };
}

/**
 * The shape the paper exchange gives its orders: `price` and `stopPrice` always present (undefined
 * when unset), every other optional field only when set. A read order then deep-equals the one
 * the exchange returned when it placed it, as with the in-memory store.
 */
function orderFromJson(j: unknown[]): ExchangeOrder {
  const [id, clientOrderId, symbol, side, type, status, qty, filledQty, price, stopPrice, avgFillPrice, cost, feeCost, feeCurrency, createdAt, updatedAt, reason] = j;
  const o: ExchangeOrder = {
    id: id as string,
    symbol: symbol as string,
    side: side as ExchangeOrder['side'],
    type: type as ExchangeOrder['type'],
    status: status as ExchangeOrder['status'],
    qty: qty as number,
    filledQty: filledQty as number,
    price: price === null ? undefined : (price as number),
    stopPrice: stopPrice === null ? undefined : (stopPrice as number),
  };
  if (clientOrderId !== null) o.clientOrderId = clientOrderId as string;
  if (avgFillPrice !== null) o.avgFillPrice = avgFillPrice as number;
  if (cost !== null) o.cost = cost as number;
  if (feeCost !== null) o.fee = { cost: feeCost as number, currency: feeCurrency as string };
  if (createdAt !== null) o.createdAt = Number(createdAt);
  if (updatedAt !== null) o.updatedAt = Number(updatedAt);
  if (reason !== null) o.reason = reason as string;
  return o;
}

function fillFromJson(j: unknown[]): PaperFill {
  const [id, orderId, clientOrderId, symbol, side, qty, price, cost, fee, feeCurrency, liquidity, ts, candleTs] = j;
  const f: PaperFill = {
    id: id as string,
    orderId: orderId as string,
    clientOrderId: clientOrderId as string,
    symbol: symbol as string,
    side: side as PaperFill['side'],
    qty: qty as number,
    price: price as number,
    cost: cost as string,
    fee: fee as string,
    feeCurrency: feeCurrency as string,
    liquidity: liquidity as PaperFill['liquidity'],
    timestamp: Number(ts),
  };
  if (candleTs !== null) f.candleTs = Number(candleTs);
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

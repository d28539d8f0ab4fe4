import { z } from 'zod';
import type { Candle } from '../../lib/candles';
import { type PrecisionMode, precisionRule } from '../../lib/precision';
import { MalformedResponseError, type ExchangeErrorContext } from '../../lib/exchange/errors';
import type { AssetBalance, Balances, ExchangeOrder, MarketInfo, OrderStatus, ReportedOrderType, Trade } from '../../lib/exchange/types';

/**
 * The edge: ccxt's unified structures (what it made of the venue's payload) are checked here,
 * once, and turned into our types. A value that is missing or of the wrong kind is a
 * MalformedResponseError naming the field, e.g. `fetchCandles[41].close: expected number, got string`:
 * trading on a half-read payload is worse than stopping.
 */

const num = z.number().refine(Number.isFinite, 'expected a finite number');
const optNum = num.nullish();
const id = z.union([z.string().min(1), z.number()]).transform(String);

function issuePath(path: PropertyKey[], names?: readonly string[]): string {
  return path
    .map((p, i) => (typeof p === 'number' ? (names && i === path.length - 1 ? `.${names[p] ?? p}` : `[${p}]`) : `.${String(p)}`))
    .join('')
    .replace(/^\./, '');
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  return typeof value === 'string' ? `string '${value.slice(0, 40)}'` : typeof value;
}

function valueAt(root: unknown, path: PropertyKey[]): unknown {
  let v = root;
  for (const p of path) v = v !== null && typeof v === 'object' ? (v as Record<PropertyKey, unknown>)[p] : undefined;
  return v;
}

/** Parses `value` or throws MalformedResponseError naming the first bad field. */
export function parseEdge<S extends z.ZodType>(schema: S, value: unknown, what: string, ctx: ExchangeErrorContext, fieldNames?: readonly string[]): z.infer<S> {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  const field = `${what}${issue.path.length ? (typeof issue.path[0] === 'number' ? '' : '.') + issuePath(issue.path, fieldNames) : ''}`;
  const got = /received/.test(issue.message) ? '' : ` (got ${describe(valueAt(value, issue.path))})`;
  throw new MalformedResponseError(`${ctx.exchangeId ?? 'exchange'} ${ctx.operation ?? what}: malformed payload at ${field}: ${issue.message}${got}`, field, ctx);
}

// --- candles ----------------------------------------------------------------------------------

const OHLCV_FIELDS = ['timestamp', 'open', 'high', 'low', 'close', 'volume'] as const;
const CcxtOhlcv = z.array(z.tuple([z.number().int().nonnegative(), num, num, num, num, num]));

export function parseCandles(raw: unknown, ctx: ExchangeErrorContext): Candle[] {
  const rows = parseEdge(CcxtOhlcv, raw, 'candles', ctx, OHLCV_FIELDS);
  return rows.map(([timestamp, open, high, low, close, volume]) => ({ timestamp, open, high, low, close, volume }));
}

// --- orders -----------------------------------------------------------------------------------

const CcxtOrder = z.object({
  id,
  clientOrderId: z.string().nullish(),
  timestamp: optNum,
  lastUpdateTimestamp: optNum,
  lastTradeTimestamp: optNum,
  symbol: z.string().min(1).nullish(),
  type: z.string().nullish(),
  side: z.enum(['buy', 'sell']).nullish(),
  status: z.string().nullish(),
  price: optNum,
  average: optNum,
  amount: optNum,
  filled: optNum,
  remaining: optNum,
  cost: optNum,
  triggerPrice: optNum,
  stopPrice: optNum,
  fee: z.object({ cost: optNum, currency: z.string().nullish() }).nullish(),
});

const STATUS: Record<string, OrderStatus> = {
  open: 'open',
  new: 'open',
  canceling: 'open', // a cancel in flight can still fill
  closed: 'closed',
  filled: 'closed',
  canceled: 'canceled',
  cancelled: 'canceled',
  expired: 'expired',
  rejected: 'rejected',
};

function orderType(type: string | null | undefined, trigger: number | undefined): ReportedOrderType {
  const t = (type ?? '').toLowerCase();
  if (['stop_market', 'stop', 'stop_loss', 'stop-loss'].includes(t)) return 'stop_market';
  if (['stop_limit', 'stop_loss_limit', 'stop-limit'].includes(t)) return 'stop_limit';
  if (t === 'market') return trigger ? 'stop_market' : 'market';
  if (t === 'limit') return trigger ? 'stop_limit' : 'limit';
  return 'other';
}

const positive = (v: number | null | undefined) => (v !== null && v !== undefined && v > 0 ? v : undefined);

/**
 * A ccxt order -> ours. Returns undefined when the payload is too thin to know the order's state
 * (many venues answer createOrder with little more than an id): the caller then fetches it.
 */
export function parseOrder(raw: unknown, ctx: ExchangeErrorContext, what = 'order'): ExchangeOrder | undefined {
  const o = parseEdge(CcxtOrder, raw, what, ctx);
  const qty = o.amount ?? (o.filled != null && o.remaining != null ? o.filled + o.remaining : undefined);
  if (o.status == null || qty == null || o.side == null || o.symbol == null) return undefined;
  const status = STATUS[o.status.toLowerCase()];
  if (!status) throw new MalformedResponseError(`${ctx.exchangeId} ${ctx.operation}: malformed payload at ${what}.status: unknown order status '${o.status}'`, `${what}.status`, ctx);
  const trigger = positive(o.triggerPrice) ?? positive(o.stopPrice);
  const filledQty = o.filled ?? (status === 'closed' ? qty : 0);
  const fee = o.fee && o.fee.cost != null && o.fee.currency ? { cost: o.fee.cost, currency: o.fee.currency } : undefined;
  return {
    id: o.id,
    clientOrderId: o.clientOrderId ?? undefined,
    symbol: o.symbol,
    side: o.side,
    type: orderType(o.type, trigger),
    status,
    qty,
    filledQty,
    price: positive(o.price),
    stopPrice: trigger,
    avgFillPrice: filledQty > 0 ? (positive(o.average) ?? (o.cost && filledQty ? o.cost / filledQty : undefined)) : undefined,
    cost: o.cost ?? undefined,
    fee,
    createdAt: o.timestamp ?? undefined,
    updatedAt: o.lastUpdateTimestamp ?? o.lastTradeTimestamp ?? undefined,
  };
}

/** Like parseOrder, for payloads that must be complete (fetchOrder, fetchOpenOrders). */
export function parseFullOrder(raw: unknown, ctx: ExchangeErrorContext, what = 'order'): ExchangeOrder {
  const o = parseOrder(raw, ctx, what);
  if (!o) throw new MalformedResponseError(`${ctx.exchangeId} ${ctx.operation}: malformed payload at ${what}: no symbol, side, status or amount`, `${what}.status`, ctx);
  return o;
}

export function parseOrders(raw: unknown, ctx: ExchangeErrorContext): ExchangeOrder[] {
  const list = parseEdge(z.array(z.unknown()), raw, 'orders', ctx);
  return list.map((o, i) => parseFullOrder(o, ctx, `orders[${i}]`));
}

// --- trades -----------------------------------------------------------------------------------

const CcxtTrade = z.object({
  id: id.nullish(),
  order: id.nullish(),
  clientOrderId: z.string().nullish(),
  timestamp: z.number().int(),
  symbol: z.string().min(1),
  side: z.enum(['buy', 'sell']),
  price: num.refine((v) => v > 0, 'expected a positive price'),
  amount: num.refine((v) => v > 0, 'expected a positive amount'),
  cost: optNum,
  takerOrMaker: z.enum(['taker', 'maker']).nullish(),
  fee: z.object({ cost: optNum, currency: z.string().nullish() }).nullish(),
});

export function parseTrades(raw: unknown, ctx: ExchangeErrorContext): Trade[] {
  const list = parseEdge(z.array(CcxtTrade), raw, 'trades', ctx);
  return list.map((t) => ({
    // Some venues give no trade id; order id + time is unique enough to deduplicate on.
    id: t.id ?? `${t.order ?? 'trade'}-${t.timestamp}`,
    orderId: t.order ?? undefined,
    clientOrderId: t.clientOrderId ?? undefined,
    symbol: t.symbol,
    side: t.side,
    price: t.price,
    qty: t.amount,
    cost: t.cost ?? t.price * t.amount,
    fee: t.fee && t.fee.cost != null && t.fee.currency ? { cost: t.fee.cost, currency: t.fee.currency } : undefined,
    liquidity: t.takerOrMaker ?? undefined,
    timestamp: t.timestamp,
  }));
}

// --- balances ---------------------------------------------------------------------------------

const AmountsByCurrency = z.record(z.string(), optNum);
const CcxtBalance = z.object({ free: AmountsByCurrency.nullish(), used: AmountsByCurrency.nullish(), total: AmountsByCurrency.nullish() });

/** Currencies whose free, used and total are all zero are dropped (Binance lists hundreds). */
export function parseBalance(raw: unknown, ctx: ExchangeErrorContext): Balances {
  const b = parseEdge(CcxtBalance, raw, 'balance', ctx);
  const out: Balances = {};
  const currencies = new Set([...Object.keys(b.free ?? {}), ...Object.keys(b.used ?? {}), ...Object.keys(b.total ?? {})]);
  for (const c of currencies) {
    const free = b.free?.[c] ?? undefined;
    const used = b.used?.[c] ?? undefined;
    const total = b.total?.[c] ?? (free !== undefined || used !== undefined ? (free ?? 0) + (used ?? 0) : undefined);
    if (total === undefined) continue;
    const entry: AssetBalance = { free: free ?? Math.max(0, total - (used ?? 0)), used: used ?? Math.max(0, total - (free ?? 0)), total };
    if (entry.free !== 0 || entry.used !== 0 || entry.total !== 0) out[c] = entry;
  }
  return out;
}

// --- markets ----------------------------------------------------------------------------------

const MinMax = z.object({ min: optNum, max: optNum }).nullish();
const CcxtMarket = z.object({
  symbol: z.string().min(1),
  base: z.string().min(1),
  quote: z.string().min(1),
  type: z.string().nullish(),
  active: z.boolean().nullish(),
  precision: z.object({ amount: optNum, price: optNum }),
  limits: z.object({ amount: MinMax, price: MinMax, cost: MinMax }).partial().nullish(),
  maker: optNum,
  taker: optNum,
});

/** ccxt's precisionMode constants (DECIMAL_PLACES = 2, SIGNIFICANT_DIGITS = 3, TICK_SIZE = 4). */
export function precisionModeOf(ccxtMode: number): PrecisionMode {
  if (ccxtMode === 4) return 'tick_size';
  if (ccxtMode === 3) return 'significant_digits';
  if (ccxtMode === 2) return 'decimal_places';
  throw new RangeError(`unknown ccxt precisionMode ${ccxtMode}`);
}

const MARKET_TYPES = ['spot', 'margin', 'swap', 'future', 'option'] as const;

export function parseMarket(raw: unknown, ccxtPrecisionMode: number, ctx: ExchangeErrorContext): MarketInfo {
  const m = parseEdge(CcxtMarket, raw, 'market', ctx);
  const mode = precisionModeOf(ccxtPrecisionMode);
  const limit = (v: number | null | undefined) => (v !== null && v !== undefined && v >= 0 ? v : undefined);
  let amountPrecision, pricePrecision;
  try {
    amountPrecision = precisionRule(m.precision.amount, mode);
    pricePrecision = precisionRule(m.precision.price, mode);
  } catch (err) {
    throw new MalformedResponseError(`${ctx.exchangeId} market ${m.symbol}: malformed precision: ${(err as Error).message}`, 'market.precision', ctx);
  }
  const type = (MARKET_TYPES as readonly string[]).includes(m.type ?? '') ? (m.type as (typeof MARKET_TYPES)[number]) : 'other';
  return {
    symbol: m.symbol,
    base: m.base,
    quote: m.quote,
    type,
    // ccxt leaves `active` undefined when the venue does not say; only an explicit false means halted.
    active: m.active !== false,
    amountPrecision,
    pricePrecision,
    minAmount: limit(m.limits?.amount?.min),
    maxAmount: limit(m.limits?.amount?.max),
    minPrice: limit(m.limits?.price?.min),
    maxPrice: limit(m.limits?.price?.max),
    minCost: limit(m.limits?.cost?.min),
    maxCost: limit(m.limits?.cost?.max),
    makerFee: m.maker ?? undefined,
    takerFee: m.taker ?? undefined,
  };
}

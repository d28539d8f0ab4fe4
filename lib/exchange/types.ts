import { z } from 'zod';
import type { Candle } from '../candles';
import type { OrderStatus as LifecycleStatus } from '../order-status';
import { MarketRules } from '../precision';

/**
 * The one exchange interface: live ccxt, the paper exchange and (for market data) the replay
 * source all speak it. Values here are already parsed and checked; nothing inside the project
 * touches a raw exchange payload.
 */

export const OrderSide = z.enum(['buy', 'sell']);
export type OrderSide = z.infer<typeof OrderSide>;

/** What we place. */
export const OrderType = z.enum(['market', 'limit', 'stop_market']);
export type OrderType = z.infer<typeof OrderType>;

/** What we may find on the exchange (an operator can place any kind by hand). */
export const ReportedOrderType = z.enum(['market', 'limit', 'stop_market', 'stop_limit', 'other']);
export type ReportedOrderType = z.infer<typeof ReportedOrderType>;

/** ccxt's unified order statuses: open (incl. partially filled), closed (= fully filled), canceled, expired, rejected. */
export const OrderStatus = z.enum(['open', 'closed', 'canceled', 'expired', 'rejected']);
export type OrderStatus = z.infer<typeof OrderStatus>;

/**
 * Client order ids are derived from workflow id + candle time + intent; exchanges accept
 * 1-36 characters of letters, digits and `.:/_-` (Binance's rule; most are looser).
 */
const CLIENT_ORDER_ID_RE = /^[A-Za-z0-9.:/_-]{1,36}$/;
export const ClientOrderId = z.string().regex(CLIENT_ORDER_ID_RE, 'a client order id is 1-36 characters of letters, digits and . : / _ -');

/** ClientOrderId's test without zod, for the order path's hot checks. */
export function isClientOrderId(v: unknown): v is string {
  return typeof v === 'string' && CLIENT_ORDER_ID_RE.test(v);
}

/** A finite number above 0: what zod 4's z.number().positive() accepts. */
export function isPositiveNumber(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v) && v > 0;
}

export const OrderRequest = z
  .object({
    clientOrderId: ClientOrderId,
    symbol: z.string().min(1),
    side: OrderSide,
    type: OrderType,
    qty: z.number().positive(),
    /** Limit price for a limit order. For a market order: optional reference price, used only to check the minimum notional before sending. */
    price: z.number().positive().optional(),
    /** Trigger price of a stop_market order. */
    stopPrice: z.number().positive().optional(),
  })
  .superRefine((o, ctx) => {
    if (o.type === 'limit' && o.price === undefined) ctx.addIssue({ code: 'custom', path: ['price'], message: 'a limit order needs a price' });
    if (o.type === 'stop_market' && o.stopPrice === undefined) ctx.addIssue({ code: 'custom', path: ['stopPrice'], message: 'a stop_market order needs a stopPrice' });
    if (o.type !== 'stop_market' && o.stopPrice !== undefined) ctx.addIssue({ code: 'custom', path: ['stopPrice'], message: `a ${o.type} order has no stopPrice` });
  });
export type OrderRequest = z.infer<typeof OrderRequest>;

/**
 * An OrderRequest that OrderRequest.parse would accept as it is, checked by hand (every order a
 * backtest places passes here; zod's parse was a measurable share of its time). False for
 * anything else: the caller then parses with zod, which gives the message.
 */
export function isPlainOrderRequest(r: unknown): boolean {
  if (r === null || typeof r !== 'object') return false;
  const o = r as Record<string, unknown>;
  if (!isClientOrderId(o.clientOrderId) || typeof o.symbol !== 'string' || o.symbol.length === 0) return false;
  if ((o.side !== 'buy' && o.side !== 'sell') || !isPositiveNumber(o.qty)) return false;
  if ((o.price !== undefined && !isPositiveNumber(o.price)) || (o.stopPrice !== undefined && !isPositiveNumber(o.stopPrice))) return false;
  if (o.type === 'market') return o.stopPrice === undefined;
  if (o.type === 'limit') return o.price !== undefined && o.stopPrice === undefined;
  if (o.type === 'stop_market') return o.stopPrice !== undefined;
  return false;
}

export const Fee = z.object({ cost: z.number(), currency: z.string() });
export type Fee = z.infer<typeof Fee>;

export const ExchangeOrder = z.object({
  id: z.string().min(1),
  clientOrderId: z.string().optional(),
  symbol: z.string(),
  side: OrderSide,
  type: ReportedOrderType,
  status: OrderStatus,
  qty: z.number().nonnegative(),
  filledQty: z.number().nonnegative(),
  price: z.number().optional(),
  stopPrice: z.number().optional(),
  /** Average fill price; absent while nothing is filled. */
  avgFillPrice: z.number().optional(),
  /** Quote amount filled (sum of qty * price over fills). */
  cost: z.number().optional(),
  fee: Fee.optional(),
  createdAt: z.number().optional(),
  updatedAt: z.number().optional(),
  /** Why the order ended without filling, when known (paper: the candle or balance that stopped it). */
  reason: z.string().optional(),
});
export type ExchangeOrder = z.infer<typeof ExchangeOrder>;

/** The venue's view of an order in the ledger's lifecycle terms (lib/order-status.ts). */
export function lifecycleStatus(order: Pick<ExchangeOrder, 'status' | 'filledQty' | 'qty'>): LifecycleStatus {
  switch (order.status) {
    case 'open':
      return order.filledQty > 0 ? 'partially_filled' : 'open';
    case 'closed':
      return 'filled';
    default:
      return order.status;
  }
}

export const Trade = z.object({
  id: z.string(),
  orderId: z.string().optional(),
  clientOrderId: z.string().optional(),
  symbol: z.string(),
  side: OrderSide,
  price: z.number().positive(),
  qty: z.number().positive(),
  cost: z.number().nonnegative(),
  fee: Fee.optional(),
  liquidity: z.enum(['maker', 'taker']).optional(),
  timestamp: z.number(),
});
export type Trade = z.infer<typeof Trade>;

export const AssetBalance = z.object({ free: z.number(), used: z.number(), total: z.number() });
export type AssetBalance = z.infer<typeof AssetBalance>;
/** Per currency code. Currencies the exchange reports as all-zero may be left out. */
export const Balances = z.record(z.string(), AssetBalance);
export type Balances = z.infer<typeof Balances>;

export const MarketType = z.enum(['spot', 'margin', 'swap', 'future', 'option', 'other']);

/** Precision and limits (the rules every order is fitted to) plus what the market is. */
export const MarketInfo = MarketRules.extend({
  base: z.string(),
  quote: z.string(),
  type: MarketType,
  active: z.boolean(),
  makerFee: z.number().optional(),
  takerFee: z.number().optional(),
});
export type MarketInfo = z.infer<typeof MarketInfo>;

export type OrderRef = { id: string; clientOrderId?: string } | { id?: string; clientOrderId: string };

/** Market data only: what the replay source and every exchange provide. */
export interface MarketDataSource {
  /**
   * Closed candles only (open time + timeframe <= now), oldest first. With `since`: the first
   * `limit` candles opening at or after it; without: the latest `limit` closed candles.
   */
  fetchCandles(symbol: string, timeframe: string, since?: number, limit?: number): Promise<Candle[]>;
}

/** Where market precision and limits come from. */
export interface MarketCatalog {
  market(symbol: string): Promise<MarketInfo>;
}

/**
 * Market data in process memory (recorded candles), answered at once: same answers as
 * fetchCandles. With it (and a catalog and store that answer at once) the paper exchange can
 * serve a call without a promise per step (the backtester's every-candle fill lookup).
 */
export interface SyncMarketDataSource extends MarketDataSource {
  fetchCandlesSync(symbol: string, timeframe: string, since?: number, limit?: number): Candle[];
}

/** A catalog in process memory: `marketSync` answers (or throws) exactly as `market` would. */
export interface SyncMarketCatalog extends MarketCatalog {
  marketSync(symbol: string): MarketInfo;
}

export interface ExchangeAdapter extends MarketDataSource, MarketCatalog {
  /** ccxt id of the venue (or 'paper'). */
  readonly exchangeId: string;
  loadMarkets(reload?: boolean): Promise<string[]>;
  fetchBalance(): Promise<Balances>;
  /**
   * Places an order at most once per clientOrderId: an order that already exists under that id
   * is returned as it is, whatever the request says. Amount and prices are fitted to the market
   * first; an order below the market's minimums is refused with OrderBelowMinimumError.
   */
  createOrder(req: OrderRequest): Promise<ExchangeOrder>;
  fetchOrderByClientId(symbol: string, clientOrderId: string): Promise<ExchangeOrder | null>;
  /** Cancels an open order and returns its final state (an order already closed is returned as it is). */
  cancelOrder(symbol: string, ref: OrderRef): Promise<ExchangeOrder>;
  fetchOpenOrders(symbol?: string): Promise<ExchangeOrder[]>;
  fetchMyTrades(symbol: string, since?: number, limit?: number): Promise<Trade[]>;
  /**
   * fetchMyTrades answered at once, when the adapter can (the paper exchange over in-memory state
   * and recorded candles, nothing else in progress on the account); undefined: call fetchMyTrades.
   * A fresh array; its trades may be shared with later answers (frozen).
   */
  fetchMyTradesNow?(symbol: string, since?: number, limit?: number): Trade[] | undefined;
  /** The circuit breaker guarding the venue this adapter talks to (none for pure replays). */
  breakerState?(): BreakerStatus | undefined;
}

/** A venue's circuit breaker as the workflows and `trader status` show it (activities/exchange/resilience.ts keeps one per exchange). */
export type BreakerStateName = 'closed' | 'open' | 'half_open' | 'isolated';

export interface BreakerStatus {
  exchangeId: string;
  state: BreakerStateName;
  /** When the breaker entered this state (epoch ms). */
  since: number;
  /** Transient failures in a row, as of now. */
  consecutiveFailures: number;
  lastFailure?: string;
}

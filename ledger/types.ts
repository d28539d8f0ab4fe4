import { z } from 'zod';
import { ORDER_STATUSES, type OrderStatus } from '../lib/order-status';
import { isDecimalString } from '../lib/decimal';

/**
 * The ledger's edge: inputs are parsed here once; outputs are plain typed rows. Money and
 * quantities cross this edge as decimal strings ("0.015", "64123.5"), never JS numbers: a float
 * cannot hold 0.1 exactly, and the ledger's sums must be exact.
 */

const decimal = (what: string) => z.string().refine(isDecimalString, { message: `${what}: expected a decimal string such as "0.015" (no exponent)` });
const positive = (what: string) => decimal(what).refine((s) => /[1-9]/.test(s) && !s.startsWith('-'), { message: `${what}: must be > 0` });
const nonNegative = (what: string) => decimal(what).refine((s) => !s.startsWith('-') || !/[1-9]/.test(s), { message: `${what}: must be >= 0` });

export const ORDER_SIDES = ['buy', 'sell'] as const;
export const ORDER_TYPES = ['market', 'limit', 'stop_market', 'stop_limit', 'take_profit_market', 'take_profit_limit'] as const;
export type OrderSide = (typeof ORDER_SIDES)[number];
export type OrderType = (typeof ORDER_TYPES)[number];

export const OrderStatusSchema = z.enum(ORDER_STATUSES);

export const OrderIntent = z.object({
  clientOrderId: z.string().regex(/^[\x21-\x7e]{1,100}$/, 'printable ASCII without spaces, at most 100 characters'),
  exchange: z.string().regex(/^[a-z0-9]+$/, 'a ccxt exchange id such as binance'),
  symbol: z.string().regex(/^[A-Za-z0-9._-]+\/[A-Za-z0-9._-]+(:[A-Za-z0-9._-]+)?$/, 'a ccxt symbol such as BTC/USDT'),
  side: z.enum(ORDER_SIDES),
  type: z.enum(ORDER_TYPES),
  qty: positive('qty'),
  price: positive('price').optional(),
  stopPrice: positive('stopPrice').optional(),
  workflowId: z.string().min(1).optional(),
  decisionSeq: z.number().int().nonnegative().optional(),
  reason: z.string().min(1).optional(),
  /** The strategy that decided it (entries and signal exits). */
  strategy: z.object({ name: z.string().min(1).max(48), version: z.string().min(1).max(40), source: z.string().regex(/^[0-9a-f]{1,64}$/), params: z.string().regex(/^[0-9a-f]{1,64}$/) }).optional(),
  /** The strategy's tag of an entry. */
  entryTag: z.string().regex(/^[\x20-\x7e]{1,40}$/, 'printable ASCII, at most 40 characters').optional(),
});
export type OrderIntent = z.infer<typeof OrderIntent>;

export const FillReport = z.object({
  clientOrderId: z.string().min(1),
  /** The exchange's trade id; the same id reported twice is recorded once. */
  fillId: z.string().regex(/^[\x21-\x7e]{1,200}$/, 'printable ASCII without spaces'),
  qty: positive('qty'),
  price: positive('price'),
  /** Negative for a maker rebate. */
  fee: decimal('fee').default('0'),
  feeCurrency: z.string().regex(/^[A-Za-z0-9._-]{1,20}$/).optional(),
  /** The fee converted to the quote currency; required only when feeCurrency is neither base nor quote (e.g. BNB). */
  feeQuote: decimal('feeQuote').optional(),
  ts: z.coerce.date(),
});
export type FillReport = z.input<typeof FillReport>;

export const EquitySnapshotInput = z.object({
  /** Whose equity (the portfolio's account, e.g. `paper-binance`); '' for a ledger with one account. */
  account: z.string().max(200).default(''),
  equity: nonNegative('equity'),
  cash: nonNegative('cash'),
  /** Open positions' notional at mark, quote currency. */
  exposure: nonNegative('exposure').default('0'),
  /** The peak the drawdown is measured from (the kill switch's), when known. */
  peakEquity: nonNegative('peakEquity').optional(),
  /** (peak - equity) / peak, a fraction in [0, 1]. */
  drawdown: nonNegative('drawdown')
    .refine((s) => Number(s) <= 1, { message: 'drawdown: a fraction, at most 1' })
    .optional(),
  ts: z.coerce.date(),
});
export type EquitySnapshotInput = z.input<typeof EquitySnapshotInput>;

export interface Order {
  id: string;
  clientOrderId: string;
  exchangeOrderId: string | null;
  exchange: string;
  symbol: string;
  side: OrderSide;
  type: OrderType;
  qty: string;
  price: string | null;
  stopPrice: string | null;
  status: OrderStatus;
  statusReason: string | null;
  filledQty: string;
  workflowId: string | null;
  decisionSeq: number | null;
  reason: string | null;
  createdAt: Date;
  updatedAt: Date;
}

export interface Fill {
  id: string;
  exchange: string;
  fillId: string;
  orderId: string;
  qty: string;
  price: string;
  fee: string;
  feeCurrency: string | null;
  /** The fee in the symbol's quote currency. */
  feeQuote: string;
  /** Change in base-asset holdings (buy: qty less a base-asset fee; sell: negative). */
  positionQtyDelta: string;
  ts: Date;
  recordedAt: Date;
}

/** Long-only, average cost. realizedPnl is net of all fees paid on the position. */
export interface Position {
  id: string;
  exchange: string;
  symbol: string;
  status: 'open' | 'closed';
  qty: string;
  avgEntryPrice: string;
  entryQty: string;
  exitQty: string;
  exitNotional: string;
  realizedPnl: string;
  fees: string;
  openedAt: Date;
  closedAt: Date | null;
}

/** A position as derived from fills alone (no id: it is not a stored row). */
export type RebuiltPosition = Omit<Position, 'id'>;

export interface Trade {
  id: string;
  positionId: string;
  exchange: string;
  symbol: string;
  side: 'long';
  qty: string;
  entryTime: Date;
  entryPrice: string;
  exitTime: Date;
  exitPrice: string;
  fees: string;
  pnl: string;
  exitReason: string | null;
}

/** Closed trades in aggregate, computed by PostgreSQL: money as exact decimal text. */
export interface TradeTotals {
  trades: number;
  wins: number;
  pnl: string;
}

export interface TradeSummary {
  all: TradeTotals;
  /** Trades that closed at or after each `since` asked for, in the same order. */
  since: TradeTotals[];
  best: { symbol: string; pnl: string } | null;
  worst: { symbol: string; pnl: string } | null;
}

export interface EquitySnapshot {
  ts: Date;
  account: string;
  equity: string;
  cash: string;
  exposure: string;
  peakEquity: string | null;
  drawdown: string | null;
}

export interface AuditEntry {
  id: string;
  ts: Date;
  event: string;
  actor: string | null;
  payload: Record<string, unknown>;
}

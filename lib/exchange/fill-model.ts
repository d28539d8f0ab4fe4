import { z } from 'zod';
import type { Candle } from '../candles';
import { decAdd, decCmp, decMul, decSub } from '../decimal';
import { applyPrecision, type PrecisionRule } from '../precision';
import { keyedUniform } from '../random';

/**
 * How simulated orders fill against candles: the rules the paper exchange and the backtester
 * share, so a paper run and a backtest over the same candles fill the same orders at the same
 * prices. Pure and deterministic: randomness, when asked for, is drawn from a seed and the order's
 * key, so a replay (or a restarted worker) reproduces every fill.
 *
 * The account is a cash (spot) account: a buy spends quote and receives base, a sell the reverse;
 * fees are charged in the quote currency. Orders fill whole (no partial fills).
 *
 * Inside one candle we only know open, high, low and close, not the order in which high and low
 * came. When orders on both sides of the open are touched in one candle (a stop and a target) we
 * play both paths, open-low-high-close and open-high-low-close, and keep the one that leaves the
 * account worse off at the close: a backtest that assumes the lucky path overstates every strategy
 * that uses a tight stop.
 */

export type Side = 'buy' | 'sell';
export type Liquidity = 'maker' | 'taker';

/** Fee rates as fractions of the notional (0.001 = 0.1 %). */
export const FeeSchedule = z.object({
  maker: z.number().min(0).max(0.1),
  taker: z.number().min(0).max(0.1),
});
export type FeeSchedule = z.infer<typeof FeeSchedule>;

/**
 * Adverse slippage on taker fills, in basis points: `bps` always, plus `rangeFraction` of the
 * candle's range ((high - low) / close, so a wild candle costs more), plus a uniform draw in
 * [0, randomBps) seeded by `seed` and the order's key.
 */
export const SlippageModel = z.object({
  bps: z.number().min(0).max(10_000).default(0),
  rangeFraction: z.number().min(0).max(1).default(0),
  randomBps: z.number().min(0).max(10_000).default(0),
  seed: z.number().int().default(0),
});
export type SlippageModel = z.infer<typeof SlippageModel>;

export interface FillRules {
  fees: FeeSchedule;
  slippage: SlippageModel;
  /** Fill prices after slippage are rounded to this (against the account). */
  pricePrecision?: PrecisionRule;
  /**
   * 'through' (default): a resting limit fills only if the market trades beyond its price, since
   * touching it says nothing about our place in the queue. 'touch': trading at the price is enough.
   */
  limitFill?: 'touch' | 'through';
}

/** A resting order as the fill model sees it. `key` identifies it (and seeds its slippage). */
export interface WorkingOrder {
  key: string;
  side: Side;
  type: 'limit' | 'stop_market';
  qty: number;
  price?: number;
  stopPrice?: number;
}

/** The balances of one market's two currencies, as exact decimal strings. */
export interface MarketCash {
  base: string;
  quote: string;
}

export interface Fill {
  key: string;
  side: Side;
  qty: number;
  price: number;
  liquidity: Liquidity;
  /** qty * price, exact. */
  cost: string;
  /** cost * fee rate, exact, in the quote currency. */
  fee: string;
}

// --- prices -----------------------------------------------------------------------------------

export function slippageBps(model: SlippageModel, key: string, candle?: Candle): number {
  let bps = model.bps;
  if (candle && model.rangeFraction > 0 && candle.close > 0) {
    bps += model.rangeFraction * ((candle.high - candle.low) / candle.close) * 10_000;
  }
  if (model.randomBps > 0) bps += model.randomBps * keyedUniform(model.seed, key);
  return bps;
}

/** `price` moved against the taker by `bps`, rounded to the tick against the taker. */
export function slippedPrice(side: Side, price: number, bps: number, pricePrecision?: PrecisionRule): number {
  const factor = decAdd(1, (side === 'buy' ? bps : -bps) / 10_000);
  return applyPrecision(Number(decMul(price, factor)), pricePrecision, side === 'buy' ? 'up' : 'down');
}

export function feeRate(fees: FeeSchedule, liquidity: Liquidity): number {
  return liquidity === 'maker' ? fees.maker : fees.taker;
}

export function makeFill(key: string, side: Side, qty: number, price: number, liquidity: Liquidity, fees: FeeSchedule): Fill {
  const cost = decMul(qty, price);
  return { key, side, qty, price, liquidity, cost, fee: decMul(cost, feeRate(fees, liquidity)) };
}

/** The balances after a fill, or undefined if the account cannot pay for it. */
export function applyFill(cash: MarketCash, fill: Fill): MarketCash | undefined {
  if (fill.side === 'buy') {
    const quote = decSub(cash.quote, decAdd(fill.cost, fill.fee));
    return decCmp(quote, 0) < 0 ? undefined : { base: decAdd(cash.base, fill.qty), quote };
  }
  const base = decSub(cash.base, fill.qty);
  return decCmp(base, 0) < 0 ? undefined : { base, quote: decSub(decAdd(cash.quote, fill.cost), fill.fee) };
}

/**
 * An order that meets the market on arrival: a market order, or a limit order whose price
 * crosses the reference price. Fills at the reference moved by slippage (never beyond the limit),
 * as taker. Returns undefined for a limit that would rest on the book.
 * `referencePrice` is the price the order meets: the close of the last closed candle.
 */
export function immediateFill(
  order: { key: string; side: Side; type: 'market' | 'limit'; qty: number; price?: number },
  referencePrice: number,
  lastCandle: Candle | undefined,
  rules: FillRules,
): Fill | undefined {
  const { side } = order;
  if (order.type === 'limit') {
    if (order.price === undefined) throw new RangeError('a limit order needs a price');
    const crosses = side === 'buy' ? order.price >= referencePrice : order.price <= referencePrice;
    if (!crosses) return undefined;
  }
  let price = slippedPrice(side, referencePrice, slippageBps(rules.slippage, order.key, lastCandle), rules.pricePrecision);
  if (order.type === 'limit' && order.price !== undefined) {
    price = side === 'buy' ? Math.min(price, order.price) : Math.max(price, order.price);
  }
  return makeFill(order.key, side, order.qty, price, 'taker', rules.fees);
}

/** Whether a stop would trigger at once at this price (exchanges refuse such stops). */
export function stopWouldTrigger(side: Side, stopPrice: number, marketPrice: number): boolean {
  return side === 'sell' ? marketPrice <= stopPrice : marketPrice >= stopPrice;
}

// --- one candle -------------------------------------------------------------------------------

export type IntrabarPath = 'open-low-high-close' | 'open-high-low-close';

export interface CandleMatch {
  /** Fills in the order they happened along the chosen path. */
  fills: Fill[];
  /** Orders that were touched but could no longer be paid for (an earlier fill used the money). */
  unfunded: string[];
  path: IntrabarPath;
  cash: MarketCash;
}

interface Touch {
  order: WorkingOrder;
  at: number; // position along the path: 0 = the open, then 1 per leg
  price: number; // the market price where it triggers (before slippage)
}

/**
 * Whether price `p` reaches `level`. A module function rather than a closure in firstTouch: under
 * tsx (esbuild keepNames) a named closure costs an Object.defineProperty per call, and resting
 * orders are matched on every candle.
 */
function reached(p: number, level: number, waitsForDrop: boolean, limitStrict: boolean): boolean {
  return waitsForDrop ? (limitStrict ? p < level : p <= level) : limitStrict ? p > level : p >= level;
}

function firstTouch(order: WorkingOrder, points: number[], strict: boolean): Touch | undefined {
  const isStop = order.type === 'stop_market';
  const level = isStop ? order.stopPrice : order.price;
  if (level === undefined) throw new RangeError(`order ${order.key}: ${isStop ? 'stopPrice' : 'price'} missing`);
  // Buy limits and sell stops wait for the price to come down to them; the other two for it to rise.
  const waitsForDrop = (order.side === 'buy') !== isStop;
  const limitStrict = !isStop && strict;
  // At the open: the price gapped onto or past the level. A stop fills where the market is (worse
  // than its level); a limit fills at its level, never better.
  if (reached(points[0], level, waitsForDrop, limitStrict)) return { order, at: 0, price: isStop ? points[0] : level };
  for (let leg = 0; leg < points.length - 1; leg++) {
    const from = points[leg];
    const to = points[leg + 1];
    if (from === to || !reached(to, level, waitsForDrop, limitStrict)) continue;
    const frac = Math.min(1, Math.max(0, (from - level) / (from - to)));
    return { order, at: leg + frac, price: level };
  }
  return undefined;
}

function playPath(path: IntrabarPath, orders: WorkingOrder[], candle: Candle, cash: MarketCash, rules: FillRules): CandleMatch {
  const points = path === 'open-low-high-close' ? [candle.open, candle.low, candle.high, candle.close] : [candle.open, candle.high, candle.low, candle.close];
  const strict = (rules.limitFill ?? 'through') === 'through';
  const touches = orders
    .map((o) => firstTouch(o, points, strict))
    .filter((t): t is Touch => t !== undefined)
    .sort((a, b) => a.at - b.at || (a.order.key < b.order.key ? -1 : a.order.key > b.order.key ? 1 : 0));
  const fills: Fill[] = [];
  const unfunded: string[] = [];
  let now = cash;
  for (const t of touches) {
    const { order } = t;
    const fill =
      order.type === 'stop_market'
        ? makeFill(order.key, order.side, order.qty, slippedPrice(order.side, t.price, slippageBps(rules.slippage, order.key, candle), rules.pricePrecision), 'taker', rules.fees)
        : makeFill(order.key, order.side, order.qty, t.price, 'maker', rules.fees);
    const after = applyFill(now, fill);
    if (after) {
      fills.push(fill);
      now = after;
    } else {
      unfunded.push(order.key);
    }
  }
  return { fills, unfunded, path, cash: now };
}

/**
 * Matches resting orders against one closed candle. Both intrabar paths are played and the one
 * that leaves the account's value at the close lower is kept (ties: the path the candle's colour
 * suggests, low first for a green candle). Orders not in `fills` or `unfunded` stay open.
 */
export function matchCandle(orders: WorkingOrder[], candle: Candle, cash: MarketCash, rules: FillRules): CandleMatch {
  const green = candle.close >= candle.open;
  const first = playPath(green ? 'open-low-high-close' : 'open-high-low-close', orders, candle, cash, rules);
  if (first.fills.length + first.unfunded.length === 0) return first;
  const second = playPath(green ? 'open-high-low-close' : 'open-low-high-close', orders, candle, cash, rules);
  return decCmp(valueAtClose(second, candle), valueAtClose(first, candle)) < 0 ? second : first;
}

/** The account's value at the candle's close after a path's fills. */
function valueAtClose(m: CandleMatch, candle: Candle): string {
  return decAdd(m.cash.quote, decMul(m.cash.base, candle.close));
}

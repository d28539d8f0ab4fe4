import { z } from 'zod';
import { DecimalString, FLOAT_DIGITS, decCmp, decMul, roundToSignificant, roundToStep, toDecimalString, toFloatDigits, type Rounding } from './decimal';

/**
 * Rounding to a market's precision and checking its minimums, decimal-safe.
 *
 * Exchanges reject an amount that is not a whole number of lot steps and a price that is not a
 * whole number of ticks, so every rounding here is exact decimal arithmetic (lib/decimal.ts), never
 * float division: 0.7 - 0.4 truncated to a 0.1 step must give 0.3, not 0.2. The paper exchange,
 * the backtester and the live adapter all call these functions, so an order the paper run accepts
 * is one the exchange would accept.
 */

// ---------------------------------------------------------------------------------------------
// Market rules

/**
 * How a market's amounts or prices are quantised. ccxt states precision three ways
 * (precisionMode): TICK_SIZE gives the step itself (0.01), DECIMAL_PLACES a count of decimals (2),
 * SIGNIFICANT_DIGITS a count of significant digits. The first two are both a step; we keep the step
 * as decimal text so it is exact.
 */
export const PrecisionRule = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('step'), step: DecimalString }),
  z.object({ kind: z.literal('significant'), digits: z.number().int().min(1).max(FLOAT_DIGITS) }),
]);
export type PrecisionRule = z.infer<typeof PrecisionRule>;

export type PrecisionMode = 'tick_size' | 'decimal_places' | 'significant_digits';

/** ccxt's market.precision.{amount,price} under the exchange's precisionMode -> our rule (undefined: none). */
export function precisionRule(value: number | string | null | undefined, mode: PrecisionMode): PrecisionRule | undefined {
  if (value === null || value === undefined || value === '') return undefined;
  const n = Number(value);
  if (!Number.isFinite(n)) throw new RangeError(`precision '${value}' is not a number`);
  switch (mode) {
    case 'tick_size':
      if (n <= 0) throw new RangeError(`a tick size must be positive, got ${value}`);
      return { kind: 'step', step: toDecimalString(value) };
    case 'decimal_places':
      if (!Number.isInteger(n)) throw new RangeError(`decimal places must be an integer, got ${value}`);
      // Negative places round to tens, hundreds...: ccxt allows them.
      return { kind: 'step', step: toDecimalString(`1e${-n}`) };
    case 'significant_digits':
      if (!Number.isInteger(n) || n < 1) throw new RangeError(`significant digits must be a positive integer, got ${value}`);
      return { kind: 'significant', digits: Math.min(n, FLOAT_DIGITS) };
  }
}

export function applyPrecision(value: number, rule: PrecisionRule | undefined, mode: Rounding): number {
  if (!rule) return toFloatDigits(value);
  return Number(rule.kind === 'step' ? roundToStep(value, rule.step, mode) : roundToSignificant(value, rule.digits, mode));
}

const optionalLimit = z.number().nonnegative().optional();

/** What an exchange checks on every order of one market. Limits absent = not enforced. */
export const MarketRules = z.object({
  symbol: z.string().min(1),
  amountPrecision: PrecisionRule.optional(),
  pricePrecision: PrecisionRule.optional(),
  minAmount: optionalLimit,
  maxAmount: optionalLimit,
  minPrice: optionalLimit,
  maxPrice: optionalLimit,
  /** Minimum notional (amount * price) in the quote currency. */
  minCost: optionalLimit,
  maxCost: optionalLimit,
});
export type MarketRules = z.infer<typeof MarketRules>;

/** Amounts are truncated: rounding up could sell more than we hold or spend more than we budgeted. */
export function roundAmount(amount: number, rules: Pick<MarketRules, 'amountPrecision'>): number {
  return applyPrecision(amount, rules.amountPrecision, 'down');
}

export function roundPrice(price: number, rules: Pick<MarketRules, 'pricePrecision'>, mode: Rounding = 'nearest'): number {
  return applyPrecision(price, rules.pricePrecision, mode);
}

export type OrderRejectReason =
  | 'amount_not_positive'
  | 'amount_zero_after_rounding'
  | 'amount_below_min'
  | 'amount_above_max'
  | 'price_not_positive'
  | 'price_out_of_range'
  | 'cost_below_min'
  | 'cost_above_max';

export type OrderFit =
  | { ok: true; amount: number; price?: number; stopPrice?: number; cost?: number }
  | { ok: false; reason: OrderRejectReason; message: string };

export interface OrderToFit {
  amount: number;
  /** Limit price, rounded to the tick (nearest). */
  price?: number;
  /** Trigger price of a stop, rounded to the tick (nearest). */
  stopPrice?: number;
  /** Price used only to check the minimum notional of a market order (not sent). */
  referencePrice?: number;
}

/**
 * Rounds an order to the market and checks it against the market's limits, the way the exchange
 * would: amount truncated to the lot step, prices to the tick, then min/max amount, price range
 * and minimum notional. The notional uses the limit price, else the stop, else the reference
 * price; with none of them (a market order without a reference) it is not checked here.
 */
export function fitOrder(rules: MarketRules, order: OrderToFit): OrderFit {
  const sym = rules.symbol;
  const reject = (reason: OrderRejectReason, message: string): OrderFit => ({ ok: false, reason, message: `${sym}: ${message}` });
  if (!(order.amount > 0)) return reject('amount_not_positive', `amount ${order.amount} must be positive`);
  const amount = roundAmount(order.amount, rules);
  const lot = rules.amountPrecision?.kind === 'step' ? ` (lot step ${rules.amountPrecision.step})` : '';
  if (amount <= 0) return reject('amount_zero_after_rounding', `amount ${order.amount} rounds down to 0${lot}`);
  if (rules.minAmount !== undefined && amount < rules.minAmount) {
    return reject('amount_below_min', `amount ${amount} is below the market minimum ${rules.minAmount}`);
  }
  if (rules.maxAmount !== undefined && rules.maxAmount > 0 && amount > rules.maxAmount) {
    return reject('amount_above_max', `amount ${amount} is above the market maximum ${rules.maxAmount}`);
  }
  const out: { ok: true; amount: number; price?: number; stopPrice?: number; cost?: number } = { ok: true, amount };
  for (const key of ['price', 'stopPrice'] as const) {
    const p = order[key];
    if (p === undefined) continue;
    if (!(p > 0)) return reject('price_not_positive', `${key} ${p} must be positive`);
    const rounded = roundPrice(p, rules);
    if (!(rounded > 0)) return reject('price_not_positive', `${key} ${p} rounds to 0 at the market's price precision`);
    if (rules.minPrice !== undefined && rules.minPrice > 0 && rounded < rules.minPrice) {
      return reject('price_out_of_range', `${key} ${rounded} is below the market minimum price ${rules.minPrice}`);
    }
    if (rules.maxPrice !== undefined && rules.maxPrice > 0 && rounded > rules.maxPrice) {
      return reject('price_out_of_range', `${key} ${rounded} is above the market maximum price ${rules.maxPrice}`);
    }
    out[key] = rounded;
  }
  const notionalPrice = out.price ?? out.stopPrice ?? order.referencePrice;
  if (notionalPrice !== undefined && notionalPrice > 0) {
    const cost = decMul(amount, notionalPrice);
    out.cost = Number(cost);
    if (rules.minCost !== undefined && decCmp(cost, rules.minCost) < 0) {
      return reject('cost_below_min', `order value ${cost} (amount ${amount} x price ${notionalPrice}) is below the market minimum notional ${rules.minCost}`);
    }
    if (rules.maxCost !== undefined && rules.maxCost > 0 && decCmp(cost, rules.maxCost) > 0) {
      return reject('cost_above_max', `order value ${cost} is above the market maximum notional ${rules.maxCost}`);
    }
  }
  return out;
}

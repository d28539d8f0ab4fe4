import { z } from 'zod';

/**
 * Rounding to a market's precision and checking its minimums, decimal-safe.
 *
 * Exchanges reject an amount that is not a whole number of lot steps and a price that is not a
 * whole number of ticks, so every rounding here is done on integers (value and step scaled to
 * the same power of ten, as bigints), never by float division: 0.7 - 0.4 truncated to a 0.1 step
 * must give 0.3, not 0.2. Money that is added up (paper balances, fees) uses the same decimal
 * strings, so nothing accumulates binary artefacts. The paper exchange, the backtester and the
 * live adapter all call these functions, so an order the paper run accepts is one the exchange
 * would accept.
 */

// ---------------------------------------------------------------------------------------------
// Decimal strings

/** A plain decimal number written as text: '0.001', '-12.5', '100'. */
export const DecimalString = z.string().regex(/^-?\d+(\.\d+)?$/, 'a plain decimal number such as 0.001');
export type DecimalString = z.infer<typeof DecimalString>;

interface Dec {
  m: bigint; // value = m * 10^-s
  s: number;
}

const DEC_RE = /^([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/;

/**
 * Binary floats carry noise in their 16th-17th significant digit (0.7 - 0.4 = 0.29999999999999993).
 * No exchange quotes a price or amount with more than 15 significant digits, so a number is read
 * at 15 significant digits: the noise goes, every real value stays exact.
 */
const FLOAT_DIGITS = 15;

function parseDec(x: number | string): Dec {
  let text: string;
  if (typeof x === 'number') {
    if (!Number.isFinite(x)) throw new RangeError(`not a finite number: ${x}`);
    text = x === 0 ? '0' : x.toPrecision(FLOAT_DIGITS);
  } else {
    text = x.trim();
  }
  const m = DEC_RE.exec(text);
  if (!m || (m[2] === '' && (m[3] ?? '') === '')) throw new RangeError(`not a decimal number: '${x}'`);
  const [, sign, int, frac = '', exp = '0'] = m;
  let mant = BigInt((int || '0') + frac);
  let scale = frac.length - Number(exp);
  if (scale < 0) {
    mant *= 10n ** BigInt(-scale);
    scale = 0;
  }
  return normalize({ m: sign === '-' ? -mant : mant, s: scale });
}

function normalize(d: Dec): Dec {
  let { m, s } = d;
  while (s > 0 && m % 10n === 0n) {
    m /= 10n;
    s--;
  }
  return { m, s };
}

function rescale(d: Dec, s: number): bigint {
  return d.m * 10n ** BigInt(s - d.s);
}

function fmt(d: Dec): string {
  const n = normalize(d);
  const neg = n.m < 0n;
  const digits = (neg ? -n.m : n.m).toString();
  if (n.s === 0) return (neg ? '-' : '') + digits;
  const padded = digits.padStart(n.s + 1, '0');
  return `${neg ? '-' : ''}${padded.slice(0, -n.s)}.${padded.slice(-n.s)}`;
}

/** Any finite number or decimal text (exponents allowed) as plain decimal text: 1e-8 -> '0.00000001'. */
export function toDecimalString(x: number | string): string {
  return fmt(parseDec(x));
}

export function decAdd(a: number | string, b: number | string): string {
  const x = parseDec(a);
  const y = parseDec(b);
  const s = Math.max(x.s, y.s);
  return fmt({ m: rescale(x, s) + rescale(y, s), s });
}

export function decSub(a: number | string, b: number | string): string {
  const x = parseDec(a);
  const y = parseDec(b);
  const s = Math.max(x.s, y.s);
  return fmt({ m: rescale(x, s) - rescale(y, s), s });
}

export function decMul(a: number | string, b: number | string): string {
  const x = parseDec(a);
  const y = parseDec(b);
  return fmt({ m: x.m * y.m, s: x.s + y.s });
}

/** -1, 0 or 1 as a < b, a = b, a > b. */
export function decCmp(a: number | string, b: number | string): -1 | 0 | 1 {
  const x = parseDec(a);
  const y = parseDec(b);
  const s = Math.max(x.s, y.s);
  const d = rescale(x, s) - rescale(y, s);
  return d < 0n ? -1 : d > 0n ? 1 : 0;
}

/** Rounds a decimal to at most `places` decimal places (half away from zero). */
export function decRound(a: number | string, places: number): string {
  return roundToStep(a, places >= 0 ? fmt({ m: 1n, s: places }) : '1' + '0'.repeat(-places), 'nearest');
}

// ---------------------------------------------------------------------------------------------
// Rounding

/** Rounding direction by magnitude: 'down' toward zero, 'up' away from zero, 'nearest' half away from zero. */
export type Rounding = 'down' | 'up' | 'nearest';

function divRound(num: bigint, den: bigint, mode: Rounding): bigint {
  const neg = num < 0n !== den < 0n;
  const n = num < 0n ? -num : num;
  const d = den < 0n ? -den : den;
  let q = n / d;
  const r = n % d;
  if (r !== 0n && (mode === 'up' || (mode === 'nearest' && 2n * r >= d))) q += 1n;
  return neg ? -q : q;
}

/** `value` as a whole number of `step`s, e.g. (0.123456, '0.001', 'down') -> '0.123'. */
export function roundToStep(value: number | string, step: string, mode: Rounding): string {
  const v = parseDec(value);
  const st = parseDec(step);
  if (st.m <= 0n) throw new RangeError(`a precision step must be positive, got '${step}'`);
  const s = Math.max(v.s, st.s);
  const ticks = divRound(rescale(v, s), rescale(st, s), mode);
  return fmt({ m: ticks * rescale(st, s), s });
}

/** `value` with at most `digits` significant digits. */
export function roundToSignificant(value: number | string, digits: number, mode: Rounding): string {
  const v = parseDec(value);
  if (v.m === 0n) return '0';
  const len = (v.m < 0n ? -v.m : v.m).toString().length;
  const drop = len - digits;
  if (drop <= 0) return fmt(v);
  const unit = 10n ** BigInt(drop);
  return fmt({ m: divRound(v.m, unit, mode) * unit, s: v.s });
}

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
      return { kind: 'step', step: n >= 0 ? fmt({ m: 1n, s: n }) : '1' + '0'.repeat(-n) };
    case 'significant_digits':
      if (!Number.isInteger(n) || n < 1) throw new RangeError(`significant digits must be a positive integer, got ${value}`);
      return { kind: 'significant', digits: Math.min(n, FLOAT_DIGITS) };
  }
}

/** The step of a rule as a number (0 when there is no fixed step), e.g. for sizing maths. */
export function stepOf(rule: PrecisionRule | undefined): number {
  return rule?.kind === 'step' ? Number(rule.step) : 0;
}

export function applyPrecision(value: number, rule: PrecisionRule | undefined, mode: Rounding): number {
  if (!rule) return Number(toDecimalString(value));
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

import Big from 'big.js';
import { z } from 'zod';

/**
 * Exact decimal arithmetic on decimal text, the one representation of money and quantities that
 * the ledger, the paper exchange and the market-precision code share. Values go in as decimal
 * text or JS numbers and come out as canonical text: plain notation, no trailing fractional
 * zeros, no "-0" (what PostgreSQL's trim_scale gives), so two equal amounts are equal strings.
 *
 * The arithmetic is big.js: addition, subtraction and multiplication are exact at any size, and
 * division is rounded at a stated number of places by a stated mode, which is exactly the
 * ledger's `div(a * 1e18, b) * 1e-18`.
 */

/** Plain decimal text as the ledger stores it: '0.001', '-12.5', '100' (no exponent, no sign '+'). */
const PLAIN_DECIMAL = /^-?\d+(\.\d+)?$/;

export function isDecimalString(s: string): boolean {
  return PLAIN_DECIMAL.test(s);
}

export const DecimalString = z.string().regex(PLAIN_DECIMAL, 'a plain decimal number such as 0.001');
export type DecimalString = z.infer<typeof DecimalString>;

/** A JS number, or decimal text: PostgreSQL's numeric text ('64123.500'), or with an exponent as ccxt may give it ('2.5e-3'). */
export type DecimalInput = number | string;

/**
 * Binary floats carry noise in their 16th-17th significant digit (0.7 - 0.4 = 0.29999999999999993).
 * No exchange quotes a price or amount with more than 15 significant digits, so a JS number is
 * read at 15 significant digits: the noise goes, every real value stays exact.
 */
export const FLOAT_DIGITS = 15;

/** Decimal places kept by the ledger's divisions (average prices); its SQL uses the same. */
export const DIV_SCALE = 18;

function read(x: DecimalInput): Big {
  if (typeof x === 'number') {
    if (!Number.isFinite(x)) throw new RangeError(`not a finite number: ${x}`);
    // The shortest text of a number (String) is its 15-digit reading whenever it has at most 15
    // digits, which a string of at most 15 characters has; only longer ones (float noise, or
    // real 16-17 digit values) pay for toPrecision. Most prices and amounts are short.
    const shortest = String(x);
    return new Big(shortest.length <= FLOAT_DIGITS ? shortest : x.toPrecision(FLOAT_DIGITS));
  }
  try {
    return new Big(x.trim());
  } catch {
    // big.js says only "[big.js] Invalid number"; the caller needs to know which.
    throw new RangeError(`not a decimal number: ${JSON.stringify(x)}`);
  }
}

const text = (x: Big): string => x.toFixed();

export function toDecimalString(x: DecimalInput): string {
  return text(read(x));
}

/**
 * Number(toDecimalString(x)): `x` read at FLOAT_DIGITS significant digits, back as a number,
 * without big.js when it is already that number. A number whose shortest text (String) has at
 * most FLOAT_DIGITS characters is read as that text, and any text of the same decimal value
 * converts back to the same number; -0 reads as 0. Only longer ones go through big.js.
 */
export function toFloatDigits(x: number): number {
  if (typeof x === 'number' && Number.isFinite(x) && String(x).length <= FLOAT_DIGITS) return x === 0 ? 0 : x;
  return Number(toDecimalString(x));
}

export function decAdd(a: DecimalInput, b: DecimalInput): string {
  return text(read(a).plus(read(b)));
}

export function decSub(a: DecimalInput, b: DecimalInput): string {
  return text(read(a).minus(read(b)));
}

export function decMul(a: DecimalInput, b: DecimalInput): string {
  return text(read(a).times(read(b)));
}

/** -1, 0 or 1 as a < b, a = b, a > b. */
export function decCmp(a: DecimalInput, b: DecimalInput): -1 | 0 | 1 {
  return read(a).cmp(read(b));
}

export function decMin(a: DecimalInput, b: DecimalInput): string {
  const x = read(a);
  const y = read(b);
  return text(x.lte(y) ? x : y);
}

export function decNeg(a: DecimalInput): string {
  return text(read(a).neg());
}

export function decIsZero(a: DecimalInput): boolean {
  return read(a).eq(0);
}

/** Rounding direction by magnitude: 'down' toward zero, 'up' away from zero, 'nearest' half away from zero. */
export type Rounding = 'down' | 'up' | 'nearest';

const BIG_ROUNDING: Record<Rounding, Big.RoundingMode> = { down: Big.roundDown, up: Big.roundUp, nearest: Big.roundHalfUp };

// big.js takes a division's places and rounding mode from the constructor of the dividend, not
// from an argument: one configured constructor per (places, mode), made on first use.
const dividers: Big.BigConstructor[] = [];

function divide(a: Big, b: Big, places: number, mode: Rounding): Big {
  if (b.eq(0)) throw new RangeError(`division by zero: ${text(a)} / 0`);
  const rm = BIG_ROUNDING[mode];
  const slot = places * 4 + rm;
  let Divider = dividers[slot];
  if (!Divider) {
    Divider = Big();
    Divider.DP = places;
    Divider.RM = rm;
    dividers[slot] = Divider;
  }
  return new Divider(a).div(b);
}

/** a / b truncated toward zero at `places` decimals: PostgreSQL's `div(a * 10^places, b) * 10^-places`. */
export function decDivTrunc(a: DecimalInput, b: DecimalInput, places = DIV_SCALE): string {
  return text(divide(read(a), read(b), places, 'down'));
}

/**
 * `value` as a whole number of `step`s, e.g. (0.123456, '0.001', 'down') -> '0.123'. The count of
 * steps is an exact decimal division rounded once, never a float division: 0.7 - 0.4 truncated to a
 * 0.1 step is 0.3, not 0.2.
 */
export function roundToStep(value: DecimalInput, step: DecimalInput, mode: Rounding): string {
  const st = read(step);
  if (st.lte(0)) throw new RangeError(`a precision step must be positive, got '${step}'`);
  // Most venues' steps are powers of ten (0.01, 0.00001, 10): rounding at -exponent places is the
  // same and much cheaper than big.js's digit-by-digit division. (c and e are big.js's documented
  // coefficient digits and exponent.)
  if (st.c.length === 1 && st.c[0] === 1) return text(read(value).round(-st.e, BIG_ROUNDING[mode]));
  return text(divide(read(value), st, 0, mode).times(st));
}

/** `value` with at most `digits` significant digits. */
export function roundToSignificant(value: DecimalInput, digits: number, mode: Rounding): string {
  if (!Number.isInteger(digits) || digits < 1) throw new RangeError(`significant digits must be a positive integer, got ${digits}`);
  return text(read(value).prec(digits, BIG_ROUNDING[mode]));
}

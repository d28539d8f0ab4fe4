/**
 * Exact decimal arithmetic on the ledger's decimal strings, with BigInt: just what
 * rebuilding positions from fills needs (add, subtract, multiply, compare, and division
 * truncated at a fixed scale). Division mirrors the SQL the ledger runs,
 * `div(a * 1e18, b) * 1e-18`, so a rebuild and the stored positions agree to the last digit.
 * Not a general money library; if the project needs one, decimal.js is the candidate.
 */

export interface Dec {
  /** value = units / 10^scale */
  units: bigint;
  scale: number;
}

/** Decimal places kept by every division (average prices): PostgreSQL's side uses the same. */
export const DIV_SCALE = 18;

const DECIMAL_RE = /^(-)?(\d+)(?:\.(\d+))?$/;

export function isDecimalString(s: string): boolean {
  return DECIMAL_RE.test(s);
}

export function dec(s: string | Dec): Dec {
  if (typeof s !== 'string') return s;
  const m = DECIMAL_RE.exec(s.trim());
  if (!m) throw new Error(`not a decimal string: ${JSON.stringify(s)}`);
  const frac = m[3] ?? '';
  const units = BigInt(m[2] + frac);
  return { units: m[1] ? -units : units, scale: frac.length };
}

const pow10 = (n: number): bigint => 10n ** BigInt(n);

function align(a: Dec, b: Dec): [bigint, bigint, number] {
  const scale = Math.max(a.scale, b.scale);
  return [a.units * pow10(scale - a.scale), b.units * pow10(scale - b.scale), scale];
}

export function add(a: string | Dec, b: string | Dec): Dec {
  const [x, y, scale] = align(dec(a), dec(b));
  return { units: x + y, scale };
}

export function sub(a: string | Dec, b: string | Dec): Dec {
  const [x, y, scale] = align(dec(a), dec(b));
  return { units: x - y, scale };
}

export function mul(a: string | Dec, b: string | Dec): Dec {
  const x = dec(a);
  const y = dec(b);
  return { units: x.units * y.units, scale: x.scale + y.scale };
}

/** a / b truncated toward zero at `scale` places (PostgreSQL's div() semantics). */
export function divTrunc(a: string | Dec, b: string | Dec, scale = DIV_SCALE): Dec {
  const x = dec(a);
  const y = dec(b);
  if (y.units === 0n) throw new Error('division by zero');
  // (x.units / 10^xs) / (y.units / 10^ys) * 10^scale = x.units * 10^(ys + scale) / (y.units * 10^xs)
  return { units: (x.units * pow10(y.scale + scale)) / (y.units * pow10(x.scale)), scale };
}

export function cmp(a: string | Dec, b: string | Dec): -1 | 0 | 1 {
  const [x, y] = align(dec(a), dec(b));
  return x < y ? -1 : x > y ? 1 : 0;
}

export function min(a: string | Dec, b: string | Dec): Dec {
  return cmp(a, b) <= 0 ? dec(a) : dec(b);
}

export function neg(a: string | Dec): Dec {
  const x = dec(a);
  return { units: -x.units, scale: x.scale };
}

export function isZero(a: string | Dec): boolean {
  return dec(a).units === 0n;
}

/** Canonical text: no trailing fractional zeros, no "-0" (like PostgreSQL's trim_scale). */
export function str(a: string | Dec): string {
  const x = dec(a);
  let units = x.units;
  let scale = x.scale;
  while (scale > 0 && units % 10n === 0n) {
    units /= 10n;
    scale--;
  }
  const negative = units < 0n;
  const digits = (negative ? -units : units).toString().padStart(scale + 1, '0');
  const text = scale === 0 ? digits : `${digits.slice(0, -scale)}.${digits.slice(-scale)}`;
  return negative ? `-${text}` : text;
}

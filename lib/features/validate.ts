import type { Candle } from '../candles';

/** A candle the feature maths cannot take: it would poison every average after it. */
export class InvalidCandleError extends Error {
  override name = 'InvalidCandleError';
  constructor(message: string, readonly timestamp: number, readonly index?: number) {
    super(message);
  }
}

/**
 * Why `c` cannot feed the features after a candle opened at `prevTimestamp`, or undefined.
 * Only what would break the maths is refused (NaN, price <= 0, negative volume, time not
 * strictly increasing); an inverted high/low stays computable and is candle-hygiene's to flag.
 */
export function candleRejection(c: Candle, prevTimestamp: number): string | undefined {
  if (!Number.isSafeInteger(c.timestamp)) return `open time ${c.timestamp} is not an integer of epoch ms`;
  if (c.timestamp <= prevTimestamp) return `open time ${c.timestamp} is not after the previous candle's ${prevTimestamp} (sort and de-duplicate with checkCandles first)`;
  if (!(Number.isFinite(c.open) && Number.isFinite(c.high) && Number.isFinite(c.low) && Number.isFinite(c.close) && Number.isFinite(c.volume))) {
    return `non-finite value (o=${c.open} h=${c.high} l=${c.low} c=${c.close} v=${c.volume})`;
  }
  if (!(c.open > 0 && c.high > 0 && c.low > 0 && c.close > 0)) return `price <= 0 (o=${c.open} h=${c.high} l=${c.low} c=${c.close})`;
  if (c.volume < 0) return `negative volume ${c.volume}`;
  return undefined;
}

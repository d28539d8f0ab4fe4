import type { Candle } from '../candles';
import { FeatureKernel } from './kernel';
import { FEATURE_SCHEMA, type FeatureSchema } from './schema';
import { candleRejection, InvalidCandleError } from './validate';

/** Features for a whole series (backtests, training): one row per candle after warm-up. */
export interface FeatureMatrix {
  schema: FeatureSchema;
  /** Open time of the candle each row describes. */
  timestamps: Float64Array;
  /** Row-major, `rowCount * width` values; row k describes `candles[warmup + k]`. */
  values: Float64Array;
  rowCount: number;
  width: number;
  warmup: number;
}

/**
 * Runs the same kernel as the stream over `candles` (sorted, de-duplicated, closed: pass them
 * through checkCandles first). Throws InvalidCandleError naming the index of a candle the
 * maths cannot take, rather than returning NaN rows.
 */
export function computeFeatureMatrix(candles: readonly Candle[]): FeatureMatrix {
  const { width, warmup } = FEATURE_SCHEMA;
  const rowCount = Math.max(0, candles.length - warmup);
  const values = new Float64Array(rowCount * width);
  const timestamps = new Float64Array(rowCount);
  const kernel = new FeatureKernel();
  let last = -Infinity;
  for (let i = 0; i < candles.length; i++) {
    const c = candles[i];
    const why = candleRejection(c, last);
    if (why) throw new InvalidCandleError(`candle #${i} (${c.timestamp}): ${why}`, c.timestamp, i);
    last = c.timestamp;
    const row = i - warmup;
    if (kernel.update(c.high, c.low, c.close, c.volume, values, row * width)) timestamps[row] = c.timestamp;
  }
  return { schema: FEATURE_SCHEMA, timestamps, values, rowCount, width, warmup };
}

/** Row k as a view into the matrix (no copy). */
export function featureRow(matrix: FeatureMatrix, k: number): Float64Array {
  if (!(Number.isInteger(k) && k >= 0 && k < matrix.rowCount)) throw new RangeError(`row ${k} out of range 0..${matrix.rowCount - 1}`);
  return matrix.values.subarray(k * matrix.width, (k + 1) * matrix.width);
}

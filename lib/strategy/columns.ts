/**
 * Helpers for a strategy's `indicators()` columns (one value per candle, oldest first).
 */

/**
 * technicalindicators (and most indicator libraries) return values only once their window is
 * full, so their output is shorter than the candles: this puts it at the end of a column of
 * `length` values with NaN in front (decide() reads NaN as "not yet").
 */
export function alignEnd(values: readonly number[], length: number): Float64Array {
  const out = new Float64Array(length).fill(NaN);
  out.set(values.length > length ? values.slice(values.length - length) : values, Math.max(0, length - values.length));
  return out;
}

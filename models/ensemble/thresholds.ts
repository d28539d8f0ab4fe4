import { quantileSorted } from '../../lib/backtest/percentile';

/**
 * The ensemble's entry and exit thresholds, fitted to the model rather than fixed.
 *
 * Why: calibrated probabilities sit around the label's base rate. With labels "the next H candles
 * beat a round trip of fees" the base rate is ~0.3 on hourly crypto, so a fixed "enter at
 * P(up) >= 0.55" almost never fires (the bootstrap model made 2 trades in ten weeks), and whatever
 * fires says nothing about whether it pays.
 *
 * How, on the validation rows (after calibration; never the held-out test rows): for each
 * candidate threshold t, the validation quantiles of P(up) from the 50th to the 90th percentile,
 * the expected value of entering at t is the mean, over rows with P(up) >= t, of the forward log
 * return net of the round-trip cost (fees, plus slippage when given). The entry threshold is the
 * candidate with the highest expected value; ties go to the lower threshold (more trades). The
 * candidates keep 10 % to 50 % of the rows, so the model trades often enough to be measured, and
 * the chosen expected value is recorded as it is, negative included: a model without an edge on
 * its validation data says so in its manifest instead of going quiet.
 *
 * The exit threshold is the validation median of P(up): a position is left once the model sees
 * no better than an ordinary chance. When the entry threshold is the median itself, the exit is
 * the 40th percentile, so a position cannot flap in and out on the same value.
 */
// A type, not an interface: it is stored in the manifest, whose schema is an open record.
export type EntryThresholds = {
  method: 'validation_expected_value';
  enterProb: number;
  exitProb: number;
  /** Share of positive labels on the validation rows. */
  baseRate: number;
  /** Round-trip cost subtracted from each forward log return. */
  costLogReturn: number;
  /** At the chosen entry threshold, on the validation rows. */
  validation: { rows: number; coverage: number; hitRate: number; meanNetLogReturn: number };
  candidates: Array<{ quantile: number; threshold: number; coverage: number; meanNetLogReturn: number }>;
};

export const THRESHOLD_QUANTILES = [0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9] as const;

export function fitEntryThresholds(probUp: ArrayLike<number>, labels: ArrayLike<number>, forwardLogReturn: ArrayLike<number>, costLogReturn: number): EntryThresholds {
  const n = probUp.length;
  if (n < 20 || labels.length !== n || forwardLogReturn.length !== n) throw new RangeError(`thresholds need at least 20 validation rows with labels and forward returns (got ${n}, ${labels.length}, ${forwardLogReturn.length})`);
  if (!(costLogReturn >= 0)) throw new RangeError(`cost must be >= 0, got ${costLogReturn}`);
  const sorted = Float64Array.from(probUp).sort();
  let positives = 0;
  for (let i = 0; i < n; i++) positives += labels[i] ? 1 : 0;
  const candidates = THRESHOLD_QUANTILES.map((quantile) => {
    const threshold = quantileSorted(sorted, quantile);
    let count = 0;
    let net = 0;
    for (let i = 0; i < n; i++) {
      if (probUp[i] < threshold) continue;
      count++;
      net += forwardLogReturn[i] - costLogReturn;
    }
    return { quantile, threshold, coverage: count / n, meanNetLogReturn: count > 0 ? net / count : -Infinity };
  });
  let best = candidates[0];
  for (const c of candidates) if (c.meanNetLogReturn > best.meanNetLogReturn) best = c;
  const median = candidates[0].threshold;
  const exitProb = best.threshold > median ? median : quantileSorted(sorted, 0.4);
  let hits = 0;
  let count = 0;
  for (let i = 0; i < n; i++) {
    if (probUp[i] < best.threshold) continue;
    count++;
    hits += labels[i] ? 1 : 0;
  }
  // A degenerate model (every probability equal) has no usable gap: keep the pair ordered.
  const enterProb = exitProb < best.threshold ? best.threshold : Math.min(0.999, exitProb + 1e-6);
  return {
    method: 'validation_expected_value',
    enterProb,
    exitProb,
    baseRate: positives / n,
    costLogReturn,
    validation: { rows: n, coverage: best.coverage, hitRate: count > 0 ? hits / count : 0, meanNetLogReturn: best.meanNetLogReturn },
    candidates,
  };
}

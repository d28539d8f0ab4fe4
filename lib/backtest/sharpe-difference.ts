import { quantileSorted } from './percentile';
import { sharpeRatio } from './metrics';
import { Prng } from '../random';

/**
 * Is strategy A's Sharpe ratio really above B's over the same bars? A paired circular block
 * bootstrap of the two per-bar return series: blocks of consecutive bars (the same bars for A and
 * B, so their correlation is kept; consecutive, so volatility clusters and the autocorrelation a
 * position creates are kept) are drawn with replacement until the series is full, and
 * Sharpe(A) - Sharpe(B) is computed on each resample. The interval is the 2.5th to 97.5th
 * percentile of those differences (a 95 % percentile interval); it excludes 0 when the
 * difference is significant at about the 5 % level.
 *
 * Block length: n^(1/3) bars by default (the rate that minimises the error of a block bootstrap's
 * variance estimate; Hall, Horowitz & Jing 1995). Seeded (lib/random). A curve that never moves (a strategy that did
 * not trade) has no Sharpe ratio; here it counts as 0, so "never traded" compares as "earned
 * nothing per unit of risk".
 */

export interface SharpeDifference {
  /** Sharpe(A) - Sharpe(B) on the bars as they were. */
  observed: number;
  low: number;
  high: number;
  /** Share of resamples where A's Sharpe was not above B's. */
  probabilityNotBetter: number;
  runs: number;
  blockLength: number;
  bars: number;
}

const sharpeOrZero = (r: ArrayLike<number>, ppy: number) => sharpeRatio(r, ppy) ?? 0;

export function sharpeDifference(
  a: ArrayLike<number>,
  b: ArrayLike<number>,
  opts: { periodsPerYear: number; runs: number; seed: number; blockLength?: number },
): SharpeDifference | null {
  const n = a.length;
  if (b.length !== n) throw new RangeError(`paired series differ in length: ${n} and ${b.length}`);
  if (!(Number.isInteger(opts.runs) && opts.runs >= 1)) throw new RangeError(`runs must be a positive integer, got ${opts.runs}`);
  if (n < 3) return null;
  const block = Math.max(1, Math.min(n, opts.blockLength ?? Math.round(Math.cbrt(n))));
  const ppy = opts.periodsPerYear;
  const ra = new Float64Array(n);
  const rb = new Float64Array(n);
  const diffs = new Float64Array(opts.runs);
  const random = new Prng(opts.seed);
  let notBetter = 0;
  for (let r = 0; r < opts.runs; r++) {
    for (let i = 0; i < n; ) {
      const start = Math.floor(random.next() * n);
      for (let k = 0; k < block && i < n; k++, i++) {
        const j = (start + k) % n;
        ra[i] = a[j];
        rb[i] = b[j];
      }
    }
    const d = sharpeOrZero(ra, ppy) - sharpeOrZero(rb, ppy);
    diffs[r] = d;
    if (!(d > 0)) notBetter++;
  }
  diffs.sort();
  return {
    observed: sharpeOrZero(a, ppy) - sharpeOrZero(b, ppy),
    low: quantileSorted(diffs, 0.025),
    high: quantileSorted(diffs, 0.975),
    probabilityNotBetter: notBetter / opts.runs,
    runs: opts.runs,
    blockLength: block,
    bars: n,
  };
}

import { sharpeRatio } from '../backtest/metrics';
import { quantiles } from '../backtest/percentile';

/**
 * The hyperopt's overfitting guard: how likely is it that the best of many backtested parameter
 * sets owes its figures to the search rather than to an edge? Two answers from the literature,
 * written here from the papers' formulas. Pure: no I/O, no clock, no randomness.
 *
 * Conventions (stated once, here):
 * - returns are simple per-period returns; risk-free rate 0;
 * - every Sharpe ratio in this file is PER PERIOD (mean / sample standard deviation, n - 1),
 *   not annualized, as the papers' formulas need; `overfittingReport` adds annualized copies
 *   (x sqrt(periodsPerYear)) for reading only;
 * - a series with no variance (a trial that never traded) has Sharpe 0, as in
 *   lib/backtest/sharpe-difference.ts ("never traded" compares as "earned nothing");
 * - skewness γ3 = m3 / m2^1.5 and kurtosis γ4 = m4 / m2^2 (NOT excess: a normal has 3), from
 *   the sample's central moments m_k = mean((x - mean)^k) (the papers' plain moments);
 * - undefined figures are null, never NaN or Infinity, so the JSON stays valid.
 *
 * 1. Probabilistic Sharpe Ratio (Bailey & López de Prado, 2012, "The Sharpe Ratio Efficient
 *    Frontier", Journal of Risk 15(2)): the probability that the true Sharpe ratio exceeds a
 *    benchmark SR*, given the observed SR over T observations with skewness γ3 and kurtosis γ4:
 *
 *      PSR(SR*) = Φ( (SR - SR*) sqrt(T - 1) / sqrt(1 - γ3 SR + (γ4 - 1)/4 SR^2) )
 *
 *    The radicand is never negative: γ4 >= 1 + γ3^2 for any distribution (the sample's own
 *    included), so it is >= (1 - γ3 SR / 2)^2. It is 0 only for a two-point distribution at one
 *    SR, which is reported as an error.
 *
 * 2. Deflated Sharpe Ratio (Bailey & López de Prado, 2014, "The Deflated Sharpe Ratio:
 *    Correcting for Selection Bias, Backtest Overfitting and Non-Normality", Journal of
 *    Portfolio Management 40(5)): the PSR of the selected trial against the Sharpe ratio the
 *    best of N zero-skill trials is expected to show,
 *
 *      SR0 = E[max SR] = sqrt(V) ((1 - γ) Φ^-1(1 - 1/N) + γ Φ^-1(1 - 1/(N e))),   DSR = PSR(SR0)
 *
 *    with V the variance of the N trials' Sharpe ratios (sample variance, n - 1) and γ the
 *    Euler-Mascheroni constant. N = 1 (no selection) gives SR0 = 0. A DSR of 0.95 is the usual
 *    bar (the issue's `--apply` refuses below it).
 *
 * 3. Probability of Backtest Overfitting by combinatorially symmetric cross-validation (Bailey,
 *    Borwein, López de Prado & Zhu, 2017, "The Probability of Backtest Overfitting", Journal of
 *    Computational Finance 20(4)). Given a T x N matrix of per-period returns (T periods, N
 *    trials): split the rows into S contiguous groups of equal size (S even; the T mod S
 *    EARLIEST rows are left out so the groups are equal, as the paper's submatrices are); for
 *    each of the C(S, S/2) ways to take S/2 groups as in-sample (IS, rows kept in time order)
 *    and the rest as out-of-sample (OOS):
 *      - n* = the trial with the best IS performance (Sharpe by default; ties: the lowest index);
 *      - r̄ = its rank among the N trials' OOS performances (1 = worst, N = best; ties get the
 *        mid-rank), ω̄ = r̄ / (N + 1), logit λ = ln(ω̄ / (1 - ω̄));
 *    PBO = the share of combinations with λ <= 0 (the IS winner is not above the OOS median; a
 *    tie at the median counts as overfit: choosing bought nothing). Also returned: the λ of
 *    every combination, the performance degradation (the least-squares line of OOS on IS
 *    performance of n* over the combinations, and its points), and the probability of loss
 *    (the share of combinations where n*'s OOS performance is below 0).
 *
 * The normal CDF Φ is Marsaglia's Taylor series (G. Marsaglia, 2004, "Evaluating the Normal
 * Distribution", Journal of Statistical Software 11(4)) for |x| <= 3 and Laplace's continued
 * fraction for the tails beyond, evaluated in the tail itself so small probabilities keep their
 * relative accuracy: about 1e-15 absolute, 1e-13 relative in the tails (checked against
 * reference values in the test). The inverse Φ^-1 is P. J. Acklam's rational approximation
 * (relative error below 1.15e-9 over (0, 1)) refined by one Halley step against that CDF, which
 * brings it to about 1e-15 relative; the upper half is computed by symmetry from the lower, so
 * Φ^-1(1 - 1/N) is -Φ^-1(1/N) with no rounding of 1 - 1/N.
 */

/** Euler-Mascheroni constant γ. */
export const EULER_GAMMA = 0.5772156649015329;

const LN_SQRT_2PI = 0.9189385332046728; // ln(sqrt(2π))
const SQRT_2PI = 2.5066282746310002;

// ---------------------------------------------------------------------------------------------
// The normal distribution
// ---------------------------------------------------------------------------------------------

/** Standard normal density φ(x). */
export function normalPdf(x: number): number {
  return Math.exp(-0.5 * x * x - LN_SQRT_2PI);
}

/** Upper tail Q(x) = 1 - Φ(x) for x > 0 by Laplace's continued fraction φ(x) / (x + 1/(x + 2/(x + 3/(x + ...)))). */
function upperTailContinuedFraction(x: number): number {
  // Evaluated from the deepest level up; at x >= 3 a depth of 120 converges to machine precision.
  let t = x;
  for (let k = 120; k >= 1; k--) t = x + k / t;
  return normalPdf(x) / t;
}

/** Standard normal CDF Φ(x). */
export function normalCdf(x: number): number {
  if (Number.isNaN(x)) return NaN;
  if (x === Infinity) return 1;
  if (x === -Infinity) return 0;
  if (x < -3) return upperTailContinuedFraction(-x);
  if (x > 3) return 1 - upperTailContinuedFraction(x);
  // Marsaglia: Φ(x) = 1/2 + φ(x) (x + x^3/3 + x^5/(3·5) + ...), summed until it stops changing.
  let sum = x;
  let term = x;
  const q = x * x;
  for (let i = 3; ; i += 2) {
    term *= q / i;
    const next = sum + term;
    if (next === sum) break;
    sum = next;
  }
  return 0.5 + sum * normalPdf(x);
}

// Acklam's coefficients: central region, then tails.
const A = [-3.969683028665376e1, 2.209460984245205e2, -2.759285104469687e2, 1.38357751867269e2, -3.066479806614716e1, 2.506628277459239];
const B = [-5.447609879822406e1, 1.615858368580409e2, -1.556989798598866e2, 6.680131188771972e1, -1.328068155288572e1];
const C = [-7.784894002430293e-3, -3.223964580411365e-1, -2.400758277161838, -2.549732539343734, 4.374664141464968, 2.938163982698783];
const D = [7.784695709041462e-3, 3.224671290700398e-1, 2.445134137142996, 3.754408661907416];
const P_LOW = 0.02425;

/** Φ^-1(p) for 0 < p <= 0.5: Acklam's approximation plus one Halley step. */
function lowerQuantile(p: number): number {
  let x: number;
  if (p < P_LOW) {
    const q = Math.sqrt(-2 * Math.log(p));
    x = (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5]) / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1);
  } else {
    const q = p - 0.5;
    const r = q * q;
    x = ((((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q) / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1);
  }
  // Halley: the error in Φ, divided by the density, with the second-order correction.
  const e = normalCdf(x) - p;
  const u = e * SQRT_2PI * Math.exp(0.5 * x * x);
  return x - u / (1 + 0.5 * x * u);
}

/** Standard normal quantile Φ^-1(p), p in [0, 1] (0 and 1 give -Infinity and Infinity). */
export function normalQuantile(p: number): number {
  if (!(p >= 0 && p <= 1)) throw new RangeError(`a probability must be in [0, 1], got ${p}`);
  if (p === 0) return -Infinity;
  if (p === 1) return Infinity;
  if (p === 0.5) return 0;
  return p < 0.5 ? lowerQuantile(p) : -lowerQuantile(1 - p); // 1 - p is exact for p >= 0.5
}

// ---------------------------------------------------------------------------------------------
// Moments and Sharpe ratios
// ---------------------------------------------------------------------------------------------

export interface ReturnMoments {
  observations: number;
  mean: number;
  /** Sample standard deviation (n - 1). */
  sd: number;
  /** Per-period Sharpe ratio mean / sd; 0 when the series has no variance. */
  sharpe: number;
  /** γ3 = m3 / m2^1.5; 0 when the series has no variance. */
  skewness: number;
  /** γ4 = m4 / m2^2, NOT excess (normal = 3); 3 when the series has no variance. */
  kurtosis: number;
}

function assertFinite(xs: ArrayLike<number>, what: string): void {
  for (let i = 0; i < xs.length; i++) if (!Number.isFinite(xs[i])) throw new RangeError(`${what}: entry ${i} is not a finite number (${xs[i]})`);
}

/** Mean, sample sd, per-period Sharpe, skewness and (non-excess) kurtosis of a return series (at least 2 entries). */
export function returnMoments(returns: ArrayLike<number>): ReturnMoments {
  const n = returns.length;
  if (n < 2) throw new RangeError(`moments need at least 2 returns, got ${n}`);
  assertFinite(returns, 'returns');
  let sum = 0;
  for (let i = 0; i < n; i++) sum += returns[i];
  const mean = sum / n;
  let m2 = 0;
  let m3 = 0;
  let m4 = 0;
  for (let i = 0; i < n; i++) {
    const d = returns[i] - mean;
    const d2 = d * d;
    m2 += d2;
    m3 += d2 * d;
    m4 += d2 * d2;
  }
  const sd = Math.sqrt(m2 / (n - 1));
  m2 /= n;
  m3 /= n;
  m4 /= n;
  if (!(m2 > 0)) return { observations: n, mean, sd: 0, sharpe: 0, skewness: 0, kurtosis: 3 };
  return { observations: n, mean, sd, sharpe: mean / sd, skewness: m3 / m2 ** 1.5, kurtosis: m4 / (m2 * m2) };
}

/** Per-period Sharpe ratio (sample sd, n - 1); 0 for a series with no variance. */
export function perPeriodSharpe(returns: ArrayLike<number>): number {
  const n = returns.length;
  if (n < 2) throw new RangeError(`a Sharpe ratio needs at least 2 returns, got ${n}`);
  // The backtest's Sharpe at one period per year: not annualized.
  return sharpeRatio(returns, 1) ?? 0;
}

/** Sample variance (n - 1). */
function sampleVariance(xs: ArrayLike<number>): number {
  const n = xs.length;
  if (n < 2) return 0;
  let sum = 0;
  for (let i = 0; i < n; i++) sum += xs[i];
  const mean = sum / n;
  let ss = 0;
  for (let i = 0; i < n; i++) ss += (xs[i] - mean) ** 2;
  return ss / (n - 1);
}

// ---------------------------------------------------------------------------------------------
// PSR and DSR
// ---------------------------------------------------------------------------------------------

export interface PsrInput {
  /** Observed per-period Sharpe ratio. */
  sharpe: number;
  /** Benchmark per-period Sharpe ratio SR* (0: "is there any edge at all?"). */
  benchmark: number;
  /** Number of return observations T (>= 2). */
  observations: number;
  /** γ3 of the returns (0 for normal). */
  skewness: number;
  /** γ4 of the returns, not excess (3 for normal). */
  kurtosis: number;
}

/** Probabilistic Sharpe Ratio: P(true SR > benchmark). */
export function probabilisticSharpeRatio(input: PsrInput): number {
  const { sharpe, benchmark, observations: t, skewness, kurtosis } = input;
  for (const [k, v] of Object.entries({ sharpe, benchmark, skewness, kurtosis })) if (!Number.isFinite(v)) throw new RangeError(`PSR: ${k} must be a finite number, got ${v}`);
  if (!(Number.isInteger(t) && t >= 2)) throw new RangeError(`PSR: observations must be an integer >= 2, got ${t}`);
  if (kurtosis < 1) throw new RangeError(`PSR: kurtosis is the non-excess kind (normal = 3) and cannot be below 1, got ${kurtosis}`);
  const radicand = 1 - skewness * sharpe + ((kurtosis - 1) / 4) * sharpe * sharpe;
  if (!(radicand > 0)) throw new RangeError(`PSR: 1 - γ3 SR + (γ4 - 1)/4 SR^2 = ${radicand} is not positive (skewness ${skewness}, kurtosis ${kurtosis}, SR ${sharpe}); a kurtosis below 1 + skewness^2 is impossible`);
  return normalCdf(((sharpe - benchmark) * Math.sqrt(t - 1)) / Math.sqrt(radicand));
}

/** E[max of N standard normals] as the paper approximates it: (1 - γ) Φ^-1(1 - 1/N) + γ Φ^-1(1 - 1/(N e)); 0 for N = 1. */
export function expectedMaxStandardNormal(trials: number): number {
  if (!(Number.isInteger(trials) && trials >= 1)) throw new RangeError(`the number of trials must be an integer >= 1, got ${trials}`);
  if (trials === 1) return 0;
  return -(1 - EULER_GAMMA) * normalQuantile(1 / trials) - EULER_GAMMA * normalQuantile(1 / (trials * Math.E));
}

/** SR0: the per-period Sharpe ratio the best of N zero-skill trials is expected to show, given the variance of the trials' (per-period) Sharpe ratios. */
export function expectedMaxSharpe(trials: number, trialSharpeVariance: number): number {
  if (!(Number.isFinite(trialSharpeVariance) && trialSharpeVariance >= 0)) throw new RangeError(`the variance of the trials' Sharpe ratios must be a finite number >= 0, got ${trialSharpeVariance}`);
  return Math.sqrt(trialSharpeVariance) * expectedMaxStandardNormal(trials);
}

export interface DsrInput {
  /** Observed per-period Sharpe ratio of the selected trial. */
  sharpe: number;
  /** Number of return observations T of the selected trial. */
  observations: number;
  skewness: number;
  /** Not excess (normal = 3). */
  kurtosis: number;
  /** Number of independent trials N (>= 1). */
  trials: number;
  /** Variance V of the trials' per-period Sharpe ratios. */
  trialSharpeVariance: number;
}

export interface DsrResult {
  /** SR0, per period. */
  threshold: number;
  /** PSR(SR0). */
  dsr: number;
}

export function deflatedSharpeRatio(input: DsrInput): DsrResult {
  const threshold = expectedMaxSharpe(input.trials, input.trialSharpeVariance);
  const dsr = probabilisticSharpeRatio({ sharpe: input.sharpe, benchmark: threshold, observations: input.observations, skewness: input.skewness, kurtosis: input.kurtosis });
  return { threshold, dsr };
}

// ---------------------------------------------------------------------------------------------
// PBO by CSCV
// ---------------------------------------------------------------------------------------------

/** Binomial coefficient C(n, k) (exact for the sizes used here). */
export function binomial(n: number, k: number): number {
  if (k < 0 || k > n) return 0;
  let c = 1;
  for (let i = 1; i <= Math.min(k, n - k); i++) c = (c * (n - Math.min(k, n - k) + i)) / i;
  return Math.round(c);
}

/** Every k-subset of {0..n-1} in lexicographic order. */
export function* combinations(n: number, k: number): Generator<number[]> {
  const idx = Array.from({ length: k }, (_, i) => i);
  if (k > n) return;
  while (true) {
    yield idx.slice();
    let i = k - 1;
    while (i >= 0 && idx[i] === n - k + i) i--;
    if (i < 0) return;
    idx[i]++;
    for (let j = i + 1; j < k; j++) idx[j] = idx[j - 1] + 1;
  }
}

export interface PboOptions {
  /** Number of row groups S: even, >= 2 (default 16, as in the paper's examples). */
  partitions?: number;
  /**
   * Performance of one trial over a set of rows (in time order). Default: the per-period Sharpe
   * ratio (0 with no variance), computed from per-group moments rather than the rows, which is
   * what keeps S = 16 with many trials fast. Must return a finite number.
   */
  performance?: (returns: Float64Array) => number;
}

export interface PboResult {
  /** Share of combinations with λ <= 0. */
  pbo: number;
  partitions: number;
  /** C(S, S/2). */
  combinations: number;
  trials: number;
  /** Rows per group; the first droppedRows rows of the matrix were left out. */
  rowsPerPartition: number;
  droppedRows: number;
  /** Per combination, in the order the combinations are enumerated (lexicographic IS groups): */
  logits: number[];
  /** The IS-best trial n*. */
  selected: number[];
  /** n*'s IS and OOS performance (the degradation plot's points). */
  isPerformance: number[];
  oosPerformance: number[];
  /** Least-squares OOS = intercept + slope · IS over the combinations; null when IS never varies. */
  degradation: { slope: number | null; intercept: number | null };
  /** Share of combinations where n*'s OOS performance is below 0. */
  probabilityOfLoss: number;
}

/** Running (count, mean, M2) of one trial over one group: combined across groups without touching the rows again (Chan et al.). */
interface Moments {
  n: number;
  mean: number;
  m2: number;
}

function combineSharpe(parts: readonly Moments[]): number {
  let n = 0;
  let mean = 0;
  let m2 = 0;
  for (const p of parts) {
    if (p.n === 0) continue;
    const total = n + p.n;
    const delta = p.mean - mean;
    mean += (delta * p.n) / total;
    m2 += p.m2 + (delta * delta * n * p.n) / total;
    n = total;
  }
  const sd = n > 1 ? Math.sqrt(m2 / (n - 1)) : 0;
  return sd > 0 ? mean / sd : 0;
}

/**
 * Probability of Backtest Overfitting of a T x N return matrix (`periodReturns[t][n]`: period t,
 * trial n) by combinatorially symmetric cross-validation.
 */
export function probabilityOfBacktestOverfitting(periodReturns: readonly (readonly number[])[], options: PboOptions = {}): PboResult {
  const s = options.partitions ?? 16;
  if (!(Number.isInteger(s) && s >= 2 && s % 2 === 0)) throw new RangeError(`PBO: the number of partitions S must be an even integer >= 2, got ${s}`);
  const t = periodReturns.length;
  if (t < s) throw new RangeError(`PBO: ${t} periods cannot be split into S = ${s} partitions (need T >= S)`);
  const n = periodReturns[0].length;
  if (n < 2) throw new RangeError(`PBO: needs at least 2 trials (columns), got ${n}`);
  for (let r = 0; r < t; r++) {
    if (periodReturns[r].length !== n) throw new RangeError(`PBO: row ${r} has ${periodReturns[r].length} trials, row 0 has ${n} (the matrix must be rectangular)`);
    assertFinite(periodReturns[r], `PBO: row ${r}`);
  }
  const size = Math.floor(t / s);
  const dropped = t - size * s;
  if (size * (s / 2) < 2) throw new RangeError(`PBO: each half would hold ${size * (s / 2)} period(s); a performance needs at least 2 (T = ${t}, S = ${s})`);

  const half = s / 2;
  const custom = options.performance;
  const groupRows = (g: number) => dropped + g * size;

  // Default path: per (group, trial) moments, combined per combination.
  let groupMoments: Moments[][] = [];
  if (!custom) {
    groupMoments = Array.from({ length: s }, (_, g) =>
      Array.from({ length: n }, (_, j) => {
        let mean = 0;
        let m2 = 0;
        let k = 0;
        for (let r = groupRows(g); r < groupRows(g) + size; r++) {
          k++;
          const x = periodReturns[r][j];
          const d = x - mean;
          mean += d / k;
          m2 += d * (x - mean);
        }
        return { n: k, mean, m2 };
      }),
    );
  }
  const performances = (groups: readonly number[], where: string): Float64Array => {
    const out = new Float64Array(n);
    if (!custom) {
      for (let j = 0; j < n; j++) out[j] = combineSharpe(groups.map((g) => groupMoments[g][j]));
      return out;
    }
    const column = new Float64Array(groups.length * size);
    for (let j = 0; j < n; j++) {
      let i = 0;
      for (const g of groups) for (let r = groupRows(g); r < groupRows(g) + size; r++) column[i++] = periodReturns[r][j];
      const v = custom(column);
      if (!Number.isFinite(v)) throw new RangeError(`PBO: the performance function returned ${v} for trial ${j} over ${where} groups ${groups.join(',')}`);
      out[j] = v;
    }
    return out;
  };

  const logits: number[] = [];
  const selected: number[] = [];
  const isPerf: number[] = [];
  const oosPerf: number[] = [];
  let overfit = 0;
  let losses = 0;
  for (const inSample of combinations(s, half)) {
    const member = new Set(inSample);
    const outOfSample: number[] = [];
    for (let g = 0; g < s; g++) if (!member.has(g)) outOfSample.push(g);
    const is = performances(inSample, 'IS');
    const oos = performances(outOfSample, 'OOS');
    let best = 0;
    for (let j = 1; j < n; j++) if (is[j] > is[best]) best = j;
    let below = 0;
    let tied = 0;
    for (let j = 0; j < n; j++) {
      if (j === best) continue;
      if (oos[j] < oos[best]) below++;
      else if (oos[j] === oos[best]) tied++;
    }
    const rank = 1 + below + tied / 2; // mid-rank among ties
    const omega = rank / (n + 1);
    const lambda = Math.log(omega / (1 - omega));
    logits.push(lambda);
    selected.push(best);
    isPerf.push(is[best]);
    oosPerf.push(oos[best]);
    if (lambda <= 0) overfit++;
    if (oos[best] < 0) losses++;
  }
  const count = logits.length;

  // Degradation: ordinary least squares of OOS on IS.
  const mx = isPerf.reduce((a, b) => a + b, 0) / count;
  const my = oosPerf.reduce((a, b) => a + b, 0) / count;
  let sxx = 0;
  let sxy = 0;
  for (let i = 0; i < count; i++) {
    sxx += (isPerf[i] - mx) ** 2;
    sxy += (isPerf[i] - mx) * (oosPerf[i] - my);
  }
  const slope = sxx > 0 ? sxy / sxx : null;

  return {
    pbo: overfit / count,
    partitions: s,
    combinations: count,
    trials: n,
    rowsPerPartition: size,
    droppedRows: dropped,
    logits,
    selected,
    isPerformance: isPerf,
    oosPerformance: oosPerf,
    degradation: { slope, intercept: slope === null ? null : my - slope * mx },
    probabilityOfLoss: losses / count,
  };
}

// ---------------------------------------------------------------------------------------------
// The report
// ---------------------------------------------------------------------------------------------

export interface OverfittingReportInput {
  /** One per-period return series per trial (`trialReturns[trial][period]`), all the same length. */
  trialReturns: readonly (readonly number[])[];
  /** The trial to judge; default the one with the best per-period Sharpe ratio (the lowest index on ties). */
  selected?: number;
  /** For the annualized copies of the Sharpe figures (x sqrt(periodsPerYear)); without it they are null. */
  periodsPerYear?: number;
  /** S for the PBO (default 16). */
  partitions?: number;
}

export interface OverfittingReport {
  trials: number;
  periods: number;
  selected: number;
  deflatedSharpe: {
    /** Selected trial's per-period Sharpe ratio and its annualized copy. */
    sharpe: number;
    sharpeAnnualized: number | null;
    /** SR0, per period and annualized. */
    threshold: number;
    thresholdAnnualized: number | null;
    /** Variance of the trials' per-period Sharpe ratios. */
    trialSharpeVariance: number;
    skewness: number;
    kurtosis: number;
    /** PSR against 0 (no selection correction). */
    psr: number;
    dsr: number;
  };
  pbo: {
    pbo: number;
    partitions: number;
    combinations: number;
    droppedRows: number;
    probabilityOfLoss: number;
    degradationSlope: number | null;
    degradationIntercept: number | null;
    /** Mean and median logit λ. */
    logitMean: number;
    logitMedian: number;
  };
}

/** DSR of the best trial given all trials, and PBO over the trial matrix, as plain JSON numbers. */
export function overfittingReport(input: OverfittingReportInput): OverfittingReport {
  const { trialReturns, periodsPerYear } = input;
  const n = trialReturns.length;
  if (n < 2) throw new RangeError(`an overfitting report needs at least 2 trials, got ${n}`);
  const t = trialReturns[0].length;
  for (let i = 0; i < n; i++) if (trialReturns[i].length !== t) throw new RangeError(`trial ${i} has ${trialReturns[i].length} returns, trial 0 has ${t} (every trial must cover the same periods)`);
  if (periodsPerYear !== undefined && !(Number.isFinite(periodsPerYear) && periodsPerYear > 0)) throw new RangeError(`periodsPerYear must be a positive number, got ${periodsPerYear}`);

  const moments = trialReturns.map((r, i) => {
    try {
      return returnMoments(r);
    } catch (e) {
      throw new RangeError(`trial ${i}: ${(e as Error).message}`, { cause: e });
    }
  });
  const sharpes = moments.map((m) => m.sharpe);
  let selected = input.selected ?? 0;
  if (input.selected === undefined) for (let i = 1; i < n; i++) if (sharpes[i] > sharpes[selected]) selected = i;
  if (!(Number.isInteger(selected) && selected >= 0 && selected < n)) throw new RangeError(`selected must be a trial index in [0, ${n - 1}], got ${input.selected}`);

  const m = moments[selected];
  const variance = sampleVariance(sharpes);
  const { threshold, dsr } = deflatedSharpeRatio({ sharpe: m.sharpe, observations: t, skewness: m.skewness, kurtosis: m.kurtosis, trials: n, trialSharpeVariance: variance });
  const psr = probabilisticSharpeRatio({ sharpe: m.sharpe, benchmark: 0, observations: t, skewness: m.skewness, kurtosis: m.kurtosis });
  const annual = (x: number) => (periodsPerYear === undefined ? null : x * Math.sqrt(periodsPerYear));

  const matrix = Array.from({ length: t }, (_, r) => trialReturns.map((series) => series[r]));
  const p = probabilityOfBacktestOverfitting(matrix, { partitions: input.partitions });
  const [median] = quantiles(p.logits, [0.5]);

  return {
    trials: n,
    periods: t,
    selected,
    deflatedSharpe: {
      sharpe: m.sharpe,
      sharpeAnnualized: annual(m.sharpe),
      threshold,
      thresholdAnnualized: annual(threshold),
      trialSharpeVariance: variance,
      skewness: m.skewness,
      kurtosis: m.kurtosis,
      psr,
      dsr,
    },
    pbo: {
      pbo: p.pbo,
      partitions: p.partitions,
      combinations: p.combinations,
      droppedRows: p.droppedRows,
      probabilityOfLoss: p.probabilityOfLoss,
      degradationSlope: p.degradation.slope,
      degradationIntercept: p.degradation.intercept,
      logitMean: p.logits.reduce((a, b) => a + b, 0) / p.logits.length,
      logitMedian: median,
    },
  };
}

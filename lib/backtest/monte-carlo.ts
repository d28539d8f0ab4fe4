import { Prng } from '../random';
import { quantileSorted } from './percentile';

/**
 * Monte Carlo of a backtest's closed trades: how much of the result is the order the trades came
 * in, and how much is luck in which trades came at all.
 *
 * Each trade becomes a return on the account: r_i = pnl_i / E_(i-1), where E is the realized
 * equity (initial capital plus the PnL of the trades closed before it, in the backtest's order).
 * A path compounds returns from 1: E_k = prod_(j<=k) (1 + r_j); its max drawdown is the largest
 * fall from a running peak over the trade closes (the path starts at its peak, 1). Marks between
 * trades are not part of a path, so a path's drawdown is at most the bar-by-bar one.
 *
 * - shuffle: the same trades in a random order (Fisher-Yates). The final return is the same in
 *   every run (a product does not depend on order): only the drawdown varies.
 * - bootstrap: as many trades as the backtest had, drawn with replacement. Both vary.
 *
 * Bands are the 5th, 50th and 95th percentiles over the runs (lib/backtest/percentile, type 7).
 * Every draw comes from the project's seeded generator (lib/random), so a seed reproduces every
 * band on any machine.
 */

export interface Bands {
  p5: number;
  p50: number;
  p95: number;
}

export interface MonteCarloPart {
  finalReturn: Bands;
  maxDrawdown: Bands;
  /** Share of runs that ended below the initial capital. */
  probabilityOfLoss: number;
}

export interface MonteCarloResult {
  runs: number;
  seed: number;
  trades: number;
  /** The backtest's own order, on the same trade-close path. */
  actual: { finalReturn: number; maxDrawdown: number };
  /** Null without trades: nothing to resample. */
  shuffle: MonteCarloPart | null;
  bootstrap: MonteCarloPart | null;
}

export const MAX_MONTE_CARLO_RUNS = 1_000_000;

/** Per-trade returns on the realized account equity, in the given (exit) order. */
export function accountReturns(trades: ReadonlyArray<{ pnl: number }>, initialEquity: number): Float64Array {
  if (!(initialEquity > 0)) throw new RangeError(`initial equity must be positive, got ${initialEquity}`);
  const out = new Float64Array(trades.length);
  let equity = initialEquity;
  trades.forEach((t, i) => {
    out[i] = equity > 0 ? t.pnl / equity : 0;
    equity += t.pnl;
  });
  return out;
}

/** Final return and max drawdown of compounding `returns` (taken in the order of `order`, default as given). */
export function pathOutcome(returns: ArrayLike<number>, order?: ArrayLike<number>): { finalReturn: number; maxDrawdown: number } {
  let equity = 1;
  let peak = 1;
  let worst = 0;
  for (let k = 0; k < returns.length; k++) {
    equity *= 1 + returns[order ? order[k] : k];
    if (equity > peak) peak = equity;
    else if (peak > 0) worst = Math.max(worst, (peak - equity) / peak);
  }
  return { finalReturn: equity - 1, maxDrawdown: worst };
}

const bands = (values: Float64Array): Bands => {
  values.sort();
  return { p5: quantileSorted(values, 0.05), p50: quantileSorted(values, 0.5), p95: quantileSorted(values, 0.95) };
};

function part(finals: Float64Array, drawdowns: Float64Array): MonteCarloPart {
  let losses = 0;
  for (const f of finals) if (f < 0) losses++;
  return { probabilityOfLoss: losses / finals.length, finalReturn: bands(finals), maxDrawdown: bands(drawdowns) };
}

/** `trades` in the order they closed. */
export function monteCarlo(trades: ReadonlyArray<{ pnl: number }>, initialEquity: number, opts: { runs: number; seed: number }): MonteCarloResult {
  const { runs, seed } = opts;
  if (!(Number.isInteger(runs) && runs >= 1 && runs <= MAX_MONTE_CARLO_RUNS)) throw new RangeError(`Monte Carlo runs must be an integer from 1 to ${MAX_MONTE_CARLO_RUNS}, got ${runs}`);
  const returns = accountReturns(trades, initialEquity);
  const n = returns.length;
  const actual = pathOutcome(returns);
  if (n === 0) return { runs, seed, trades: 0, actual, shuffle: null, bootstrap: null };
  const random = new Prng(seed);

  const order = new Uint32Array(n);
  const finals = new Float64Array(runs);
  const drawdowns = new Float64Array(runs);
  for (let r = 0; r < runs; r++) {
    for (let i = 0; i < n; i++) order[i] = i;
    for (let i = n - 1; i > 0; i--) {
      const j = Math.floor(random.next() * (i + 1));
      const t = order[i];
      order[i] = order[j];
      order[j] = t;
    }
    const o = pathOutcome(returns, order);
    finals[r] = o.finalReturn;
    drawdowns[r] = o.maxDrawdown;
  }
  const shuffle = part(finals.slice(), drawdowns.slice());

  for (let r = 0; r < runs; r++) {
    for (let i = 0; i < n; i++) order[i] = Math.floor(random.next() * n);
    const o = pathOutcome(returns, order);
    finals[r] = o.finalReturn;
    drawdowns[r] = o.maxDrawdown;
  }
  return { runs, seed, trades: n, actual, shuffle, bootstrap: part(finals, drawdowns) };
}

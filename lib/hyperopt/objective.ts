import { LOSS_NAMES, type LossName } from '../contracts/hyperopt';
import { HyperoptInputError } from './space';

/**
 * The objective of a hyperopt trial, from the per-period (UTC day) returns of its backtest: the
 * loss over K consecutive test folds, each scored on its own, averaged (the parameters are not
 * refitted per fold: the folds only score), so one lucky stretch cannot carry a trial. Lower is
 * better. Pure.
 */

export function parseLoss(text: string | undefined): LossName {
  const name = (text ?? 'sharpe').trim();
  if (!(LOSS_NAMES as readonly string[]).includes(name)) throw new HyperoptInputError(`--loss '${name}': not a loss we have; choose one of ${LOSS_NAMES.join(', ')}`);
  return name as LossName;
}

/** Figures of one stretch of per-period returns. */
export interface ReturnFigures {
  periods: number;
  /** Compounded return over the stretch. */
  totalReturn: number;
  /** Annualized (x sqrt(periodsPerYear)); 0 without variance. */
  sharpe: number;
  /** Mean over the root mean square of the negative returns, annualized; capped at FIGURE_CAP. */
  sortino: number;
  /** Annualized compounded return over the largest peak-to-trough fall; capped at FIGURE_CAP. */
  calmar: number;
  /** Largest peak-to-trough fall of the compounded curve, as a fraction (0.2 = 20 %). */
  maxDrawdown: number;
}

/** A figure with nothing to divide by (no losing period, no drawdown) is this, not Infinity: JSON and Optuna need numbers. */
export const FIGURE_CAP = 100;

const cap = (x: number): number => (Number.isFinite(x) ? Math.max(-FIGURE_CAP, Math.min(FIGURE_CAP, x)) : x > 0 ? FIGURE_CAP : x < 0 ? -FIGURE_CAP : 0);

export function returnFigures(returns: readonly number[], periodsPerYear: number): ReturnFigures {
  const n = returns.length;
  if (n === 0) return { periods: 0, totalReturn: 0, sharpe: 0, sortino: 0, calmar: 0, maxDrawdown: 0 };
  let sum = 0;
  let downSq = 0;
  let equity = 1;
  let peak = 1;
  let maxDrawdown = 0;
  for (const r of returns) {
    sum += r;
    if (r < 0) downSq += r * r;
    equity *= 1 + r;
    if (equity > peak) peak = equity;
    else if (peak > 0) maxDrawdown = Math.max(maxDrawdown, 1 - equity / peak);
  }
  const mean = sum / n;
  let sq = 0;
  for (const r of returns) sq += (r - mean) ** 2;
  const std = n > 1 ? Math.sqrt(sq / (n - 1)) : 0;
  const annual = Math.sqrt(periodsPerYear);
  const totalReturn = equity - 1;
  const sharpe = std > 0 ? (mean / std) * annual : 0;
  const downside = Math.sqrt(downSq / n);
  const sortino = downside > 0 ? cap((mean / downside) * annual) : mean > 0 ? FIGURE_CAP : 0;
  const cagr = equity > 0 ? Math.pow(equity, periodsPerYear / n) - 1 : -1;
  const calmar = maxDrawdown > 0 ? cap(cagr / maxDrawdown) : cagr > 0 ? FIGURE_CAP : 0;
  return { periods: n, totalReturn, sharpe: cap(sharpe), sortino, calmar, maxDrawdown };
}

/** The loss of one stretch: the negative of the figure it names; profit-drawdown is -(total return - max drawdown). */
export function lossOf(name: LossName, f: ReturnFigures): number {
  switch (name) {
    case 'sharpe':
      return -f.sharpe;
    case 'sortino':
      return -f.sortino;
    case 'calmar':
      return -f.calmar;
    case 'profit-drawdown':
      return -(f.totalReturn - f.maxDrawdown);
  }
}

/** [start, end) of K consecutive folds over n periods, the remainder spread over the first folds. */
export function foldBounds(n: number, k: number): Array<[number, number]> {
  if (!(Number.isInteger(k) && k >= 1)) throw new HyperoptInputError(`--walk-forward ${k}: a whole number of folds, 1 or more`);
  if (n < 2 * k) throw new HyperoptInputError(`too little data: ${n} days in the search part give fewer than 2 per fold for ${k} folds; use fewer folds, a smaller --holdout or more data`);
  const base = Math.floor(n / k);
  const extra = n % k;
  const out: Array<[number, number]> = [];
  let start = 0;
  for (let i = 0; i < k; i++) {
    const len = base + (i < extra ? 1 : 0);
    out.push([start, start + len]);
    start += len;
  }
  return out;
}

export interface TrialScore {
  loss: number;
  folds: Array<ReturnFigures & { loss: number }>;
  /** The figures of the whole search part. */
  whole: ReturnFigures;
}

export function scoreReturns(returns: readonly number[], opts: { loss: LossName; folds: number; periodsPerYear: number }): TrialScore {
  const folds = foldBounds(returns.length, opts.folds).map(([a, b]) => {
    const f = returnFigures(returns.slice(a, b), opts.periodsPerYear);
    return { ...f, loss: lossOf(opts.loss, f) };
  });
  const loss = folds.reduce((s, f) => s + f.loss, 0) / folds.length;
  return { loss, folds, whole: returnFigures(returns, opts.periodsPerYear) };
}

/** `20%`, `0.2` or `20` (percent) as a fraction in [0, 0.9]. */
export function parseHoldout(text: string | undefined): number {
  if (text === undefined) return 0.2;
  const t = text.trim();
  const m = /^(\d+(?:\.\d+)?)\s*(%?)$/.exec(t);
  if (!m) throw new HyperoptInputError(`--holdout '${text}': a share of the data such as 20% (or 0 for none)`);
  let v = Number(m[1]);
  if (m[2] === '%' || v > 1) v /= 100;
  if (!(v >= 0 && v <= 0.9)) throw new HyperoptInputError(`--holdout '${text}': between 0% and 90%`);
  return v;
}

import type { LossName } from '../contracts/hyperopt';
import { periodReturns, simulateBacktest, type BacktestResult, type BacktestSeries } from '../backtest';
import { FEATURE_SCHEMA } from '../features/schema';
import type { RiskConfigInput } from '../risk';
import { StrategyHost } from '../strategy/host';
import type { LoadedStrategy } from '../strategy/run';
import { HyperoptInputError } from './space';
import { foldBounds, returnFigures, scoreReturns, type ReturnFigures, type TrialScore } from './objective';

/**
 * One hyperopt trial: a backtest through lib/backtest (the decision code the workflows run) over
 * the search part of the data, scored per UTC day by ./objective. Pure: the caller hands in the
 * loaded strategy and how parameters are hashed (infra/strategies paramsHash). The last share of
 * the data (the holdout) is cut off before the trial sees it; `holdoutBacktest` runs the chosen
 * parameters over it once the search is over.
 */

const DAY_MS = 86_400_000;
/** Crypto trades every day: daily figures are annualized with 365. */
export const PERIODS_PER_YEAR = 365;

export interface TrialSettings {
  loss: LossName;
  folds: number;
  initialCapital: number;
  /** Fractions (0.001 = 10 bps). */
  fees: { maker: number; taker: number };
  slippageBps: number;
  risk?: RiskConfigInput;
  /** The holdout's first millisecond (a UTC midnight); null: no holdout. */
  cutoff: number | null;
}

/**
 * Where the holdout starts: the last `share` of the data's span, moved back to a UTC midnight so
 * that no day is split between the two parts. Null for a share of 0. Throws when either part
 * would hold no whole day, or the search part too few days for the folds.
 */
export function holdoutCutoff(series: readonly BacktestSeries[], share: number, folds: number): number | null {
  const start = Math.min(...series.map((s) => s.candles[0]?.timestamp ?? Infinity));
  const end = Math.max(...series.map((s) => (s.candles.at(-1)?.timestamp ?? -Infinity) + s.timeframeMs));
  if (!Number.isFinite(start) || !Number.isFinite(end)) throw new HyperoptInputError('no candles to search over');
  const cutoff = share > 0 ? Math.floor((start + (end - start) * (1 - share)) / DAY_MS) * DAY_MS : null;
  // UTC days the search part touches (periodReturns makes one return per such day).
  const searchDays = Math.floor(((cutoff ?? end) - 1) / DAY_MS) - Math.floor(start / DAY_MS) + 1;
  if (cutoff !== null && Math.floor((end - cutoff) / DAY_MS) < 1) throw new HyperoptInputError(`too little data: the holdout (${Math.round(share * 100)} %) holds no whole day; use more data or a larger --holdout`);
  foldBounds(Math.max(0, searchDays), folds);
  return cutoff;
}

/** The candles a trial sees: those before the cutoff. */
export function searchPart(series: readonly BacktestSeries[], cutoff: number | null): BacktestSeries[] {
  if (cutoff === null) return [...series];
  return series.map((s) => ({ ...s, candles: s.candles.filter((c) => c.timestamp < cutoff) }));
}

/** The holdout's candles, with the warm-up the features and the strategy need before the cutoff (not scored). */
export function holdoutPart(series: readonly BacktestSeries[], cutoff: number, strategyWarmup: number): BacktestSeries[] {
  const warmup = FEATURE_SCHEMA.historyBars + strategyWarmup;
  return series.map((s) => {
    const first = s.candles.findIndex((c) => c.timestamp >= cutoff);
    return { ...s, candles: first < 0 ? [] : s.candles.slice(Math.max(0, first - warmup)) };
  });
}

export interface TrialOutcome {
  score: TrialScore;
  /** Per UTC day, in order: the matrix the overfitting guard reads. */
  returns: number[];
  days: string[];
  trades: number;
  finalEquity: number;
}

/** How a strategy's parameters are hashed for its identity (infra/strategies paramsHash). */
export type HashParams = (params: Record<string, unknown>) => string;

async function backtest(series: BacktestSeries[], loaded: LoadedStrategy, params: Record<string, unknown>, s: TrialSettings, hash: HashParams): Promise<BacktestResult> {
  const host = new StrategyHost(loaded, params, hash);
  return simulateBacktest({
    series,
    strategy: loaded.origin === 'builtin' ? loaded.strategy.name : loaded.origin,
    strategyParams: host.params,
    strategyHost: host,
    initialCapital: s.initialCapital,
    fees: s.fees,
    slippage: { bps: s.slippageBps },
    ...(s.risk ? { risk: s.risk } : {}),
  });
}

/** A trial: the backtest of the search part with these parameters, and its score. */
export async function runTrial(series: readonly BacktestSeries[], loaded: LoadedStrategy, params: Record<string, unknown>, s: TrialSettings, hash: HashParams): Promise<TrialOutcome> {
  const result = await backtest(searchPart(series, s.cutoff), loaded, params, s, hash);
  const daily = periodReturns(result.equityCurve, 'day');
  const returns = daily.map((d) => d.return);
  return {
    score: scoreReturns(returns, { loss: s.loss, folds: s.folds, periodsPerYear: PERIODS_PER_YEAR }),
    returns,
    days: daily.map((d) => d.period),
    trades: result.trades.length,
    finalEquity: result.metrics.finalEquity,
  };
}

export interface HoldoutOutcome {
  figures: ReturnFigures;
  loss: number;
  trades: number;
  days: string[];
  equityCurve: Array<{ time: number; equity: number }>;
}

/** The chosen parameters over the holdout: figures of the days from the cutoff on. */
export async function holdoutBacktest(series: readonly BacktestSeries[], loaded: LoadedStrategy, params: Record<string, unknown>, s: TrialSettings & { cutoff: number }, hash: HashParams): Promise<HoldoutOutcome> {
  const result = await backtest(holdoutPart(series, s.cutoff, loaded.strategy.warmup), loaded, params, s, hash);
  const scored = result.equityCurve.filter((p) => p.time >= s.cutoff);
  // The first holdout day's return is measured from the equity at the cutoff.
  const before = result.equityCurve.filter((p) => p.time < s.cutoff).at(-1);
  const daily = periodReturns(before ? [{ time: s.cutoff, equity: before.equity }, ...scored] : scored, 'day');
  const returns = daily.map((d) => d.return);
  const figures = returnFigures(returns, PERIODS_PER_YEAR);
  return {
    figures,
    loss: scoreReturns(returns, { loss: s.loss, folds: 1, periodsPerYear: PERIODS_PER_YEAR }).loss,
    trades: result.trades.filter((t) => t.exitTime >= s.cutoff).length,
    days: daily.map((d) => d.period),
    equityCurve: scored.map((p) => ({ time: p.time, equity: p.equity })),
  };
}

import type { Candle } from '../lib/candles';
import { FEATURE_SCHEMA } from '../lib/features';
import { barReturns, sharpeDifference, simulateBacktest, type BacktestResult, type BacktestSeries, type EquityPoint, type SharpeDifference } from '../lib/backtest';
import type { BuiltinStrategyName } from '../lib/engine/types';
import type { RiskConfigInput } from '../lib/risk';
import { buildDataset, mergeDatasets } from './dataset';
import { classifierMetrics, type ClassifierMetrics } from './ensemble/metrics';
import { loadEnsemble } from './inference';
import { normalizeFeatures } from './normalization';
import { readManifest } from './registry';
import { createModelSignalSource, evictSignalCache } from './signal';

/**
 * The evaluation of one model version over a period it did not train on, used everywhere a model
 * is judged: the training report (its held-out period), the promotion gate (challenger and
 * champion on the challenger's held-out period) and `trader eval` (every walk-forward fold).
 *
 * - classifier: the ensemble as served (ONNX Runtime, the version's per-symbol normalization) on
 *   the dataset rows decided in the period: AUC, log loss, Brier, calibration (ECE, reliability);
 * - backtests: rules / ensemble / ppo / hybrid through lib/backtest over the period's candles,
 *   the model strategies through the very signal source the live traders use, against
 *   buy-and-hold: return, Sharpe, max drawdown, trades;
 * - significance: for each model strategy, a paired block-bootstrap 95 % interval of its Sharpe
 *   ratio minus the rules' over the same bars (lib/backtest/sharpe-difference), seeded.
 */

export type ClassifierSummary = Pick<ClassifierMetrics, 'rows' | 'positiveRate' | 'accuracy' | 'auc' | 'logLoss' | 'brier' | 'ece' | 'reliability'>;

export interface StrategyBacktest {
  strategy: BuiltinStrategyName;
  totalReturn: number;
  annualizedReturn: number | null;
  maxDrawdown: number;
  sharpe: number | null;
  trades: number;
  winRate: number | null;
  profitFactor: number | null;
  exposure: number;
  totalFees: number;
  finalEquity: number;
  openPositions: number;
  /** Trades per symbol. */
  tradesBySymbol?: Record<string, number>;
  /** Model strategies: decisions whose model signal was not ok (should be 0). */
  modelErrors?: number;
  /** Model strategies: Sharpe minus the rules' Sharpe over the same bars, with its bootstrap interval. */
  sharpeVsRules?: SharpeDifference | null;
}

export interface EvaluationSettings {
  initialCapital: number;
  feeBps: number;
  slippageBps: number;
  risk?: RiskConfigInput;
  /** Seed of the significance bootstrap (default 1). */
  seed?: number;
  /** Bootstrap resamples (default 1000). */
  significanceRuns?: number;
}

export interface VersionEvaluation {
  version: string;
  from: string;
  to: string;
  symbols: string[];
  /** Held-out dataset rows (with complete labels) the classifier was scored on. */
  classifier: ClassifierSummary | null;
  /** The thresholds the ensemble traded at. */
  thresholds: { enterProb: number; exitProb: number | null };
  settings: { initialCapital: number; feeBps: number; slippageBps: number };
  buyAndHold: number | null;
  strategies: StrategyBacktest[];
  /** Per-bar returns of each strategy's equity (not serialized: pooled across folds by walk-forward). */
  barReturns?: Record<string, number[]>;
  periodsPerYear?: number;
}

export const ALL_STRATEGIES: readonly BuiltinStrategyName[] = ['rules', 'ensemble', 'ppo', 'hybrid'];

/** Each series from the feature warm-up before `from` on: the backtest's first decision is the first candle at or after `from`. */
export function seriesFrom(series: readonly BacktestSeries[], from: number): BacktestSeries[] {
  return series.flatMap((s) => {
    const i0 = s.candles.findIndex((c) => c.timestamp >= from);
    if (i0 < 0) return [];
    return [{ ...s, candles: s.candles.slice(Math.max(0, i0 - FEATURE_SCHEMA.warmup)) }];
  });
}

function summarize(m: ClassifierMetrics): ClassifierSummary {
  return { rows: m.rows, positiveRate: m.positiveRate, accuracy: m.accuracy, auc: m.auc, logLoss: m.logLoss, brier: m.brier, ece: m.ece, reliability: m.reliability };
}

/** The served ensemble's P(up) on every complete dataset row decided at or after `from`. */
export async function scoreClassifier(dir: string, series: readonly BacktestSeries[], from: number): Promise<ClassifierSummary | null> {
  const manifest = readManifest(dir);
  const labels = { horizon: manifest.labels.horizon, roundTripCost: manifest.labels.roundTripCost };
  const parts = series.flatMap((s) => {
    try {
      return [buildDataset(s.candles, s.timeframeMs, labels, (raw) => normalizeFeatures(manifest.normalization, s.symbol, raw))];
    } catch {
      return []; // too short for one complete row: nothing to score on this symbol
    }
  });
  if (parts.length === 0) return null;
  const ds = mergeDatasets(parts);
  const rows: Float32Array[] = [];
  const y: number[] = [];
  for (let r = 0; r < ds.rows; r++) {
    if (ds.timestamps[r] < from) continue;
    rows.push(ds.X.slice(r * ds.width, (r + 1) * ds.width));
    y.push(ds.y[r]);
  }
  if (rows.length === 0) return null;
  const model = await loadEnsemble(dir);
  const out = await model.run(rows);
  return summarize(classifierMetrics(out.probUp, Uint8Array.from(y)));
}

function strategyBacktest(strategy: BuiltinStrategyName, r: BacktestResult, modelErrors?: number): StrategyBacktest {
  const m = r.metrics;
  return {
    strategy,
    totalReturn: m.totalReturn,
    annualizedReturn: m.annualizedReturn,
    maxDrawdown: m.maxDrawdown,
    sharpe: m.sharpe,
    trades: m.trades,
    winRate: m.winRate,
    profitFactor: m.profitFactor,
    exposure: m.exposure,
    totalFees: m.totalFees,
    finalEquity: m.finalEquity,
    openPositions: r.openPositions.length,
    tradesBySymbol: Object.fromEntries(r.symbols.map((s) => [s.symbol, s.trades])),
    ...(modelErrors === undefined ? {} : { modelErrors }),
  };
}

/** Bar returns of `a` and `b` over the times both curves have. */
function paired(a: readonly EquityPoint[], b: readonly EquityPoint[]): [number[], number[]] {
  const times = new Set(b.map((p) => p.time));
  const common = new Set(a.filter((p) => times.has(p.time)).map((p) => p.time));
  return [barReturns(a.filter((p) => common.has(p.time))), barReturns(b.filter((p) => common.has(p.time)))];
}

export async function evaluateVersion(
  dir: string,
  series: readonly BacktestSeries[],
  from: number,
  settings: EvaluationSettings,
  strategies: readonly BuiltinStrategyName[] = ALL_STRATEGIES,
  onProgress?: (done: number, total: number, what: string) => void,
): Promise<VersionEvaluation> {
  const manifest = readManifest(dir);
  const period = seriesFrom(series, from);
  if (period.length === 0) throw new RangeError(`no candle at or after ${new Date(from).toISOString()} to evaluate on`);
  const total = strategies.length + 1;
  try {
    onProgress?.(0, total, 'classifier');
    const classifier = strategies.some((s) => s !== 'rules') || strategies.length === 0 ? await scoreClassifier(dir, series, from) : null;
    const results = new Map<BuiltinStrategyName, { result: BacktestResult; backtest: StrategyBacktest }>();
    // Rules first: the model strategies are compared with it.
    const order = [...strategies].sort((a, b) => (a === 'rules' ? -1 : b === 'rules' ? 1 : 0));
    for (const [k, strategy] of order.entries()) {
      onProgress?.(k + 1, total, `backtest ${strategy}`);
      let errors = 0;
      const source = strategy === 'rules' ? undefined : createModelSignalSource({ dir, strategy });
      const signal = source
        ? async (symbol: string, features: number[], candle: Candle) => {
            const s = await source.backtest(symbol, features, candle);
            if (!s.ok) errors++;
            return s;
          }
        : undefined;
      const result = await simulateBacktest({
        series: period,
        strategy,
        initialCapital: settings.initialCapital,
        fees: { maker: settings.feeBps / 10_000, taker: settings.feeBps / 10_000 },
        slippage: { bps: settings.slippageBps },
        risk: settings.risk,
        signal,
      });
      results.set(strategy, { result, backtest: strategyBacktest(strategy, result, source ? errors : undefined) });
    }
    const rules = results.get('rules');
    const first = results.values().next().value;
    const ppy = first?.result.metrics.periodsPerYear ?? 8760;
    for (const [strategy, r] of results) {
      if (strategy === 'rules' || !rules) continue;
      const [a, b] = paired(r.result.equityCurve, rules.result.equityCurve);
      r.backtest.sharpeVsRules = sharpeDifference(a, b, { periodsPerYear: ppy, runs: settings.significanceRuns ?? 1000, seed: settings.seed ?? 1 });
    }
    onProgress?.(total, total, 'done');
    const ends = period.map((s) => s.candles[s.candles.length - 1].timestamp);
    return {
      version: manifest.id,
      from: new Date(from).toISOString(),
      to: new Date(Math.max(...ends)).toISOString(),
      symbols: period.map((s) => s.symbol),
      classifier,
      thresholds: { enterProb: manifest.ensemble.longThreshold, exitProb: manifest.ensemble.exitThreshold ?? null },
      settings: { initialCapital: settings.initialCapital, feeBps: settings.feeBps, slippageBps: settings.slippageBps },
      buyAndHold: first?.result.metrics.buyAndHoldReturn ?? null,
      strategies: strategies.map((s) => results.get(s)!.backtest),
      barReturns: Object.fromEntries([...results].map(([s, r]) => [s, barReturns(r.result.equityCurve)])),
      periodsPerYear: ppy,
    };
  } finally {
    await evictSignalCache(dir);
  }
}

/** The evaluation as stored in a report (no per-bar series). */
export function storedEvaluation(e: VersionEvaluation): VersionEvaluation {
  const { barReturns: _bars, periodsPerYear: _ppy, ...rest } = e;
  return rest;
}

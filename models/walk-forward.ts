import path from 'node:path';
import { sharpeDifference, sharpeRatio, type SharpeDifference } from '../lib/backtest';
import { buildDataset, DEFAULT_LABELS, mergeDatasets, walkForwardFolds } from './dataset';
import type { ClassifierSummary, StrategyBacktest, VersionEvaluation } from './evaluation';
import { trainModelVersion, type TrainProgress, type TrainSettingsInput } from './train';
import { checkTrainingSeries, seriesBefore, TrainingInputError, type SourceFile, type TrainingSeries } from './training-data';
import type { BuiltinStrategyName } from '../lib/engine/types';

/**
 * Walk-forward evaluation over several symbols and timeframes: does a model beat the rules
 * baseline out of sample, fold after fold, on more than one symbol and period?
 *
 * Series are grouped by timeframe (a version serves one timeframe). In each group the pooled
 * dataset rows (all symbols, by time) after an initial training window are cut into `folds`
 * consecutive test periods (models/dataset walkForwardFolds). For every fold a complete model
 * version is trained, with models/train.ts exactly as `trader train` does (ensemble + PPO, per-
 * symbol normalization, thresholds fitted on its own validation rows), on every candle before
 * the fold, and evaluated on the fold with models/evaluation.ts (the training report's and the
 * promotion gate's evaluation): the served ensemble's AUC, log loss and calibration, and
 * backtests of rules / ensemble / ppo / hybrid against buy-and-hold, each model strategy with a
 * bootstrap interval of its Sharpe ratio minus the rules'. A fold's candles end where the next
 * fold begins, so no fold trains on or trades in another fold's test period.
 *
 * Per timeframe the summary pools the folds: every strategy's per-bar returns over all folds,
 * their Sharpe ratio, and the paired block-bootstrap 95 % interval of Sharpe(strategy) -
 * Sharpe(rules) over all those bars: the significance figure.
 */

export interface WalkForwardOptions {
  folds: number;
  /** Share of each group's rows before the first fold (default 0.5). */
  initialFraction?: number;
  /** Training settings of every fold's version (seed, PPO steps, member sizes, backtest capital and fees, ...). */
  settings?: Omit<TrainSettingsInput, 'out' | 'modelsRoot' | 'heldOutFrom' | 'walkForwardFolds' | 'workDir' | 'resumeAfter' | 'id'>;
  /** Fold versions are written to `<modelsDir>/<timeframe>-fold-<k>` (each a model version `trader backtest --models` reads). */
  modelsDir: string;
  onProgress?: (p: { timeframe: string; fold: number; folds: number; train: TrainProgress }) => void;
  signal?: AbortSignal;
}

export interface FoldResult {
  timeframe: string;
  fold: number;
  from: string;
  to: string;
  trainedFrom: string;
  symbols: string[];
  version: string;
  dir: string;
  classifier: ClassifierSummary | null;
  thresholds: { enterProb: number; exitProb: number | null };
  /** The entry threshold's mean forward log return after costs on the fold version's validation rows. */
  validationExpectedValue: number | null;
  buyAndHold: number | null;
  strategies: StrategyBacktest[];
}

export interface PooledStrategy {
  strategy: BuiltinStrategyName;
  folds: number;
  foldsWithTrades: number;
  trades: number;
  /** Product of (1 + fold return) - 1: the folds traded one after the other. */
  compoundedReturn: number;
  meanReturn: number;
  worstDrawdown: number;
  /** Over the per-bar returns of all folds. */
  sharpe: number | null;
  sharpeVsRules: SharpeDifference | null;
}

export interface TimeframeSummary {
  timeframe: string;
  folds: number;
  bars: number;
  buyAndHoldCompounded: number | null;
  classifier: { meanAuc: number | null; meanLogLoss: number | null; meanEce: number | null };
  strategies: PooledStrategy[];
}

export interface WalkForwardReport {
  formatVersion: 1;
  created: string;
  folds: number;
  initialFraction: number;
  settings: Record<string, unknown>;
  data: SourceFile[];
  results: FoldResult[];
  summary: TimeframeSummary[];
  timings: { totalMs: number };
}

const STRATEGIES: readonly BuiltinStrategyName[] = ['rules', 'ensemble', 'ppo', 'hybrid'];
const iso = (ms: number) => new Date(ms).toISOString();
const mean = (xs: number[]) => (xs.length === 0 ? null : xs.reduce((a, b) => a + b, 0) / xs.length);

/** Where each timeframe group's folds begin: the first decision time of every fold's test rows. */
export function foldStarts(series: readonly TrainingSeries[], folds: number, initialFraction: number, labels = DEFAULT_LABELS): number[] {
  const ds = mergeDatasets(series.map((s) => buildDataset(s.candles, s.timeframeMs, labels)));
  return walkForwardFolds(ds, { folds, initialFraction }).map((f) => ds.timestamps[f.test.start]);
}

export async function walkForwardEvaluation(input: readonly TrainingSeries[], opts: WalkForwardOptions): Promise<WalkForwardReport> {
  const started = performance.now();
  const folds = opts.folds;
  const initialFraction = opts.initialFraction ?? 0.5;
  if (!(Number.isInteger(folds) && folds >= 1 && folds <= 20)) throw new TrainingInputError(`folds must be an integer from 1 to 20, got ${folds}`);
  if (!(initialFraction > 0 && initialFraction < 1)) throw new TrainingInputError(`initialFraction must be in (0, 1), got ${initialFraction}`);
  const settings = opts.settings ?? {};
  const labels = { horizon: settings.horizon ?? DEFAULT_LABELS.horizon, roundTripCost: settings.roundTripCost ?? DEFAULT_LABELS.roundTripCost };
  const groups = new Map<string, TrainingSeries[]>();
  for (const s of input) groups.set(s.source.timeframe, [...(groups.get(s.source.timeframe) ?? []), s]);

  const results: FoldResult[] = [];
  const bars = new Map<string, Map<BuiltinStrategyName, number[]>>();
  const ppyOf = new Map<string, number>();
  for (const [timeframe, group] of groups) {
    checkTrainingSeries(group);
    let starts: number[];
    try {
      starts = foldStarts(group, folds, initialFraction, labels);
    } catch (err) {
      throw new TrainingInputError(`${timeframe}: not enough data for ${folds} walk-forward folds: ${(err as Error).message}`);
    }
    const groupBars = new Map<BuiltinStrategyName, number[]>(STRATEGIES.map((s) => [s, []]));
    bars.set(timeframe, groupBars);
    for (let k = 0; k < starts.length; k++) {
      if (opts.signal?.aborted) throw opts.signal.reason instanceof Error ? opts.signal.reason : new Error('evaluation aborted');
      const from = starts[k];
      const end = k + 1 < starts.length ? starts[k + 1] : Infinity;
      // Every candle before the next fold; a symbol whose data ends before this fold cannot be tested on it.
      const foldSeries = group.flatMap((s) => {
        const cut = seriesBefore(s, end);
        return cut && cut.candles[cut.candles.length - 1].timestamp >= from ? [cut] : [];
      });
      if (foldSeries.length === 0) throw new TrainingInputError(`${timeframe} fold ${k + 1}: no series has candles from ${iso(from)}`);
      const dir = path.join(opts.modelsDir, `${timeframe}-fold-${k + 1}`);
      const trained = await trainModelVersion(foldSeries, {
        ...settings,
        id: `wf-${timeframe}-fold-${k + 1}-seed-${settings.seed ?? 1}`,
        out: dir,
        heldOutFrom: from,
        walkForwardFolds: 0,
        onProgress: (p) => opts.onProgress?.({ timeframe, fold: k + 1, folds: starts.length, train: p }),
        signal: opts.signal,
      });
      const ev = trained.evaluation ?? (trained.report.evaluation as VersionEvaluation);
      for (const s of STRATEGIES) groupBars.get(s)!.push(...(ev.barReturns?.[s] ?? []));
      if (ev.periodsPerYear) ppyOf.set(timeframe, ev.periodsPerYear);
      results.push({
        timeframe,
        fold: k + 1,
        from: ev.from,
        to: ev.to,
        trainedFrom: trained.manifest.data.from,
        symbols: ev.symbols,
        version: trained.manifest.id,
        dir,
        classifier: ev.classifier,
        thresholds: ev.thresholds,
        validationExpectedValue: trained.report.thresholds?.validation.meanNetLogReturn ?? null,
        buyAndHold: ev.buyAndHold,
        strategies: ev.strategies,
      });
    }
  }

  const summary: TimeframeSummary[] = [...groups.keys()].map((timeframe) => {
    const rs = results.filter((r) => r.timeframe === timeframe);
    const groupBars = bars.get(timeframe)!;
    const ppy = ppyOf.get(timeframe) ?? 8760;
    const rules = groupBars.get('rules')!;
    const strategies = STRATEGIES.map((strategy): PooledStrategy => {
      const per = rs.map((r) => r.strategies.find((s) => s.strategy === strategy)!);
      const b = groupBars.get(strategy)!;
      return {
        strategy,
        folds: per.length,
        foldsWithTrades: per.filter((s) => s.trades > 0).length,
        trades: per.reduce((a, s) => a + s.trades, 0),
        compoundedReturn: per.reduce((a, s) => a * (1 + s.totalReturn), 1) - 1,
        meanReturn: mean(per.map((s) => s.totalReturn)) ?? 0,
        worstDrawdown: Math.max(0, ...per.map((s) => s.maxDrawdown)),
        sharpe: sharpeRatio(b, ppy),
        sharpeVsRules: strategy === 'rules' || b.length !== rules.length ? null : sharpeDifference(b, rules, { periodsPerYear: ppy, runs: settings.significanceRuns ?? 1000, seed: settings.seed ?? 1 }),
      };
    });
    const bh = rs.map((r) => r.buyAndHold).filter((x): x is number => x !== null);
    const cls = rs.map((r) => r.classifier).filter((c): c is ClassifierSummary => c !== null);
    return {
      timeframe,
      folds: rs.length,
      bars: rules.length,
      buyAndHoldCompounded: bh.length === rs.length && bh.length > 0 ? bh.reduce((a, x) => a * (1 + x), 1) - 1 : null,
      classifier: { meanAuc: mean(cls.map((c) => c.auc)), meanLogLoss: mean(cls.map((c) => c.logLoss)), meanEce: mean(cls.map((c) => c.ece)) },
      strategies,
    };
  });

  return {
    formatVersion: 1,
    created: new Date().toISOString(),
    folds,
    initialFraction,
    settings: { ...settings },
    data: input.map((s) => ({ ...s.source, path: path.basename(s.source.path) })),
    results,
    summary,
    timings: { totalMs: Math.round(performance.now() - started) },
  };
}

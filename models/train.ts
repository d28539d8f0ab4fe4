import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { computeFeatureMatrix, FEATURE_SCHEMA } from '../lib/features';
import type { RiskConfigInput } from '../lib/risk';
import { buildDataset, DEFAULT_LABELS, mergeDatasets, splitDataset, splitDatasetAt, type DatasetSplits } from './dataset';
import { exportEnsemble, metricsSummary, trainEnsemble, type EnsembleMetrics, type EntryThresholds, type TrainEnsembleOptions } from './ensemble';
import { evaluateVersion, storedEvaluation, type ClassifierSummary, type StrategyBacktest, type VersionEvaluation } from './evaluation';
import { fitFeatureNormalization, normalizeFeatures, type FeatureNormalization } from './normalization';
import { exportPolicy, loadPolicyManifest, marketFromCandles, trainPpo, type PpoMarket, type PpoMetrics, type PpoOptionsInput, type PpoPolicy } from './ppo';
import { MANIFEST_FILE, parseManifest, readManifest, sha256Hex, VersionId, type ModelManifest } from './registry';
import { backtestSeries, checkTrainingSeries, loadTrainingFiles, TrainingInputError, type SourceFile, type TrainingSeries } from './training-data';
import type { ReplayFile } from '../infra/candle-files';

export { TrainingInputError, type SourceFile, type TrainingSeries } from './training-data';
export type { ClassifierSummary, StrategyBacktest } from './evaluation';

/**
 * `trainModelVersion(files, opts)`: candle files in, one model version directory out:
 *
 *   manifest.json                          registry manifest (models/registry.ts), ppo entry included
 *   logistic.onnx random_forest.onnx gbt.onnx   the ensemble members
 *   ppo.onnx ppo.manifest.json             the PPO policy
 *   report.json report.md                  the evaluation, held-out period only
 *
 * Data. Every file is one symbol on one timeframe (all files the same timeframe). The ensemble
 * learns from the rows of every file pooled and sorted by time, split train / validation / test
 * by time with purge gaps (models/dataset.ts); the test split is the held-out period. PPO learns
 * from the FIRST file's candles before the held-out period (its environment is one series).
 * Nothing trained or calibrated reads a candle of the held-out period.
 *
 * Evaluation. Per member and for the ensemble on the held-out rows: accuracy, AUC, log loss,
 * Brier, calibration (ECE and a reliability table), and walk-forward folds (every member
 * retrained per fold). Then the strategies rules / ensemble / ppo / hybrid are backtested over
 * the held-out period with lib/backtest, the model strategies through the very signal source
 * the live traders use (ONNX Runtime over the files just written), against buy-and-hold.
 *
 * Stages and resuming. ensemble -> ppo -> evaluation -> write. Each stage leaves its result in
 * `workDir`; with `resumeAfter: stage`, the stages up to it are read back instead of recomputed
 * (training is deterministic, so this only saves time). A work dir made for other inputs is
 * wiped. The version directory appears only at the end, by one rename.
 */

export const TRAIN_STAGES = ['ensemble', 'ppo', 'evaluation', 'write'] as const;
export type TrainStage = (typeof TRAIN_STAGES)[number];

export const TrainSettings = z
  .object({
    seed: z.number().int().min(0).max(2 ** 31 - 1).default(1),
    /** The version directory to create (must not exist). */
    out: z.string().min(1).optional(),
    /** Or: create `<modelsRoot>/<version id>`. */
    modelsRoot: z.string().min(1).optional(),
    id: VersionId.optional(),
    created: z.date().optional(),
    ppoSteps: z.number().int().min(64).max(50_000_000).default(100_000),
    horizon: z.number().int().min(1).max(500).default(DEFAULT_LABELS.horizon),
    roundTripCost: z.number().min(0).lt(0.2).default(DEFAULT_LABELS.roundTripCost),
    walkForwardFolds: z.number().int().min(0).max(10).default(3),
    /** Held-out (test) and validation fractions of the dataset rows. */
    testFraction: z.number().gt(0).lt(0.5).default(0.2),
    validationFraction: z.number().gt(0).lt(0.5).default(0.2),
    /** Hold out the rows decided at or after this time (epoch ms) instead of the last testFraction (walk-forward folds). */
    heldOutFrom: z.number().int().optional(),
    /** z-score every feature with its own symbol's training statistics (models/normalization.ts). */
    normalizePerSymbol: z.boolean().default(true),
    /** Bootstrap resamples of the Sharpe-difference intervals in the evaluation. */
    significanceRuns: z.number().int().min(10).max(100_000).default(1000),
    ensemble: z.object({ forest: z.record(z.string(), z.number()).optional(), boosting: z.record(z.string(), z.number()).optional(), logistic: z.record(z.string(), z.number()).optional() }).default({}),
    /** Extra PPO options (rolloutSteps, episodeLength, ...); seed, steps and evalFrom are set here. */
    ppo: z.record(z.string(), z.unknown()).default({}),
    backtest: z
      .object({
        initialCapital: z.number().positive().default(10_000),
        feeBps: z.number().min(0).max(1000).default(10),
        slippageBps: z.number().min(0).max(1000).default(0),
        risk: z.record(z.string(), z.unknown()).optional(),
      })
      .default({ initialCapital: 10_000, feeBps: 10, slippageBps: 0 }),
    /** Checkpoints for resuming (default: `<version dir or models root>.work-<input digest>`). */
    workDir: z.string().min(1).optional(),
    resumeAfter: z.enum(TRAIN_STAGES).optional(),
  })
  .refine((s) => (s.out === undefined) !== (s.modelsRoot === undefined), { message: 'give exactly one of out (the version directory) or modelsRoot' })
  .refine((s) => s.testFraction + s.validationFraction < 0.8, { message: 'testFraction + validationFraction must leave at least 20 % of the rows for training', path: ['testFraction'] });
export type TrainSettingsInput = z.input<typeof TrainSettings>;

export interface TrainProgress {
  stage: 'data' | TrainStage;
  done: number;
  total: number;
  detail?: string;
  /** The last stage whose result is in the work dir (what a retry may resume after). */
  completed: TrainStage | null;
}

export interface TrainOptions extends TrainSettingsInput {
  onProgress?: (p: TrainProgress) => void;
  /** Called after each stage's result is saved, before the next starts (heartbeats, tests). */
  afterStage?: (stage: TrainStage) => void | Promise<void>;
  signal?: AbortSignal;
}

export interface TrainReport {
  formatVersion: 1;
  id: string;
  created: string;
  /** Of the data and settings: a walk-forward evaluation recognizes a fold it already trained. */
  inputDigest?: string;
  featureSchema: { version: number; hash: string };
  data: { timeframe: string; files: SourceFile[]; rows: number; labels: { horizon: number; roundTripCost: number } };
  splits: EnsembleMetrics['splits'];
  heldOut: { from: string; to: string };
  classifiers: {
    /** Held-out rows: calibrated members and the soft-voting ensemble. */
    test: Record<string, ClassifierSummary>;
    /** Held-out rows, members before calibration. */
    testRaw: Record<string, ClassifierSummary>;
    walkForward: { fold: number; from: string; to: string; rows: number; auc: Record<string, number>; logLoss: Record<string, number>; accuracy: Record<string, number> }[];
  };
  /** The ensemble's entry and exit thresholds, fitted on the validation rows (models/ensemble/thresholds.ts). */
  thresholds?: EntryThresholds;
  /** Symbols with their own normalization statistics (null: trained on raw features). */
  normalization?: { method: FeatureNormalization['method']; fittedBefore: string; symbols: string[] } | null;
  /** The version as served, on the held-out period: classifier, backtests, significance (models/evaluation.ts). */
  evaluation?: VersionEvaluation;
  ppo: {
    trainedOn: string;
    steps: number;
    iterations: number;
    trainSeconds: number;
    /** The PPO environment's own greedy run (fees and slippage of the env) on the held-out rows. */
    heldOut: PpoMetrics['eval'];
  };
  backtests: {
    from: string;
    to: string;
    settings: { initialCapital: number; feeBps: number; slippageBps: number };
    buyAndHold: number | null;
    strategies: StrategyBacktest[];
  };
  timings: { ensembleMs: number; ppoMs: number; evaluationMs: number; totalMs: number; resumedAfter: TrainStage | null };
  settings: Record<string, unknown>;
}

export interface TrainResult {
  dir: string;
  manifest: ModelManifest;
  report: TrainReport;
  /** The held-out evaluation with its per-bar returns, when this call computed it (not read back). */
  evaluation?: VersionEvaluation;
  /** Stages actually computed by this call (the others were read back from the work dir). */
  stagesRun: TrainStage[];
}

const WORK_STATE = 'inputs.json';
const STAGED = 'version';
const PPO_FILE = 'ppo.onnx';
const REPORT_JSON = 'report.json';
const REPORT_MD = 'report.md';
const EVALUATION = 'evaluation.json';

const iso = (ms: number) => new Date(ms).toISOString();

function digestOf(value: unknown): string {
  return sha256Hex(Buffer.from(JSON.stringify(value))).slice(0, 16);
}

function checkAborted(signal?: AbortSignal): void {
  if (signal?.aborted) throw signal.reason instanceof Error ? signal.reason : new Error('training aborted');
}

const classifierSummary = (m: ClassifierSummary): ClassifierSummary => ({ rows: m.rows, positiveRate: m.positiveRate, accuracy: m.accuracy, auc: m.auc, logLoss: m.logLoss, brier: m.brier, ece: m.ece, reliability: m.reliability });

/** One PPO market per symbol, its features normalized as the version serves them. */
function ppoMarkets(series: readonly TrainingSeries[], normalization: FeatureNormalization | undefined): PpoMarket[] {
  return series.map((f) => {
    const m = marketFromCandles(f.candles);
    if (normalization) {
      for (let r = 0; r < m.rowCount; r++) {
        const row = m.features.subarray(r * m.width, (r + 1) * m.width);
        normalizeFeatures(normalization, f.source.symbol, row, row);
      }
    }
    return m;
  });
}

const isSeries = (x: ReadonlyArray<string | ReplayFile> | readonly TrainingSeries[]): x is readonly TrainingSeries[] => x.length > 0 && typeof x[0] === 'object' && 'candles' in x[0];

export async function trainModelVersion(input: ReadonlyArray<string | ReplayFile> | readonly TrainingSeries[], options: TrainOptions): Promise<TrainResult> {
  const { onProgress, afterStage, signal, ...raw } = options;
  const parsed = TrainSettings.safeParse(raw);
  if (!parsed.success) throw new TrainingInputError(`training options: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`);
  const s = parsed.data;
  const started = performance.now();
  let completed: TrainStage | null = null;
  const progress = (stage: TrainProgress['stage'], done: number, total: number, detail?: string) => onProgress?.({ stage, done, total, detail, completed });
  const finishStage = async (stage: TrainStage) => {
    completed = stage;
    progress(stage, 1, 1, 'done');
    await afterStage?.(stage);
  };

  progress('data', 0, 1, 'reading candles');
  const loaded = Array.isArray(input) && isSeries(input) ? checkTrainingSeries(input) : loadTrainingFiles(input as ReadonlyArray<string | ReplayFile>);
  const timeframeMs = loaded[0].timeframeMs;
  const created = s.created ?? new Date();
  const settingsRecord = { ...s, created: created.toISOString(), workDir: undefined, resumeAfter: undefined, out: undefined, modelsRoot: undefined };
  const inputDigest = digestOf({ files: loaded.map((f) => f.source), settings: settingsRecord, schema: FEATURE_SCHEMA.hash });
  const base = path.resolve(s.out ?? s.modelsRoot!);
  const workDir = path.resolve(s.workDir ?? (s.out ? `${base}.work-${inputDigest}` : path.join(base, `.work-${inputDigest}`)));
  const staged = path.join(workDir, STAGED);

  // A work dir from other inputs (or none) starts over; a matching one may be resumed.
  const statePath = path.join(workDir, WORK_STATE);
  let resumeAfter: TrainStage | null = s.resumeAfter ?? null;
  const state = fs.existsSync(statePath) ? (JSON.parse(fs.readFileSync(statePath, 'utf8')) as { digest?: string }) : undefined;
  if (state?.digest !== inputDigest) {
    fs.rmSync(workDir, { recursive: true, force: true });
    resumeAfter = null;
  }
  fs.mkdirSync(workDir, { recursive: true });
  fs.writeFileSync(statePath, `${JSON.stringify({ digest: inputDigest, files: loaded.map((f) => f.source), settings: settingsRecord }, null, 2)}\n`);
  const resumable = (stage: TrainStage) => resumeAfter !== null && TRAIN_STAGES.indexOf(stage) <= TRAIN_STAGES.indexOf(resumeAfter);
  const stagesRun: TrainStage[] = [];

  const labels = { horizon: s.horizon, roundTripCost: s.roundTripCost };
  const build = (normalization?: FeatureNormalization) =>
    mergeDatasets(
      loaded.map((f) => {
        try {
          return buildDataset(f.candles, timeframeMs, labels, normalization ? (raw) => normalizeFeatures(normalization, f.source.symbol, raw) : undefined);
        } catch (err) {
          throw new TrainingInputError(`${f.source.path}: ${(err as Error).message}`);
        }
      }),
    );
  const rawDs = build();
  // The held-out period is known before anything trains: refuse data that cannot be evaluated now, not after minutes.
  let splits: DatasetSplits;
  try {
    splits = s.heldOutFrom !== undefined ? splitDatasetAt(rawDs, s.heldOutFrom, s.validationFraction) : splitDataset(rawDs, { validation: s.validationFraction, test: s.testFraction });
  } catch (err) {
    throw new TrainingInputError(`not enough data to train: ${(err as Error).message}`);
  }
  const testFrom = rawDs.timestamps[splits.test.start];
  // Statistics of the feature rows before the validation split: the training period of every symbol.
  let normalization: FeatureNormalization | undefined;
  if (s.normalizePerSymbol) {
    try {
      normalization = fitFeatureNormalization(
        loaded.map((f) => {
          const m = computeFeatureMatrix(f.candles);
          return { symbol: f.source.symbol, values: m.values.subarray(0, m.rowCount * m.width), timestamps: m.timestamps };
        }),
        rawDs.timestamps[splits.validation.start],
      );
    } catch (err) {
      throw new TrainingInputError(`not enough data to train: ${(err as Error).message}`);
    }
  }
  const ds = normalization ? build(normalization) : rawDs;
  if (ds.rows !== rawDs.rows) throw new Error(`normalized dataset has ${ds.rows} rows, the raw one ${rawDs.rows}`);
  for (const f of loaded) {
    if (f.candles[f.candles.length - 1].timestamp < testFrom) {
      throw new TrainingInputError(`${f.source.path} ends ${f.source.to}, before the held-out period starts (${iso(testFrom)}): give files that cover the same period`);
    }
  }
  progress('data', 1, 1, `${ds.rows} rows from ${loaded.length} file(s)`);
  checkAborted(signal);

  // --- ensemble ---
  let manifest: ModelManifest | undefined;
  let ensembleMs = 0;
  if (resumable('ensemble') && fs.existsSync(path.join(staged, MANIFEST_FILE))) {
    try {
      manifest = readManifest(staged);
    } catch {
      manifest = undefined;
    }
  }
  if (!manifest) {
    stagesRun.push('ensemble');
    fs.rmSync(staged, { recursive: true, force: true });
    const t0 = performance.now();
    const folds = s.walkForwardFolds;
    const fits = 1 + folds;
    const weights: Record<string, [number, number]> = { logistic: [0, 0.05], random_forest: [0.05, 0.35], gbt: [0.35, 0.95], calibration: [0.95, 1] };
    const opts: TrainEnsembleOptions = {
      seed: s.seed,
      splits,
      slippageBps: s.backtest.slippageBps,
      forest: s.ensemble.forest,
      boosting: s.ensemble.boosting,
      logistic: s.ensemble.logistic,
      walkForward: folds > 0 ? { folds } : undefined,
      onProgress: (p) => {
        const fold = /^fold (\d+)\/\d+ (.*)$/.exec(p.stage);
        const fit = fold ? Number(fold[1]) : 0;
        const sub = fold ? fold[2] : p.stage;
        const [lo, hi] = weights[sub] ?? [0, 1];
        const within = lo + (hi - lo) * (p.total > 0 ? p.done / p.total : 1);
        progress('ensemble', Math.round((1000 * (fit + within)) / fits), 1000, fold ? `walk-forward fold ${fold[1]}/${folds}: ${sub}` : sub);
      },
    };
    let trained;
    try {
      trained = trainEnsemble(ds, opts);
    } catch (err) {
      if (err instanceof RangeError || (err as Error).name === 'DatasetError') throw new TrainingInputError(`not enough data to train: ${(err as Error).message}`);
      throw err;
    }
    manifest = exportEnsemble(trained.models, staged, {
      id: s.id,
      created,
      metrics: trained.metrics,
      sources: loaded.map((f) => path.basename(f.source.path)),
      trainedOn: loaded.map((f) => ({ ...f.source, path: path.basename(f.source.path) })),
      normalization,
    });
    ensembleMs = Math.round(performance.now() - t0);
    await finishStage('ensemble');
  } else {
    completed = 'ensemble';
  }
  checkAborted(signal);
  const metrics = manifest.metrics as unknown as EnsembleMetrics & { summary: Record<string, unknown> };
  const heldOutFrom = metrics.splits.test.from;

  // --- ppo ---
  const ppoPath = path.join(staged, PPO_FILE);
  let policy: PpoPolicy | undefined;
  let ppoMetrics: PpoMetrics | undefined;
  let ppoMs = 0;
  if (resumable('ppo')) {
    try {
      const back = loadPolicyManifest(ppoPath);
      policy = back.policy;
      ppoMetrics = back.manifest.metrics as unknown as PpoMetrics;
    } catch {
      policy = undefined;
    }
  }
  if (!policy || !ppoMetrics) {
    stagesRun.push('ppo');
    const t0 = performance.now();
    const ppoOpts = { ...(s.ppo as Partial<PpoOptionsInput>), seed: s.seed, steps: s.ppoSteps, evalFrom: heldOutFrom } as PpoOptionsInput;
    let r;
    try {
      r = await trainPpo({ markets: ppoMarkets(loaded, manifest.normalization) }, ppoOpts, (p) => progress('ppo', p.iteration, p.iterations, `${p.steps}/${p.totalSteps} steps`), signal);
    } catch (err) {
      if ((err as Error).name === 'PpoDataError' || (err instanceof RangeError && /PPO options/.test((err as Error).message))) throw new TrainingInputError(`PPO: ${(err as Error).message}`);
      throw err;
    }
    policy = r.policy;
    ppoMetrics = { ...r.metrics, history: r.metrics.history.slice(-5) };
    exportPolicy(policy, ppoPath, ppoMetrics);
    ppoMs = Math.round(performance.now() - t0);
    await finishStage('ppo');
  } else {
    completed = 'ppo';
  }
  checkAborted(signal);
  const ppoSha = sha256Hex(fs.readFileSync(ppoPath));
  // The staged version names its policy, so the signal source can serve it for the backtests.
  const stagedManifest = parseManifest({ ...manifest, ppo: { file: PPO_FILE, sha256: ppoSha, manifest: path.basename(ppoPath).replace(/\.onnx$/, '.manifest.json') } });
  fs.writeFileSync(path.join(staged, MANIFEST_FILE), `${JSON.stringify(stagedManifest, null, 2)}\n`);

  // --- evaluation ---
  const evalPath = path.join(workDir, EVALUATION);
  let evaluation: VersionEvaluation | undefined;
  let full: VersionEvaluation | undefined;
  let evaluationMs = 0;
  if (resumable('evaluation') && fs.existsSync(evalPath)) {
    evaluation = JSON.parse(fs.readFileSync(evalPath, 'utf8')) as VersionEvaluation;
  }
  if (!evaluation) {
    stagesRun.push('evaluation');
    const t0 = performance.now();
    const bt = { initialCapital: s.backtest.initialCapital, feeBps: s.backtest.feeBps, slippageBps: s.backtest.slippageBps };
    progress('evaluation', 0, 5, 'classifier and backtests over the held-out period');
    full = await evaluateVersion(staged, backtestSeries(loaded), heldOutFrom, { ...bt, risk: s.backtest.risk as RiskConfigInput | undefined, seed: s.seed, significanceRuns: s.significanceRuns }, undefined, (d, t, what) => progress('evaluation', d, t, what));
    evaluation = storedEvaluation(full);
    fs.writeFileSync(evalPath, `${JSON.stringify(evaluation, null, 2)}\n`);
    evaluationMs = Math.round(performance.now() - t0);
    await finishStage('evaluation');
  } else {
    completed = 'evaluation';
  }
  checkAborted(signal);

  // --- write ---
  stagesRun.push('write');
  const report: TrainReport = {
    formatVersion: 1,
    id: manifest.id,
    created: manifest.created,
    inputDigest,
    featureSchema: { version: FEATURE_SCHEMA.version, hash: FEATURE_SCHEMA.hash },
    // File names, not paths: a report travels with its version (and the bootstrap one is committed).
    data: { timeframe: loaded[0].source.timeframe, files: loaded.map((f) => ({ ...f.source, path: path.basename(f.source.path) })), rows: ds.rows, labels: { horizon: s.horizon, roundTripCost: s.roundTripCost } },
    splits: metrics.splits,
    heldOut: { from: iso(heldOutFrom), to: evaluation.to },
    classifiers: {
      test: Object.fromEntries(Object.entries(metrics.test).map(([k, v]) => [k, classifierSummary(v)])),
      testRaw: Object.fromEntries(Object.entries(metrics.testRaw).map(([k, v]) => [k, classifierSummary(v)])),
      walkForward: (metrics.walkForward ?? []).map((f) => ({
        fold: f.fold,
        from: iso(f.test.from),
        to: iso(f.test.to),
        rows: f.test.end - f.test.start,
        auc: Object.fromEntries(Object.entries(f.metrics).map(([k, v]) => [k, v.auc])),
        logLoss: Object.fromEntries(Object.entries(f.metrics).map(([k, v]) => [k, v.logLoss])),
        accuracy: Object.fromEntries(Object.entries(f.metrics).map(([k, v]) => [k, v.accuracy])),
      })),
    },
    thresholds: stagedManifest.ensemble.thresholds as EntryThresholds | undefined,
    normalization: stagedManifest.normalization ? { method: stagedManifest.normalization.method, fittedBefore: stagedManifest.normalization.fittedBefore, symbols: Object.keys(stagedManifest.normalization.symbols) } : null,
    evaluation,
    ppo: { trainedOn: loaded.map((f) => path.basename(f.source.path)).join(', '), steps: ppoMetrics.steps, iterations: ppoMetrics.iterations, trainSeconds: ppoMetrics.trainSeconds, heldOut: ppoMetrics.eval },
    backtests: { from: evaluation.from, to: evaluation.to, settings: evaluation.settings, buyAndHold: evaluation.buyAndHold, strategies: evaluation.strategies },
    timings: { ensembleMs, ppoMs, evaluationMs, totalMs: Math.round(performance.now() - started), resumedAfter: resumeAfter },
    settings: settingsRecord,
  };
  const headline = Object.fromEntries(evaluation.strategies.map((b) => [b.strategy, { totalReturn: b.totalReturn, maxDrawdown: b.maxDrawdown, trades: b.trades }]));
  const finalManifest = parseManifest({
    ...stagedManifest,
    metrics: {
      ...stagedManifest.metrics,
      summary: { ...metricsSummary(metrics), heldOutBacktest: { from: iso(heldOutFrom), buyAndHold: evaluation.buyAndHold, ...headline } },
      ppo: { steps: ppoMetrics.steps, trainSeconds: ppoMetrics.trainSeconds, heldOut: ppoMetrics.eval },
    },
  });
  fs.writeFileSync(path.join(staged, REPORT_JSON), `${JSON.stringify(report, null, 2)}\n`);
  fs.writeFileSync(path.join(staged, REPORT_MD), renderReport(report));
  fs.writeFileSync(path.join(staged, MANIFEST_FILE), `${JSON.stringify(finalManifest, null, 2)}\n`);

  const target = s.out ? base : path.join(base, finalManifest.id);
  if (fs.existsSync(target)) {
    // A retry that already renamed: the same version is there.
    const there = (() => {
      try {
        return readManifest(target);
      } catch {
        return undefined;
      }
    })();
    if (there?.id !== finalManifest.id || there.members.some((m, i) => m.sha256 !== finalManifest.members[i]?.sha256)) {
      throw new TrainingInputError(`${target} already exists: model versions are immutable; choose another --out`);
    }
  } else {
    fs.mkdirSync(path.dirname(target), { recursive: true });
    fs.renameSync(staged, target);
  }
  fs.rmSync(workDir, { recursive: true, force: true });
  progress('write', 1, 1, target);
  completed = 'write';
  await afterStage?.('write');
  return { dir: target, manifest: readManifest(target), report, stagesRun, ...(full ? { evaluation: full } : {}) };
}

// --- report.md -------------------------------------------------------------------------------------

const pct = (x: number | null | undefined) => (x === null || x === undefined ? 'n/a' : `${x >= 0 ? '+' : ''}${(x * 100).toFixed(2)} %`);
const f4 = (x: number | null | undefined) => (x === null || x === undefined ? 'n/a' : x.toFixed(4));
const f2 = (x: number | null | undefined) => (x === null || x === undefined ? 'n/a' : x.toFixed(2));

function mdTable(head: string[], rows: string[][]): string[] {
  return [`| ${head.join(' | ')} |`, `|${head.map((_, i) => (i === 0 ? '---' : '---:')).join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)];
}

export function renderReport(r: TrainReport): string {
  const models = Object.keys(r.classifiers.test);
  const lines = [
    `# Model ${r.id}`,
    '',
    `Created ${r.created}. Feature schema v${r.featureSchema.version} (${r.featureSchema.hash.slice(0, 12)}).`,
    `Data: ${r.data.files.map((f) => `${f.symbol} ${f.timeframe} (${f.candles} candles, ${f.from.slice(0, 10)} .. ${f.to.slice(0, 10)})`).join(', ')}; ${r.data.rows} dataset rows.`,
    `Label: long over ${r.data.labels.horizon} candles beats a round trip of ${(r.data.labels.roundTripCost * 100).toFixed(2)} %.`,
    `Splits by time (purged): train ${r.splits.train.end - r.splits.train.start} rows to ${iso(r.splits.train.to).slice(0, 16)}, validation ${r.splits.validation.end - r.splits.validation.start} rows, held-out test ${r.splits.test.end - r.splits.test.start} rows from ${r.heldOut.from.slice(0, 16)}.`,
    r.normalization
      ? `Features z-scored per symbol (${r.normalization.symbols.join(', ')}) with each symbol's statistics before ${r.normalization.fittedBefore.slice(0, 16)} (the training split).`
      : 'Features as computed (no per-symbol normalization).',
    ...(r.thresholds
      ? [
          `Ensemble thresholds fitted on the validation rows: enter at P(up) >= ${r.thresholds.enterProb.toFixed(4)}, leave at <= ${r.thresholds.exitProb.toFixed(4)} ` +
            `(base rate ${f4(r.thresholds.baseRate)}; at the entry threshold: ${(r.thresholds.validation.coverage * 100).toFixed(1)} % of the validation rows, hit rate ${f4(r.thresholds.validation.hitRate)}, ` +
            `mean forward log return after costs ${f4(r.thresholds.validation.meanNetLogReturn)}${r.thresholds.validation.meanNetLogReturn <= 0 ? ': no edge on the validation rows' : ''}).`,
        ]
      : []),
    '',
    '## Classifiers on the held-out rows',
    '',
    'Calibrated (Platt on the validation split) members and the soft-voting ensemble. Accuracy at 0.5; ECE over 10 bins.',
    '',
    ...mdTable(
      ['model', 'rows', 'positive rate', 'accuracy', 'AUC', 'log loss', 'Brier', 'ECE'],
      models.map((k) => {
        const m = r.classifiers.test[k];
        return [k, String(m.rows), f4(m.positiveRate), f4(m.accuracy), f4(m.auc), f4(m.logLoss), f4(m.brier), f4(m.ece)];
      }),
    ),
    '',
    'Members before calibration:',
    '',
    ...mdTable(
      ['model', 'accuracy', 'AUC', 'log loss', 'ECE'],
      Object.entries(r.classifiers.testRaw).map(([k, m]) => [k, f4(m.accuracy), f4(m.auc), f4(m.logLoss), f4(m.ece)]),
    ),
    '',
    '### Calibration of the ensemble (held-out)',
    '',
    ...mdTable(
      ['P(up) bin', 'rows', 'mean predicted', 'observed rate'],
      (r.classifiers.test.ensemble?.reliability ?? []).filter((b) => b.count > 0).map((b) => [`${b.lo.toFixed(1)}-${b.hi.toFixed(1)}`, String(b.count), f4(b.meanPredicted), f4(b.observedRate)]),
    ),
    '',
  ];
  if (r.classifiers.walkForward.length > 0) {
    lines.push(
      '### Walk-forward (every member retrained per fold, expanding window)',
      '',
      ...mdTable(
        ['fold', 'test period', 'rows', ...models.map((m) => `AUC ${m}`)],
        r.classifiers.walkForward.map((f) => [String(f.fold + 1), `${f.from.slice(0, 10)} .. ${f.to.slice(0, 10)}`, String(f.rows), ...models.map((m) => f4(f.auc[m]))]),
      ),
      '',
    );
  }
  const b = r.backtests;
  lines.push(
    '## Out-of-sample backtests',
    '',
    `Held-out period ${b.from.slice(0, 16)} .. ${b.to.slice(0, 16)} UTC; lib/backtest (paper exchange, risk module), capital ${b.settings.initialCapital}, fees ${b.settings.feeBps} bps, slippage ${b.settings.slippageBps} bps. Model strategies served by ONNX Runtime through models/signal.ts.`,
    `Buy and hold (before fees): ${pct(b.buyAndHold)}.`,
    '',
    ...mdTable(
      ['strategy', 'return', 'max drawdown', 'sharpe', 'sharpe - rules [95 % CI]', 'trades', 'win rate', 'exposure', 'fees', 'vs buy and hold'],
      b.strategies.map((s) => [
        s.strategy,
        pct(s.totalReturn),
        pct(-s.maxDrawdown),
        f2(s.sharpe),
        s.sharpeVsRules ? `${f2(s.sharpeVsRules.observed)} [${f2(s.sharpeVsRules.low)}, ${f2(s.sharpeVsRules.high)}]` : '-',
        String(s.trades),
        s.winRate === null ? 'n/a' : `${(s.winRate * 100).toFixed(1)} %`,
        `${(s.exposure * 100).toFixed(1)} %`,
        f2(s.totalFees),
        b.buyAndHold === null ? 'n/a' : pct(s.totalReturn - b.buyAndHold),
      ]),
    ),
    '',
    'Sharpe - rules: the paired block-bootstrap 95 % interval of the strategy\'s Sharpe ratio minus the rules\' over the same bars; an interval that contains 0 is no evidence either way.',
    ...(r.evaluation?.classifier
      ? ['', `The ensemble as served (ONNX Runtime) on the held-out rows: AUC ${f4(r.evaluation.classifier.auc)}, log loss ${f4(r.evaluation.classifier.logLoss)}, ECE ${f4(r.evaluation.classifier.ece)} over ${r.evaluation.classifier.rows} rows.`]
      : []),
    '',
    `PPO policy (${r.ppo.steps} steps, ${r.ppo.trainSeconds.toFixed(1)} s, trained on ${r.ppo.trainedOn} before the held-out period), in its own environment over the held-out rows: ` +
      (r.ppo.heldOut
        ? `policy ${pct(r.ppo.heldOut.policy.totalReturn)} (max drawdown ${pct(-r.ppo.heldOut.policy.maxDrawdown)}, ${r.ppo.heldOut.policy.trades} position changes, exposure ${(r.ppo.heldOut.policy.exposure * 100).toFixed(1)} %) vs buy and hold ${pct(r.ppo.heldOut.buyHold.totalReturn)}, fees and slippage included.`
        : 'no held-out rows.'),
    '',
    `Timings: ensemble ${(r.timings.ensembleMs / 1000).toFixed(1)} s, PPO ${(r.timings.ppoMs / 1000).toFixed(1)} s, evaluation ${(r.timings.evaluationMs / 1000).toFixed(1)} s, total ${(r.timings.totalMs / 1000).toFixed(1)} s${r.timings.resumedAfter ? ` (resumed after ${r.timings.resumedAfter})` : ''}.`,
    '',
  );
  return lines.join('\n');
}

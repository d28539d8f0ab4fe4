import { sliceDataset, splitDataset, walkForwardFolds, type Dataset, type DatasetSplits, type RowRange } from '../dataset';
import { calibrate, fitPlatt, type PlattCalibration } from './calibration';
import { predictRandomForest, trainRandomForest, type RandomForestModel, type RandomForestParams } from './forest';
import { predictGradientBoosting, trainGradientBoosting, type GradientBoostingModel, type GradientBoostingParams } from './gbt';
import { predictLogistic, trainLogistic, type LogisticModel, type LogisticParams } from './logistic';
import { classifierMetrics, type ClassifierMetrics } from './metrics';
import { fitEntryThresholds, type EntryThresholds } from './thresholds';

export * from './calibration';
export * from './forest';
export * from './gbt';
export * from './logistic';
export * from './metrics';
export * from './onnx-export';
export * from './thresholds';
export { type Tree, treeDepth } from './trees';

export const MEMBER_NAMES = ['logistic', 'random_forest', 'gbt'] as const;
export type MemberName = (typeof MEMBER_NAMES)[number];
export type MemberModel = LogisticModel | RandomForestModel | GradientBoostingModel;

export interface EnsembleMember {
  name: MemberName;
  model: MemberModel;
  /** Fitted on the validation split, applied to the member's raw probability. */
  calibration: PlattCalibration;
}

export interface EnsembleModel {
  members: EnsembleMember[];
  inputNames: readonly string[];
  width: number;
  featureSchema: { version: number; hash: string };
  labels: Dataset['labels'];
  timeframeMs: number;
  /** probUp at or above this -> action 'long' (= thresholds.enterProb). */
  longThreshold: number;
  /** Entry and exit thresholds fitted on the validation rows (models/ensemble/thresholds.ts). */
  thresholds: EntryThresholds;
  seed: number;
  /** Time span of the rows used (first decision candle .. last candle a label read), epoch ms. */
  data: { from: number; to: number; rows: { train: number; validation: number; test: number } };
}

export interface TrainEnsembleOptions {
  seed?: number;
  /** Row ranges, or fractions for splitDataset (default 0.2 / 0.2). */
  splits?: DatasetSplits | { validation: number; test: number };
  logistic?: Partial<LogisticParams>;
  forest?: Partial<Omit<RandomForestParams, 'seed'>>;
  boosting?: Partial<Omit<GradientBoostingParams, 'seed'>>;
  /** Slippage per fill (bps) added to the label's round-trip cost when thresholds weigh expected value. */
  slippageBps?: number;
  /** Also evaluate by walk-forward folds (retrains every member per fold). */
  walkForward?: { folds: number; initialFraction?: number };
  onProgress?: (p: { stage: string; done: number; total: number }) => void;
}

export type MemberMetrics = Record<MemberName | 'ensemble', ClassifierMetrics>;

export interface EnsembleMetrics {
  splits: Record<keyof DatasetSplits, RowRange & { from: number; to: number }>;
  /** Calibrated members and the ensemble on the validation split (in-sample for calibration). */
  validation: MemberMetrics;
  /** Out of sample. */
  test: MemberMetrics;
  /** Uncalibrated members on the test split, to show what calibration changed. */
  testRaw: Record<MemberName, ClassifierMetrics>;
  walkForward?: { fold: number; test: RowRange & { from: number; to: number }; metrics: MemberMetrics }[];
  trainingMs: Record<MemberName, number>;
}

export function predictMemberRaw(model: MemberModel, X: Float32Array, rows: number): Float64Array {
  if (X.length < rows * model.width) throw new RangeError(`need ${rows} rows of ${model.width} features, got ${X.length} values`);
  switch (model.kind) {
    case 'logistic':
      return predictLogistic(model, X, rows);
    case 'random_forest':
      return predictRandomForest(model, X, rows);
    case 'gbt':
      return predictGradientBoosting(model, X, rows);
  }
}

/**
 * Soft voting: probUp is the mean of the members' calibrated probabilities. Agreement is
 * 1 - (max - min) of the members. Confidence (what sizes a position) is the margin from a coin
 * flip, discounted by disagreement: |2 probUp - 1| * agreement. Members that agree on 0.7 give
 * 0.4; one at 0.9 and one at 0.5 (same mean) give 0.4 * 0.6.
 *
 * The coin-flip margin suits a fixed 0.55 entry. A version with fitted thresholds enters near
 * the label's base rate (~0.35), where that margin would size every position to almost nothing;
 * its signal's confidence is the agreement alone (models/inference.ts): the thresholds decide
 * whether to enter, the members' agreement how much.
 */
export function combineMembers(calibrated: ArrayLike<number>): { probUp: number; confidence: number; agreement: number } {
  let sum = 0;
  let min = Infinity;
  let max = -Infinity;
  for (let i = 0; i < calibrated.length; i++) {
    const p = calibrated[i];
    sum += p;
    if (p < min) min = p;
    if (p > max) max = p;
  }
  const probUp = sum / calibrated.length;
  const agreement = 1 - (max - min);
  return { probUp, confidence: Math.abs(2 * probUp - 1) * agreement, agreement };
}

export interface EnsemblePrediction {
  probUp: Float64Array;
  confidence: Float64Array;
  agreement: Float64Array;
  /** Calibrated probability of each member, in `members` order. */
  members: Float64Array[];
}

export function predictEnsemble(model: EnsembleModel, X: Float32Array, rows: number): EnsemblePrediction {
  const members = model.members.map((m) => predictMemberRaw(m.model, X, rows).map((p) => calibrate(m.calibration, p)));
  const probUp = new Float64Array(rows);
  const confidence = new Float64Array(rows);
  const agreement = new Float64Array(rows);
  const row = new Float64Array(members.length);
  for (let r = 0; r < rows; r++) {
    for (let k = 0; k < members.length; k++) row[k] = members[k][r];
    const c = combineMembers(row);
    probUp[r] = c.probUp;
    confidence[r] = c.confidence;
    agreement[r] = c.agreement;
  }
  return { probUp, confidence, agreement, members };
}

function memberMetrics(model: EnsembleModel, ds: Dataset): MemberMetrics {
  const pred = predictEnsemble(model, ds.X, ds.rows);
  const out = { ensemble: classifierMetrics(pred.probUp, ds.y) } as MemberMetrics;
  model.members.forEach((m, k) => (out[m.name] = classifierMetrics(pred.members[k], ds.y)));
  return out;
}

interface FitResult {
  model: EnsembleModel;
  trainingMs: Record<MemberName, number>;
}

function fit(ds: Dataset, splits: DatasetSplits, opts: TrainEnsembleOptions, progress: (stage: string, done: number, total: number) => void): FitResult {
  const seed = opts.seed ?? 1;
  const train = sliceDataset(ds, splits.train);
  const validation = sliceDataset(ds, splits.validation);
  const trainingMs = {} as Record<MemberName, number>;
  const timed = <T>(name: MemberName, f: () => T): T => {
    const t0 = performance.now();
    const r = f();
    trainingMs[name] = Math.round(performance.now() - t0);
    return r;
  };
  progress('logistic', 0, 1);
  const logistic = timed('logistic', () => trainLogistic(train, opts.logistic));
  progress('logistic', 1, 1);
  const forest = timed('random_forest', () => trainRandomForest(train, { ...opts.forest, seed }, (d, t) => progress('random_forest', d, t)));
  const gbt = timed('gbt', () => trainGradientBoosting(train, { ...opts.boosting, seed: seed + 1 }, (d, t) => progress('gbt', d, t)));
  const members: EnsembleMember[] = [
    { name: 'logistic', model: logistic },
    { name: 'random_forest', model: forest },
    { name: 'gbt', model: gbt },
  ].map((m) => ({ ...m, calibration: fitPlatt(predictMemberRaw(m.model, validation.X, validation.rows), validation.y) }) as EnsembleMember);
  progress('calibration', 1, 1);
  const calibrated = members.map((m) => predictMemberRaw(m.model, validation.X, validation.rows).map((p) => calibrate(m.calibration, p)));
  const vote = new Float64Array(validation.rows);
  const row = new Float64Array(members.length);
  for (let r = 0; r < validation.rows; r++) {
    for (let k = 0; k < members.length; k++) row[k] = calibrated[k][r];
    vote[r] = combineMembers(row).probUp;
  }
  const slippage = (opts.slippageBps ?? 0) / 10_000;
  const thresholds = fitEntryThresholds(vote, validation.y, validation.forwardLogReturn, ds.labels.costLogReturn - 2 * Math.log(1 - slippage));
  const longThreshold = thresholds.enterProb;
  return {
    trainingMs,
    model: {
      members,
      inputNames: ds.inputNames,
      width: ds.width,
      featureSchema: ds.featureSchema,
      labels: ds.labels,
      timeframeMs: ds.timeframeMs,
      longThreshold,
      thresholds,
      seed,
      data: {
        from: ds.timestamps[splits.train.start],
        to: ds.labelEnd[splits.test.end - 1],
        rows: { train: splits.train.end - splits.train.start, validation: splits.validation.end - splits.validation.start, test: splits.test.end - splits.test.start },
      },
    },
  };
}

const span = (ds: Dataset, r: RowRange) => ({ ...r, from: ds.timestamps[r.start], to: ds.labelEnd[r.end - 1] });

/**
 * Trains the three members on the train split, calibrates each on the validation split and
 * evaluates everything on the test split (and, if asked, by walk-forward folds).
 * Same dataset + same options -> identical models, bit for bit.
 */
export function trainEnsemble(ds: Dataset, opts: TrainEnsembleOptions = {}): { models: EnsembleModel; metrics: EnsembleMetrics } {
  const splits = opts.splits && 'train' in opts.splits ? opts.splits : splitDataset(ds, opts.splits);
  const progress = (stage: string, done: number, total: number) => opts.onProgress?.({ stage, done, total });
  const { model, trainingMs } = fit(ds, splits, opts, progress);
  const test = sliceDataset(ds, splits.test);
  const testRaw = {} as Record<MemberName, ClassifierMetrics>;
  for (const m of model.members) testRaw[m.name] = classifierMetrics(predictMemberRaw(m.model, test.X, test.rows), test.y);
  const metrics: EnsembleMetrics = {
    splits: { train: span(ds, splits.train), validation: span(ds, splits.validation), test: span(ds, splits.test) },
    validation: memberMetrics(model, sliceDataset(ds, splits.validation)),
    test: memberMetrics(model, test),
    testRaw,
    trainingMs,
  };
  if (opts.walkForward) {
    const folds = walkForwardFolds(ds, opts.walkForward);
    metrics.walkForward = folds.map((f) => {
      const r = fit(ds, f, opts, (stage, done, total) => progress(`fold ${f.fold + 1}/${folds.length} ${stage}`, done, total));
      return { fold: f.fold, test: span(ds, f.test), metrics: memberMetrics(r.model, sliceDataset(ds, f.test)) };
    });
  }
  return { models: model, metrics };
}
export { exportEnsemble, memberToOnnx, metricsSummary, type ExportOptions } from './export';

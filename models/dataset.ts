import type { Candle } from '../lib/candles';
import { computeFeatureMatrix, FEATURE_SCHEMA, featureIndex, FEATURE_PARAMS } from '../lib/features';
import { classifyRegime, REGIMES } from '../lib/regime';
import { costLogReturn as costLogReturnOf, DEFAULT_LABELS, forwardLabel, type LabelOptions } from '../lib/model-labels';

export { DEFAULT_LABELS, type LabelOptions };

/**
 * Supervised datasets from candles: one row per decision candle, features from the feature
 * pipeline (closed candles up to and including that candle), a label from the candles after it.
 *
 * Label: 1 when a long entered at the decision candle's close and exited H candles later would
 * have made money after a round trip of fees: ln(close[t+H] / close[t]) > costLogReturn. Binary
 * and net of fees because the decision it feeds is binary (long or flat) and fees are what turn
 * a coin-flip edge into a loss. Triple-barrier labels were not chosen: their barriers are the
 * risk module's stop-loss and take-profit, which the operator tunes after training, so labels
 * would silently go stale with every risk change.
 *
 * The label is the only place the future is read. A row exists only when its whole label window
 * is in the data and gap-free (candle t+H opens exactly H timeframes after candle t).
 */

/** Model input columns: the schema minus its price-unit column (`atr_14`: not scale-free,
 *  `atr_pct_14` carries the same information), plus the regime as one-hot columns. */
const EXCLUDED_SCHEMA_COLUMNS = [`atr_${FEATURE_PARAMS.atrPeriod}`];
const SCHEMA_COLUMNS = FEATURE_SCHEMA.names.map((_, i) => i).filter((i) => !EXCLUDED_SCHEMA_COLUMNS.includes(FEATURE_SCHEMA.names[i]));
for (const name of EXCLUDED_SCHEMA_COLUMNS) featureIndex(name); // a renamed column must fail loudly, not be kept

export const MODEL_INPUT_NAMES: readonly string[] = Object.freeze([
  ...SCHEMA_COLUMNS.map((i) => FEATURE_SCHEMA.names[i]),
  ...REGIMES.map((r) => `regime_${r}`),
]);
export const MODEL_INPUT_WIDTH = MODEL_INPUT_NAMES.length;

export class DatasetError extends Error {
  override name = 'DatasetError';
}

/**
 * One FEATURE_SCHEMA vector -> the model's input row (float32: ONNX Runtime reads float32, and
 * training on the same rounded values keeps tree thresholds and TS/ONNX outputs identical).
 * `normalized`: the same vector normalized per symbol (models/normalization.ts), whose columns
 * the row takes instead; the regime is always read from the raw vector.
 * Returns undefined when the vector has the wrong width or a non-finite value.
 */
export function toModelRow(features: ArrayLike<number>, out: Float32Array = new Float32Array(MODEL_INPUT_WIDTH), offset = 0, normalized: ArrayLike<number> = features): Float32Array | undefined {
  if (features.length !== FEATURE_SCHEMA.width || normalized.length !== FEATURE_SCHEMA.width) return undefined;
  for (let i = 0; i < features.length; i++) if (!Number.isFinite(features[i]) || !Number.isFinite(normalized[i])) return undefined;
  let k = offset;
  for (const i of SCHEMA_COLUMNS) out[k++] = normalized[i];
  const code = classifyRegime(features).code;
  for (let r = 0; r < REGIMES.length; r++) out[k++] = r === code ? 1 : 0;
  return out;
}

export interface Dataset {
  /** Model input layout (MODEL_INPUT_NAMES) and the feature schema it was computed with. */
  inputNames: readonly string[];
  featureSchema: { version: number; hash: string };
  labels: LabelOptions & { kind: 'forward_return_net_of_cost'; costLogReturn: number };
  timeframeMs: number;
  width: number;
  rows: number;
  /** Row-major rows x width. */
  X: Float32Array;
  /** 1 = the forward return beat the round-trip cost. */
  y: Uint8Array;
  /** ln(close[t+H] / close[t]), gross; for evaluation and backtests, never an input. */
  forwardLogReturn: Float64Array;
  /** Open time of the decision candle (the last candle the row's features saw). */
  timestamps: Float64Array;
  /** Open time of the last candle the label read (candle t+H). */
  labelEnd: Float64Array;
}

/**
 * Builds the dataset of one candle series (sorted, de-duplicated, closed: pass it through
 * checkCandles first). Warm-up rows (incomplete features) and rows whose label window is cut by
 * the end of the data or by a gap are dropped.
 */
export function buildDataset(candles: readonly Candle[], timeframeMs: number, opts: Partial<LabelOptions> = {}, normalize?: (features: ArrayLike<number>) => ArrayLike<number>): Dataset {
  const labels = { ...DEFAULT_LABELS, ...opts };
  const { horizon, roundTripCost } = labels;
  if (!(Number.isInteger(horizon) && horizon >= 1)) throw new DatasetError(`horizon must be a positive integer of candles, got ${horizon}`);
  if (!(Number.isFinite(roundTripCost) && roundTripCost >= 0 && roundTripCost < 1)) throw new DatasetError(`roundTripCost must be a fraction in [0, 1), got ${roundTripCost}`);
  if (!(Number.isSafeInteger(timeframeMs) && timeframeMs > 0)) throw new DatasetError(`timeframeMs must be a positive integer, got ${timeframeMs}`);
  const matrix = computeFeatureMatrix(candles);
  const costLogReturn = costLogReturnOf(roundTripCost);
  const width = MODEL_INPUT_WIDTH;
  const X = new Float32Array(matrix.rowCount * width);
  const y = new Uint8Array(matrix.rowCount);
  const fwd = new Float64Array(matrix.rowCount);
  const ts = new Float64Array(matrix.rowCount);
  const end = new Float64Array(matrix.rowCount);
  let n = 0;
  for (let k = 0; k < matrix.rowCount; k++) {
    const t = matrix.warmup + k;
    const exit = t + horizon;
    if (exit >= candles.length) break;
    if (candles[exit].timestamp - candles[t].timestamp !== horizon * timeframeMs) continue;
    const row = matrix.values.subarray(k * matrix.width, (k + 1) * matrix.width);
    if (!toModelRow(row, X, n * width, normalize ? normalize(row) : row)) continue;
    const label = forwardLabel(candles[t].close, candles[exit].close, roundTripCost);
    fwd[n] = label.logReturn;
    y[n] = label.up ? 1 : 0;
    ts[n] = candles[t].timestamp;
    end[n] = candles[exit].timestamp;
    n++;
  }
  if (n === 0) throw new DatasetError(`no complete rows: ${candles.length} candles, warm-up ${matrix.warmup}, horizon ${horizon}`);
  return {
    inputNames: MODEL_INPUT_NAMES,
    featureSchema: { version: FEATURE_SCHEMA.version, hash: FEATURE_SCHEMA.hash },
    labels: { ...labels, kind: 'forward_return_net_of_cost', costLogReturn },
    timeframeMs,
    width,
    rows: n,
    X: X.slice(0, n * width),
    y: y.slice(0, n),
    forwardLogReturn: fwd.slice(0, n),
    timestamps: ts.slice(0, n),
    labelEnd: end.slice(0, n),
  };
}

/** A contiguous, time-ordered run of dataset rows [start, end). */
export interface RowRange {
  start: number;
  end: number;
}

export interface DatasetSplits {
  train: RowRange;
  validation: RowRange;
  test: RowRange;
}

const rangeLength = (r: RowRange) => r.end - r.start;

/**
 * Drops rows from the end of `before` until the last one's label window closes strictly before
 * the first row of `after` is decided: no training label reads a candle the next split's
 * features (or labels) were built from. With gap-free data this removes exactly `horizon` rows.
 */
function purgeBefore(ds: Dataset, before: RowRange, afterStart: number): RowRange {
  let end = before.end;
  while (end > before.start && ds.labelEnd[end - 1] >= ds.timestamps[afterStart]) end--;
  return { start: before.start, end };
}

/**
 * Time-ordered train / validation / test split by fractions of rows, with a purge gap of at
 * least the label horizon at each boundary (see purgeBefore).
 */
export function splitDataset(ds: Dataset, fractions: { validation: number; test: number } = { validation: 0.2, test: 0.2 }): DatasetSplits {
  const { validation, test } = fractions;
  if (!(validation > 0 && test > 0 && validation + test < 1)) throw new DatasetError(`validation and test fractions must be > 0 and sum below 1, got ${validation} and ${test}`);
  const testStart = Math.floor(ds.rows * (1 - test));
  const valStart = Math.floor(ds.rows * (1 - test - validation));
  const splits = {
    train: purgeBefore(ds, { start: 0, end: valStart }, valStart),
    validation: purgeBefore(ds, { start: valStart, end: testStart }, testStart),
    test: { start: testStart, end: ds.rows },
  };
  checkSplits(ds, splits);
  return splits;
}

/**
 * The split when the held-out period is given by time: test = the rows decided at or after
 * `from`, validation = the last `validation` fraction of the rows before it, train = the rest;
 * purged as in splitDataset. (Walk-forward evaluation gives each fold's start this way.)
 */
export function splitDatasetAt(ds: Dataset, from: number, validation = 0.2): DatasetSplits {
  if (!(validation > 0 && validation < 1)) throw new DatasetError(`validation fraction must be in (0, 1), got ${validation}`);
  let testStart = 0;
  while (testStart < ds.rows && ds.timestamps[testStart] < from) testStart++;
  const valStart = Math.floor(testStart * (1 - validation));
  const splits = {
    train: purgeBefore(ds, { start: 0, end: valStart }, valStart),
    validation: purgeBefore(ds, { start: valStart, end: testStart }, Math.min(testStart, ds.rows - 1)),
    test: { start: testStart, end: ds.rows },
  };
  checkSplits(ds, splits);
  return splits;
}

function checkSplits(ds: Dataset, s: DatasetSplits): void {
  for (const [name, r] of Object.entries(s)) {
    if (rangeLength(r) < 50) throw new DatasetError(`${name} split has ${rangeLength(r)} rows after purging; need at least 50 (dataset has ${ds.rows} rows)`);
  }
}

export interface WalkForwardFold extends DatasetSplits {
  fold: number;
}

/**
 * Expanding-window walk-forward folds: the rows after an initial block are cut into `folds`
 * consecutive test blocks; fold k trains on everything before its validation block, calibrates
 * on the validation block (the `validation` fraction of the rows before the test block) and is
 * tested on its test block. Every boundary is purged as in splitDataset, so no fold's training
 * or validation label reads a candle its test block was decided on.
 */
export function walkForwardFolds(ds: Dataset, opts: { folds: number; initialFraction?: number; validation?: number } = { folds: 4 }): WalkForwardFold[] {
  const folds = opts.folds;
  const initial = opts.initialFraction ?? 0.5;
  const valFraction = opts.validation ?? 0.2;
  if (!(Number.isInteger(folds) && folds >= 1)) throw new DatasetError(`folds must be a positive integer, got ${folds}`);
  if (!(initial > 0 && initial < 1)) throw new DatasetError(`initialFraction must be in (0, 1), got ${initial}`);
  if (!(valFraction > 0 && valFraction < 0.5)) throw new DatasetError(`validation fraction must be in (0, 0.5), got ${valFraction}`);
  const first = Math.floor(ds.rows * initial);
  const step = Math.floor((ds.rows - first) / folds);
  const out: WalkForwardFold[] = [];
  for (let k = 0; k < folds; k++) {
    const testStart = first + k * step;
    const testEnd = k === folds - 1 ? ds.rows : testStart + step;
    const valStart = Math.floor(testStart * (1 - valFraction));
    const fold = {
      fold: k,
      train: purgeBefore(ds, { start: 0, end: valStart }, valStart),
      validation: purgeBefore(ds, { start: valStart, end: testStart }, testStart),
      test: { start: testStart, end: testEnd },
    };
    checkSplits(ds, fold);
    out.push(fold);
  }
  return out;
}

/** Rows [start, end) as their own dataset (views into the same buffers, no copy). */
export function sliceDataset(ds: Dataset, r: RowRange): Dataset {
  if (!(Number.isInteger(r.start) && Number.isInteger(r.end) && 0 <= r.start && r.start <= r.end && r.end <= ds.rows)) {
    throw new DatasetError(`row range [${r.start}, ${r.end}) is outside 0..${ds.rows}`);
  }
  return {
    ...ds,
    rows: r.end - r.start,
    X: ds.X.subarray(r.start * ds.width, r.end * ds.width),
    y: ds.y.subarray(r.start, r.end),
    forwardLogReturn: ds.forwardLogReturn.subarray(r.start, r.end),
    timestamps: ds.timestamps.subarray(r.start, r.end),
    labelEnd: ds.labelEnd.subarray(r.start, r.end),
  };
}

/** Rows of several series as one dataset, sorted by decision time (stable: file order on ties). */
export function mergeDatasets(parts: Dataset[]): Dataset {
  if (parts.length === 1) return parts[0];
  const index: Array<[number, number]> = [];
  parts.forEach((d, p) => {
    for (let r = 0; r < d.rows; r++) index.push([p, r]);
  });
  index.sort((a, b) => parts[a[0]].timestamps[a[1]] - parts[b[0]].timestamps[b[1]] || a[0] - b[0] || a[1] - b[1]);
  const first = parts[0];
  const n = index.length;
  const w = first.width;
  const X = new Float32Array(n * w);
  const y = new Uint8Array(n);
  const fwd = new Float64Array(n);
  const ts = new Float64Array(n);
  const end = new Float64Array(n);
  index.forEach(([p, r], i) => {
    const d = parts[p];
    X.set(d.X.subarray(r * w, (r + 1) * w), i * w);
    y[i] = d.y[r];
    fwd[i] = d.forwardLogReturn[r];
    ts[i] = d.timestamps[r];
    end[i] = d.labelEnd[r];
  });
  return { ...first, rows: n, X, y, forwardLogReturn: fwd, timestamps: ts, labelEnd: end };
}

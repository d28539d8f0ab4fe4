import type { Candle } from '../candles';
import type { StrategySignal } from '../engine/types';
import { computeFeatureMatrix, FEATURE_SCHEMA, featureRow, type FeatureMatrix } from '../features';
import { classifyRegime } from '../regime';
import type { StrategyHost } from './host';
import { computeIndicators, errorSignal, indicatorRow, windowEndingAt, MAX_STRATEGY_WARMUP, runStrategy, type EnginePositionView, type StrategyInputs } from './run';
import type { ModelPart } from './types';

/**
 * The analyses behind `trader strategy check`: does a strategy keep the two rules a backtest's
 * honesty rests on (lib/strategy/types.ts)?
 *
 * - Look-ahead (`lookaheadAnalysis`). A backtest computes a strategy's `indicators` once over the
 *   whole recorded series and decide() reads row i; live, only the candles up to i exist. So at a
 *   set of candles i the indicators are computed again over candles[0..i] alone, and row i of
 *   every column, and the strategy's answer at i, are compared with what the whole series gave.
 *   Any difference means row i used a later candle (shift(-1), a centred window, a
 *   normalisation by the whole series' max...): the backtest traded on the future.
 * - Recursion (`recursiveAnalysis`). Live, the indicators are computed over the last `warmup`
 *   candles only. A recursive indicator (EMA, Wilder's RSI, ATR...) depends on how much history
 *   came before; with too short a warm-up live values differ from the backtest's. For a few end
 *   candles each column is computed over windows of different lengths and compared with the
 *   value over the whole history before the end: the warm-up each column needs, against the
 *   declared one.
 *
 * The contexts are built as the engine builds them (lib/trading/candle-io.ts): ctx.candles is the
 * last max(1, warmup) candles ending at the decision candle, the feature vector is the feature
 * kernel's row for that candle (lib/features: row k is candle FEATURE_SCHEMA.warmup + k), the
 * regime is classifyRegime of it. The answer is computed with lib/strategy/run.ts's runStrategy,
 * the function StrategyHost.answer calls, on the indicators' row (a failing indicators() gives the
 * host's error signal). No model is run here: a strategy that reads the model signal is answered
 * without one (as when the model is unavailable), and the report says so.
 *
 * Pure: no I/O, no clock; the same candles give the same report.
 */

/** Relative tolerance of the look-ahead comparison: an honest column recomputes bit for bit; this only absorbs round-off. */
export const LOOKAHEAD_TOLERANCE = 1e-9;
/** Relative tolerance under which a column counts as settled at a warm-up. */
export const RECURSIVE_TOLERANCE = 1e-6;
/** Candles spread evenly over the series that the look-ahead analysis checks besides the signal candles. */
export const DEFAULT_LOOKAHEAD_SAMPLE = 60;
/** Most candles the look-ahead analysis recomputes the indicators for (each costs one indicators() call over the prefix). */
export const DEFAULT_LOOKAHEAD_MAX_CHECKS = 300;
/** Findings kept in full in a report (the per-field summary counts all of them). */
export const MAX_FINDINGS = 500;
/** Warm-ups the recursive analysis always tries, besides the declared one and its multiples. */
export const WARMUP_LADDER: readonly number[] = [10, 20, 50, 100, 200, 500, 1000, 2000];
/** Age, in candles, of the position a `long` context holds (its exit answer is checked with it). */
const LONG_AGE = 5;

export type PositionCase = 'flat' | 'long';

/** The answer fields that trade, by the position they are read in (score and reason are for people, not compared). */
const ANSWER_FIELDS: Readonly<Record<PositionCase, ReadonlyArray<keyof StrategySignal>>> = {
  flat: ['enter', 'tag', 'size', 'confidence', 'stop', 'target', 'trailing', 'error'],
  long: ['exit', 'trailing', 'error'],
};

export interface SeriesInput {
  host: StrategyHost;
  symbol: string;
  timeframe: string;
  timeframeMs: number;
  /** Ascending, unique, clean closed candles (loadFile's). */
  candles: readonly Candle[];
  /** The feature matrix of `candles`, when the caller has it (else computed). */
  features?: FeatureMatrix;
}

export interface StrategyLabel {
  name: string;
  version: string;
  source: string;
  params: string;
  origin: string;
}

export interface LookaheadOptions extends SeriesInput {
  /** Candles spread evenly over the decidable ones that are checked besides the signal candles (default 60). */
  sample?: number;
  /** Most candles checked in all (default 300): signal candles beyond it are thinned evenly. */
  maxChecks?: number;
  /** Relative tolerance (default 1e-9). */
  tolerance?: number;
  /** Candles whose features are recomputed over the prefix too, as a check of the kernel's causality (default 3). */
  featureSpotChecks?: number;
}

export type LookaheadKind = 'indicator' | 'answer' | 'feature';

/** One value that changed when the candles after `index` were removed. */
export interface LookaheadFinding {
  kind: LookaheadKind;
  /** The indicator column, the answer field or the feature name. */
  field: string;
  /** For answer fields: the position the answer was asked in. */
  position?: PositionCase;
  /** The decision candle (index into the candles) and its open time. */
  index: number;
  time: number;
  /** Over the whole series (what a backtest uses). */
  full: unknown;
  /** Over candles[0..index] only (what exists live). */
  prefix: unknown;
}

/** All findings of one field, counted. */
export interface FindingSummary {
  kind: LookaheadKind | 'nondeterministic';
  field: string;
  position?: PositionCase;
  count: number;
  firstIndex: number;
  firstTime: number;
}

/** The same inputs answered twice, two different answers. */
export interface NondeterminismFinding {
  field: string;
  position: PositionCase;
  index: number;
  time: number;
  first: unknown;
  second: unknown;
}

export interface LookaheadReport {
  strategy: StrategyLabel;
  symbol: string;
  timeframe: string;
  candles: number;
  /** First candle a decision is made on (the feature kernel's warm-up). */
  firstDecision: number;
  /** The strategy's indicator columns (empty: it has no indicators()). */
  indicators: string[];
  model: readonly ModelPart[];
  tolerance: number;
  /** Decidable candles where the answer is to enter (flat) or exit (long), or changes. */
  signalCandles: number;
  /** Candles checked, and how many of them are signal candles. */
  checked: number;
  checkedSignalCandles: number;
  checkedIndexes: number[];
  /** Open times of the first and last candle checked (null: none). */
  checkedSpan: { from: number; to: number } | null;
  /** Candles whose feature vector was recomputed over the prefix. */
  featureSpotChecks: number;
  /** The first MAX_FINDINGS findings, in candle order. */
  findings: LookaheadFinding[];
  /** Findings left out of `findings`. */
  findingsLeftOut: number;
  nondeterminism: NondeterminismFinding[];
  /** One row per field that changed, all findings counted. */
  summary: FindingSummary[];
  /** A look-ahead finding in an indicator, an answer or a feature. */
  lookahead: boolean;
  /** The strategy answered the same inputs differently: it keeps state, reads a clock or draws random numbers. */
  nondeterministic: boolean;
  /** indicators() failed over the whole series: nothing could be checked. */
  error?: string;
  notes: string[];
}

export interface RecursiveOptions extends SeriesInput {
  /** Warm-ups (window lengths, decision candle included) to compare; default: the declared one, 2x, 4x, 8x and WARMUP_LADDER. */
  warmups?: number[];
  /** End candles the columns are compared at (default 5, spread over the second half of the series). */
  ends?: number;
  /** Relative tolerance (default 1e-6), relative to the larger of the two values and the column's median magnitude. */
  tolerance?: number;
  /** Decidable candles whose live answer (indicators over the declared warm-up) is compared with the backtest's (default 40). */
  answerSample?: number;
}

export interface WarmupDiff {
  warmup: number;
  /** Largest relative difference from the full-history value over the end candles; null: no end had that much history. */
  maxDiff: number | null;
}

export type RecursiveVerdict = 'ok' | 'too-short' | 'unsettled';

export interface RecursiveIndicator {
  name: string;
  diffs: WarmupDiff[];
  /** Smallest warm-up from which the column stays within the tolerance at every end candle; null: none of those tried. */
  needed: number | null;
  /** The live window: max(1, the strategy's warmup). */
  declared: number;
  declaredDiff: number | null;
  /** ok: the declared warm-up suffices; too-short: it needs `needed`; unsettled: no warm-up tried suffices. */
  verdict: RecursiveVerdict;
}

export interface RecursiveAnswerFinding {
  field: string;
  position: PositionCase;
  index: number;
  time: number;
  /** With the indicators over the declared warm-up (live). */
  live: unknown;
  /** With the indicators over the whole history before the candle (backtest). */
  backtest: unknown;
}

export interface RecursiveReport {
  strategy: StrategyLabel;
  symbol: string;
  timeframe: string;
  candles: number;
  /** The strategy's warmup, and the live window it gives (max(1, warmup)). */
  declaredWarmup: number;
  liveWindow: number;
  tolerance: number;
  warmups: number[];
  ends: Array<{ index: number; time: number }>;
  indicators: RecursiveIndicator[];
  answers: { checked: number; differing: number; findings: RecursiveAnswerFinding[]; findingsLeftOut: number };
  /** Every column settles within the declared warm-up. */
  ok: boolean;
  error?: string;
  notes: string[];
}

// --- shared -----------------------------------------------------------------------------------------

/** |a - b| relative to the larger of |a|, |b| and `scale`; NaN == NaN, a NaN against a number is Infinity. */
export function relativeDifference(a: number, b: number, scale = 0): number {
  const an = Number.isNaN(a);
  const bn = Number.isNaN(b);
  if (an && bn) return 0;
  if (a === b) return 0;
  if (an || bn || !Number.isFinite(a) || !Number.isFinite(b)) return Infinity;
  const d = Math.max(Math.abs(a), Math.abs(b), scale);
  return d === 0 ? 0 : Math.abs(a - b) / d;
}

/** Answer values compared field by field: numbers within `tol`, objects by their fields, absent == undefined. */
export function sameValue(a: unknown, b: unknown, tol: number): boolean {
  if (typeof a === 'number' && typeof b === 'number') return relativeDifference(a, b) <= tol;
  if (a === null || b === null || typeof a !== 'object' || typeof b !== 'object') return a === b;
  const ao = a as Record<string, unknown>;
  const bo = b as Record<string, unknown>;
  const keys = new Set([...Object.keys(ao), ...Object.keys(bo)]);
  for (const k of keys) if (!sameValue(ao[k], bo[k], tol)) return false;
  return true;
}

const num = (v: unknown): number => (typeof v === 'number' ? v : v === undefined || v === null ? NaN : Number(v));

/** Median magnitude of a column's finite values: the scale a difference is relative to near zero. */
function columnScale(col: ArrayLike<number>): number {
  const xs: number[] = [];
  for (let i = 0; i < col.length; i++) {
    const v = Math.abs(num(col[i]));
    if (Number.isFinite(v)) xs.push(v);
  }
  if (xs.length === 0) return 0;
  xs.sort((x, y) => x - y);
  return xs[Math.floor(xs.length / 2)];
}

type Cols = Record<string, ArrayLike<number>>;

function tryIndicators(host: StrategyHost, candles: readonly Candle[]): Cols | Error {
  try {
    return computeIndicators(host.loaded.strategy, candles, host.params);
  } catch (err) {
    return err instanceof Error ? err : new Error(String(err));
  }
}

function label(host: StrategyHost): StrategyLabel {
  const id = host.loaded.identity;
  return { name: id.name, version: id.version, source: id.source, params: host.paramsHash, origin: host.loaded.origin };
}

/** Builds contexts and answers at candle i the way the engine does. */
class Answerer {
  readonly matrix: FeatureMatrix;
  readonly first: number;
  readonly window: number;
  readonly hasIndicators: boolean;

  constructor(readonly s: SeriesInput) {
    this.matrix = s.features ?? computeFeatureMatrix(s.candles);
    this.first = this.matrix.warmup;
    this.window = Math.max(1, s.host.warmup);
    this.hasIndicators = typeof s.host.loaded.strategy.indicators === 'function';
  }

  /** The last candle decided on: the analyses need a candle after it. */
  get decidable(): boolean {
    return this.s.candles.length > this.first;
  }

  position(i: number): EnginePositionView {
    const { candles, timeframeMs } = this.s;
    const e = Math.max(0, i - LONG_AGE);
    let best = candles[e].close;
    for (let k = e + 1; k <= i; k++) best = Math.max(best, candles[k].high);
    return { qty: 1, entryPrice: candles[e].close, entryTime: candles[e].timestamp + timeframeMs, bestPrice: best, stopPrice: null, targetPrice: null };
  }

  inputs(i: number, pos: PositionCase): Omit<StrategyInputs, 'indicators'> {
    const { candles, symbol, timeframe, timeframeMs } = this.s;
    const row = featureRow(this.matrix, i - this.first);
    const features = Array.from(row);
    return {
      symbol,
      timeframe,
      timeframeMs,
      candle: candles[i],
      window: windowEndingAt(candles, i, this.window),
      features,
      regime: classifyRegime(row),
      position: pos === 'long' ? this.position(i) : null,
    };
  }

  /** The answer at i with indicator row `row` of `cols` (an Error: the host's failed signal). */
  answer(i: number, pos: PositionCase, cols: Cols | Error | undefined, row = i): StrategySignal {
    const { host } = this.s;
    const inputs = this.inputs(i, pos);
    if (this.hasIndicators) {
      if (cols instanceof Error) return errorSignal('indicators() failed', `indicators() failed: ${cols.message}`);
      if (cols) return runStrategy(host.loaded, host.params, host.paramsHash, { ...inputs, indicators: indicatorRow(cols, row) });
    }
    return runStrategy(host.loaded, host.params, host.paramsHash, inputs);
  }
}

/** `count` indexes spread evenly over [lo, hi] (both ends included when count >= 2). */
function spread(lo: number, hi: number, count: number): number[] {
  if (hi < lo || count <= 0) return [];
  if (count === 1) return [hi];
  const n = hi - lo + 1;
  if (count >= n) return Array.from({ length: n }, (_, k) => lo + k);
  const out = new Set<number>();
  for (let k = 0; k < count; k++) out.add(lo + Math.round((k * (n - 1)) / (count - 1)));
  return [...out];
}

/** `count` of `xs` spread evenly. */
function thin<T>(xs: readonly T[], count: number): T[] {
  return spread(0, xs.length - 1, count).map((k) => xs[k]);
}

function summarize(items: ReadonlyArray<{ kind: FindingSummary['kind']; field: string; position?: PositionCase; index: number; time: number }>): FindingSummary[] {
  const by = new Map<string, FindingSummary>();
  for (const f of items) {
    const key = `${f.kind}|${f.field}|${f.position ?? ''}`;
    const s = by.get(key);
    if (s) {
      s.count++;
      if (f.index < s.firstIndex) {
        s.firstIndex = f.index;
        s.firstTime = f.time;
      }
    } else {
      by.set(key, { kind: f.kind, field: f.field, ...(f.position ? { position: f.position } : {}), count: 1, firstIndex: f.index, firstTime: f.time });
    }
  }
  const order: Record<FindingSummary['kind'], number> = { indicator: 0, feature: 1, answer: 2, nondeterministic: 3 };
  return [...by.values()].sort((a, b) => order[a.kind] - order[b.kind] || a.firstIndex - b.firstIndex || a.field.localeCompare(b.field));
}

function modelNote(model: readonly ModelPart[]): string[] {
  if (model.length === 0) return [];
  return [
    `it reads the model signal (${model.join(', ')}), which this check does not run: its answers here are the ones it gives without a model signal. ` +
      'The model reads the feature vector, which the kernel computes causally, so the model cannot look ahead through the host (a model trained on leaked labels is `trader eval`\'s question, not this one).',
  ];
}

// --- look-ahead ---------------------------------------------------------------------------------------

/**
 * Recomputes the strategy's indicators and answers at a set of candles with the later candles
 * removed, and reports every value that changed. The candles checked: every decidable candle
 * where the answer is to enter (flat) or exit (long), or where either changes, plus `sample`
 * spread evenly; at most `maxChecks` (signal candles thinned evenly beyond it). Each check costs
 * one indicators() call over the prefix and a few decide() calls.
 *
 * Feature vectors are reused from the whole-series matrix rather than recomputed over every
 * prefix: the kernel is a stream (lib/features/kernel.ts) that writes row i before it reads
 * candle i + 1, so the prefix's row i is the full series' row i by construction. That costs a
 * feature matrix per check otherwise (about 10 ms on 5,000 candles); `featureSpotChecks` candles
 * (default 3) are recomputed over their prefix anyway, as evidence rather than argument.
 */
export function lookaheadAnalysis(opts: LookaheadOptions): LookaheadReport {
  const { host, candles } = opts;
  const tol = opts.tolerance ?? LOOKAHEAD_TOLERANCE;
  const sample = Math.max(0, Math.floor(opts.sample ?? DEFAULT_LOOKAHEAD_SAMPLE));
  const maxChecks = Math.max(1, Math.floor(opts.maxChecks ?? DEFAULT_LOOKAHEAD_MAX_CHECKS));
  const a = new Answerer(opts);
  const model = host.modelParts;
  const notes: string[] = [...modelNote(model)];
  const base: LookaheadReport = {
    strategy: label(host),
    symbol: opts.symbol,
    timeframe: opts.timeframe,
    candles: candles.length,
    firstDecision: a.first,
    indicators: [],
    model,
    tolerance: tol,
    signalCandles: 0,
    checked: 0,
    checkedSignalCandles: 0,
    checkedIndexes: [],
    checkedSpan: null,
    featureSpotChecks: 0,
    findings: [],
    findingsLeftOut: 0,
    nondeterminism: [],
    summary: [],
    lookahead: false,
    nondeterministic: false,
    notes,
  };
  // The last candle has no later candle to remove: the decidable candles checked end one before it.
  const lo = a.first;
  const hi = candles.length - 2;
  if (hi < lo) {
    notes.push(`${candles.length} candles: a first decision needs ${a.first + 1} (the feature kernel's warm-up) and the check one more after it; nothing checked`);
    return base;
  }

  const full = a.hasIndicators ? tryIndicators(host, candles) : undefined;
  if (full instanceof Error) {
    return { ...base, error: `indicators() failed over the whole series (${candles.length} candles): ${full.message}` };
  }
  const names = full ? Object.keys(full) : [];
  base.indicators = names;
  const scales = new Map(names.map((k) => [k, columnScale(full![k])]));

  // First pass: the backtest's answers at every decidable candle, to find the signal candles.
  const first: Record<PositionCase, StrategySignal[]> = { flat: [], long: [] };
  const signal: number[] = [];
  for (let i = lo; i <= hi; i++) {
    const f = a.answer(i, 'flat', full);
    const l = a.answer(i, 'long', full);
    first.flat[i - lo] = f;
    first.long[i - lo] = l;
    const prev = i > lo ? { f: first.flat[i - lo - 1], l: first.long[i - lo - 1] } : undefined;
    if (f.enter || l.exit || (prev && (prev.f.enter !== f.enter || prev.l.exit !== l.exit))) signal.push(i);
  }
  const even = spread(lo, hi, sample);
  const evenSet = new Set(even);
  const signalOnly = signal.filter((i) => !evenSet.has(i));
  const picked = new Set([...even, ...thin(signalOnly, Math.max(0, maxChecks - even.length))]);
  const checks = [...picked].sort((x, y) => x - y).slice(0, maxChecks);
  const signalSet = new Set(signal);

  const findings: LookaheadFinding[] = [];
  const nondet: NondeterminismFinding[] = [];
  for (const i of checks) {
    const time = candles[i].timestamp;
    const prefix: Cols | Error | undefined = full ? tryIndicators(host, candles.slice(0, i + 1)) : undefined;
    if (full) {
      if (prefix instanceof Error) {
        findings.push({ kind: 'indicator', field: 'indicators()', index: i, time, full: 'computed', prefix: `failed: ${prefix.message}` });
      } else if (prefix) {
        for (const k of names) {
          if (!(k in prefix)) {
            findings.push({ kind: 'indicator', field: k, index: i, time, full: num(full[k][i]), prefix: 'missing' });
            continue;
          }
          const fv = num(full[k][i]);
          const pv = num(prefix[k][i]);
          if (relativeDifference(fv, pv, scales.get(k)) > tol) findings.push({ kind: 'indicator', field: k, index: i, time, full: fv, prefix: pv });
        }
        for (const k of Object.keys(prefix)) if (!(k in full)) findings.push({ kind: 'indicator', field: k, index: i, time, full: 'missing', prefix: num(prefix[k][i]) });
      }
    }
    for (const pos of ['flat', 'long'] as const) {
      const once = first[pos][i - lo];
      const again = a.answer(i, pos, full);
      let stable = true;
      for (const field of ANSWER_FIELDS[pos]) {
        if (!sameValue(once[field], again[field], tol)) {
          stable = false;
          nondet.push({ field, position: pos, index: i, time, first: once[field], second: again[field] });
        }
      }
      // A strategy that answers the same inputs differently cannot be judged on this candle: its answer with the prefix's indicators would differ anyway.
      if (!stable || !full) continue;
      const cut = a.answer(i, pos, prefix);
      for (const field of ANSWER_FIELDS[pos]) {
        if (!sameValue(again[field], cut[field], tol)) findings.push({ kind: 'answer', field, position: pos, index: i, time, full: again[field], prefix: cut[field] });
      }
    }
  }

  // Spot checks of the feature kernel's causality.
  const spotCount = Math.max(0, Math.floor(opts.featureSpotChecks ?? 3));
  const spots = thin(checks, spotCount);
  for (const i of spots) {
    const m = computeFeatureMatrix(candles.slice(0, i + 1));
    const p = featureRow(m, i - a.first);
    const f = featureRow(a.matrix, i - a.first);
    for (let c = 0; c < f.length; c++) {
      if (relativeDifference(f[c], p[c]) > tol) findings.push({ kind: 'feature', field: FEATURE_SCHEMA.names[c], index: i, time: candles[i].timestamp, full: f[c], prefix: p[c] });
    }
  }

  findings.sort((x, y) => x.index - y.index);
  nondet.sort((x, y) => x.index - y.index);
  if (!full) {
    notes.unshift(
      'it has no indicators(): it reads only its context (the candles up to the decision candle, the feature vector and regime the kernel computes causally' +
        (model.length ? ', the model signal' : '') +
        '), which holds no later candle, so look-ahead cannot come through the host and there is nothing to recompute. ' +
        'Its answers were computed twice, in different orders, to check it is a pure function of its context.',
    );
  }
  const summary = summarize([...findings, ...nondet.map((n) => ({ ...n, kind: 'nondeterministic' as const }))]);
  return {
    ...base,
    signalCandles: signal.length,
    checked: checks.length,
    checkedSignalCandles: checks.filter((i) => signalSet.has(i)).length,
    checkedIndexes: checks,
    checkedSpan: checks.length ? { from: candles[checks[0]].timestamp, to: candles[checks[checks.length - 1]].timestamp } : null,
    featureSpotChecks: spots.length,
    findings: findings.slice(0, MAX_FINDINGS),
    findingsLeftOut: Math.max(0, findings.length - MAX_FINDINGS),
    nondeterminism: nondet.slice(0, MAX_FINDINGS),
    summary,
    lookahead: findings.length > 0,
    nondeterministic: nondet.length > 0,
  };
}

// --- recursion ----------------------------------------------------------------------------------------

/** The warm-ups tried by default: the live window and its multiples, and the ladder. */
export function defaultWarmups(declared: number): number[] {
  const d = Math.max(1, declared);
  return [...new Set([d, 2 * d, 4 * d, 8 * d, ...WARMUP_LADDER])].sort((x, y) => x - y);
}

/**
 * For a few end candles, each indicator column over windows of different lengths ending there,
 * against its value over the whole history before the end: the largest relative difference at
 * each warm-up, the warm-up each column needs (the smallest from which it stays within the
 * tolerance at every end, refined by bisection between the warm-ups tried), and whether the
 * declared one suffices. Differences are relative to the larger of the two values and the
 * column's median magnitude (so an oscillator crossing zero is not judged against a tiny value).
 *
 * It then answers at `answerSample` decidable candles with the indicators as live computes them
 * (over the declared window) and as a backtest does (over everything before), and reports the
 * answers that differ: what the columns' differences do to trades.
 */
export function recursiveAnalysis(opts: RecursiveOptions): RecursiveReport {
  const { host, candles } = opts;
  const tol = opts.tolerance ?? RECURSIVE_TOLERANCE;
  const declaredWarmup = host.warmup;
  const live = Math.max(1, declaredWarmup);
  const n = candles.length;
  const model = host.modelParts;
  const notes: string[] = [...modelNote(model)];
  const hasIndicators = typeof host.loaded.strategy.indicators === 'function';
  const endCount = Math.max(1, Math.floor(opts.ends ?? 5));
  const ends = n === 0 ? [] : spread(Math.floor((n - 1) / 2), n - 1, endCount);
  const maxHistory = ends.length ? Math.max(...ends) + 1 : 0;
  const requested = (opts.warmups ?? defaultWarmups(declaredWarmup)).map((w) => Math.floor(w)).filter((w) => w >= 1);
  const warmups = [...new Set([live, ...requested])].filter((w) => w < maxHistory || w === live).sort((x, y) => x - y);
  const base: RecursiveReport = {
    strategy: label(host),
    symbol: opts.symbol,
    timeframe: opts.timeframe,
    candles: n,
    declaredWarmup,
    liveWindow: live,
    tolerance: tol,
    warmups,
    ends: ends.map((i) => ({ index: i, time: candles[i].timestamp })),
    indicators: [],
    answers: { checked: 0, differing: 0, findings: [], findingsLeftOut: 0 },
    ok: true,
    notes,
  };
  if (!hasIndicators) {
    notes.unshift(
      'it has no indicators(): ctx.candles is the same last-warmup window live and in a backtest, so its answer cannot depend on the history before that window ' +
        `(the feature vector's own warm-up is the engine's: ${FEATURE_SCHEMA.historyBars} candles, FEATURE_SCHEMA.historyBars). Nothing to compare.`,
    );
    return base;
  }
  if (n < 2) {
    notes.push(`${n} candle(s): nothing to compare`);
    return base;
  }

  // Full-history references at each end, and a cache of window computations by (end, warm-up).
  const refs = new Map<number, Cols>();
  for (const e of ends) {
    const r = tryIndicators(host, candles.slice(0, e + 1));
    if (r instanceof Error) return { ...base, ok: false, error: `indicators() failed over the ${e + 1} candles up to ${new Date(candles[e].timestamp).toISOString()}: ${r.message}` };
    refs.set(e, r);
  }
  const names = Object.keys(refs.get(ends[0])!);
  const full = tryIndicators(host, candles);
  const scales = new Map(names.map((k) => [k, full instanceof Error ? columnScale(refs.get(ends[ends.length - 1])![k]) : columnScale(full[k] ?? [])]));
  const windows = new Map<string, Cols | Error>();
  const windowCols = (e: number, w: number): Cols | Error => {
    const key = `${e}|${w}`;
    let c = windows.get(key);
    if (!c) {
      c = tryIndicators(host, windowEndingAt(candles, e, w));
      windows.set(key, c);
    }
    return c;
  };
  /** Largest difference of column k over the ends with more history than w; null when none has. */
  const maxDiff = (k: string, w: number): number | null => {
    let worst: number | null = null;
    for (const e of ends) {
      if (w >= e + 1) continue;
      const c = windowCols(e, w);
      const ref = num(refs.get(e)![k][e]);
      const col = c instanceof Error ? undefined : c[k];
      // A window too short for the indicator to compute at all counts as unsettled.
      const d = col ? relativeDifference(num(col[col.length - 1]), ref, scales.get(k)) : Infinity;
      worst = Math.max(worst ?? 0, d);
    }
    return worst;
  };
  const settled = (k: string, w: number): boolean => (maxDiff(k, w) ?? 0) <= tol;

  const indicators: RecursiveIndicator[] = names.map((k) => {
    const diffs = warmups.map((w) => ({ warmup: w, maxDiff: maxDiff(k, w) }));
    const tested = diffs.filter((d) => d.maxDiff !== null);
    // The smallest tested warm-up from which every larger one is within the tolerance too.
    let from = -1;
    for (let j = tested.length - 1; j >= 0 && tested[j].maxDiff! <= tol; j--) from = j;
    let needed: number | null = null;
    if (from >= 0) {
      let hiW = tested[from].warmup;
      let loW = from > 0 ? tested[from - 1].warmup : 0; // fails (0: nothing below was tried)
      while (hiW - loW > 1) {
        const mid = Math.floor((loW + hiW) / 2);
        if (settled(k, mid)) hiW = mid;
        else loW = mid;
      }
      needed = hiW;
    }
    const declaredDiff = maxDiff(k, live);
    const verdict: RecursiveVerdict = (declaredDiff ?? 0) <= tol ? 'ok' : needed === null ? 'unsettled' : 'too-short';
    return { name: k, diffs, needed, declared: live, declaredDiff, verdict };
  });
  for (const r of indicators) {
    if (r.needed !== null && r.needed > MAX_STRATEGY_WARMUP && r.verdict !== 'ok') notes.push(`${r.name} needs ${r.needed} candles, more than the ${MAX_STRATEGY_WARMUP} a strategy may ask for: make it settle faster (a shorter period, a non-recursive form)`);
  }
  if (maxHistory <= live) notes.push(`the end candles have at most ${maxHistory} candles of history, not more than the declared warm-up ${live}: give more candles to test it`);

  // Answers: live (indicators over the declared window) against the backtest's (over everything before).
  const a = new Answerer(opts);
  const lo = Math.max(a.first, live - 1);
  const sample = spread(lo, n - 1, Math.max(0, Math.floor(opts.answerSample ?? 40)));
  const af: RecursiveAnswerFinding[] = [];
  let differing = 0;
  for (const i of sample) {
    const liveCols = tryIndicators(host, windowEndingAt(candles, i, live));
    const refCols = tryIndicators(host, candles.slice(0, i + 1));
    let differs = false;
    for (const pos of ['flat', 'long'] as const) {
      const l = a.answer(i, pos, liveCols, Math.min(i, live - 1));
      const b = a.answer(i, pos, refCols, i);
      for (const field of ANSWER_FIELDS[pos]) {
        if (!sameValue(l[field], b[field], LOOKAHEAD_TOLERANCE)) {
          differs = true;
          af.push({ field, position: pos, index: i, time: candles[i].timestamp, live: l[field], backtest: b[field] });
        }
      }
    }
    if (differs) differing++;
  }
  return {
    ...base,
    indicators,
    answers: { checked: sample.length, differing, findings: af.slice(0, MAX_FINDINGS), findingsLeftOut: Math.max(0, af.length - MAX_FINDINGS) },
    ok: indicators.every((r) => r.verdict === 'ok'),
  };
}

import { z } from 'zod';
import type { Candle } from '../candles';
import { FEATURE_SCHEMA, featureIndex } from '../features/schema';
import type { Regime } from '../regime';
import type { EnginePositionView, ModelSignal, StrategySignal } from '../engine/types';
import type { ModelPart, Strategy, StrategyAnswer, StrategyContext, StrategyIdentity, StrategyPosition } from './types';

/**
 * Running a strategy on one closed candle, the same way everywhere it runs (the candle-read
 * activity of the symbol workflow, the backtester, `trader strategy check`): its parameters
 * validated once, its context built from the candle's inputs, its answer checked and turned into
 * the engine's StrategySignal. A strategy that throws, answers something invalid or runs past its
 * budget gives a signal with `error` set: no entries on that candle, no strategy exits; the
 * engine's protective orders go on. Nothing here throws for a bad strategy.
 */

/** A strategy with where it came from: what the loader (infra/strategies.ts) and the built-ins give. */
export interface LoadedStrategy {
  strategy: Strategy;
  /** Name, version and source hash (the parameters' hash is added per run). */
  identity: Omit<StrategyIdentity, 'params'>;
  /** `builtin`, or the file it was loaded from. */
  origin: string;
}

export class StrategyParamsError extends Error {
  override name = 'StrategyParamsError';
}

/** The most candles a strategy may ask for: the live feature window (lib/features/cache.ts). */
export const MAX_STRATEGY_WARMUP = 1000;
const TAG_MAX = 40;
const NAME_RE = /^[a-z0-9][a-z0-9_-]{0,47}$/;

/** Why `s` is not a usable strategy object, or null when it is. */
export function strategyShapeProblem(s: unknown): string | null {
  if (s === null || typeof s !== 'object') return 'it exports no strategy object (export default defineStrategy({...}))';
  const o = s as Record<string, unknown>;
  if (typeof o.name !== 'string' || !NAME_RE.test(o.name)) return `its name must be lower-case letters, digits, '-' or '_' (got ${JSON.stringify(o.name)})`;
  if (typeof o.version !== 'string' || o.version.length === 0 || o.version.length > 40) return `${o.name}: version must be a non-empty string of at most 40 characters`;
  if (typeof o.decide !== 'function') return `${o.name}: decide(ctx) is missing`;
  if (!Number.isInteger(o.warmup) || (o.warmup as number) < 0 || (o.warmup as number) > MAX_STRATEGY_WARMUP) return `${o.name}: warmup must be an integer from 0 to ${MAX_STRATEGY_WARMUP} (got ${String(o.warmup)})`;
  if (!(o.params instanceof z.ZodType)) return `${o.name}: params must be a zod schema (z.object({...}))`;
  if (o.model !== undefined && !(Array.isArray(o.model) && o.model.every((p) => p === 'ensemble' || p === 'ppo'))) return `${o.name}: model must list 'ensemble' and/or 'ppo'`;
  if (o.indicators !== undefined && typeof o.indicators !== 'function') return `${o.name}: indicators must be a function`;
  if (o.timeframes !== undefined && !(Array.isArray(o.timeframes) && o.timeframes.every((t) => typeof t === 'string'))) return `${o.name}: timeframes must be a list of timeframes`;
  const defaults = (o.params as z.ZodType).safeParse({});
  if (!defaults.success) return `${o.name}: every parameter needs a default ({} must parse): ${formatZodIssue(defaults.error)}`;
  return null;
}

/** The strategy's parameters: `raw` over its defaults; a StrategyParamsError names the bad field. */
export function strategyParams(s: Strategy, raw: unknown): Record<string, unknown> {
  const parsed = s.params.safeParse(raw ?? {});
  if (!parsed.success) throw new StrategyParamsError(`${s.name} parameters: ${formatZodIssue(parsed.error)}`);
  return parsed.data;
}

function formatZodIssue(err: z.ZodError): string {
  const i = err.issues[0];
  return `${i.path.join('.') || '(root)'}: ${i.message}`;
}

/** JSON with sorted keys: the same parameters always hash the same. */
export function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o)
      .filter((k) => o[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v) ?? 'null';
}

/** `name@version` and the two short hashes, for tables and logs. */
export function identityLabel(id: StrategyIdentity): string {
  return `${identityName(id)} src:${id.source} params:${id.params}`;
}

/** `name@version`, for alerts and titles. */
export function identityName(id: Pick<StrategyIdentity, 'name' | 'version'>): string {
  return `${id.name}@${id.version}`;
}

/** The same strategy, version, source and parameters. */
export function sameIdentity(a: StrategyIdentity | undefined, b: StrategyIdentity | undefined): boolean {
  return a === b || (a !== undefined && b !== undefined && a.name === b.name && a.version === b.version && a.source === b.source && a.params === b.params);
}

/**
 * The signal of a strategy that gave no usable answer (failed, invalid, over budget, not
 * loadable): no entries, no strategy exits; the engine's protective orders go on.
 */
export function errorSignal(reason: string, error: string, strategy?: StrategyIdentity): StrategySignal {
  const s: StrategySignal = { enter: false, exit: false, score: 0, reason: reason.slice(0, 300), error: error.slice(0, 500) };
  if (strategy) s.strategy = strategy;
  return s;
}

export type { EnginePositionView };

/** What one candle gives a strategy (prepareCandleStep builds it). */
export interface StrategyInputs {
  symbol: string;
  timeframe: string;
  timeframeMs: number;
  candle: Candle;
  /** Closed candles ending with `candle`, oldest first, at least the strategy's warm-up long (fewer only at the start of the data). */
  window: readonly Candle[];
  features: readonly number[];
  regime: Regime;
  model?: ModelSignal;
  position: EnginePositionView | null;
  /**
   * The strategy's `indicators` at this candle, computed by the caller (over the recorded series
   * in a replay or backtest, over `window` live): name -> value.
   */
  indicators?: Readonly<Record<string, number>>;
}

export interface RunOptions {
  /** Wall-clock budget per call; a slower answer is discarded (error). Absent: no budget (backtests: deterministic). */
  budgetMs?: number;
  /** Clock for the budget (performance.now by the caller). */
  clock?: () => number;
}

export function strategyPosition(p: EnginePositionView, candle: Candle, timeframeMs: number): StrategyPosition {
  const out: StrategyPosition = {
    side: 'long',
    qty: p.qty,
    entryPrice: p.entryPrice,
    entryTime: p.entryTime,
    ageCandles: Math.max(0, Math.floor((candle.timestamp + timeframeMs - p.entryTime) / timeframeMs)),
    unrealizedPnlPct: candle.close / p.entryPrice - 1,
    bestPrice: Math.max(p.bestPrice, candle.high),
    stopPrice: p.stopPrice,
    targetPrice: p.targetPrice,
  };
  if (p.tag !== undefined) out.tag = p.tag;
  return out;
}

/** ctx.feature: a column of the feature vector by name (a factory: no function object named per call). */
function featureAccessor(features: readonly number[]): (name: string) => number {
  return (name) => features[featureIndex(name)];
}

/** ctx.indicator: the decision candle's value of one of the strategy's own columns. */
function indicatorAccessor(indicators: Readonly<Record<string, number>> | undefined): (name: string) => number {
  return (name) => {
    const v = indicators?.[name];
    if (v === undefined) throw new RangeError(`unknown indicator '${name}' (indicators() returned: ${Object.keys(indicators ?? {}).join(', ') || 'none'})`);
    return v;
  };
}

/** The context a strategy's decide() gets. */
export function strategyContext(inputs: StrategyInputs, params: Record<string, unknown>): StrategyContext {
  const ctx: StrategyContext = {
    symbol: inputs.symbol,
    timeframe: inputs.timeframe,
    timeframeMs: inputs.timeframeMs,
    candle: inputs.candle,
    candles: inputs.window,
    features: inputs.features,
    featureNames: FEATURE_SCHEMA.names,
    feature: featureAccessor(inputs.features),
    indicator: indicatorAccessor(inputs.indicators),
    regime: inputs.regime,
    position: inputs.position ? strategyPosition(inputs.position, inputs.candle, inputs.timeframeMs) : null,
    params,
  };
  if (inputs.model) ctx.model = inputs.model;
  return ctx;
}

/** One identity object per strategy and parameters: every signal of a run shares it (it is recorded, never changed). */
const identities = new WeakMap<LoadedStrategy, { paramsHash: string; identity: StrategyIdentity }>();
export function strategyIdentity(loaded: LoadedStrategy, paramsHash: string): StrategyIdentity {
  const known = identities.get(loaded);
  if (known && known.paramsHash === paramsHash) return known.identity;
  const identity: StrategyIdentity = { name: loaded.identity.name, version: loaded.identity.version, source: loaded.identity.source, params: paramsHash };
  identities.set(loaded, { paramsHash, identity });
  return identity;
}

/**
 * The strategy's answer on one candle as the engine's signal, stamped with its identity. Never
 * throws: a failing strategy gives `{ enter: false, exit: false, error }`.
 */
export function runStrategy(loaded: LoadedStrategy, params: Record<string, unknown>, paramsHash: string, inputs: StrategyInputs, opts: RunOptions = {}): StrategySignal {
  const identity = strategyIdentity(loaded, paramsHash);
  let answer: unknown;
  const started = opts.clock?.();
  try {
    answer = loaded.strategy.decide(strategyContext(inputs, params));
  } catch (err) {
    return failed(loaded, identity, err instanceof Error ? `${err.name}: ${err.message}` : `threw ${String(err)}`);
  }
  if (opts.budgetMs !== undefined && started !== undefined && opts.clock) {
    const took = opts.clock() - started;
    if (took > opts.budgetMs) return failed(loaded, identity, `decide() took ${took.toFixed(0)} ms, over its budget of ${opts.budgetMs} ms (STRATEGY_BUDGET_MS)`);
  }
  const checked = checkAnswer(answer);
  if (typeof checked === 'string') return failed(loaded, identity, checked);
  // checkAnswer's own object: stamped in place rather than copied (this runs on every candle).
  (checked as StrategySignal).strategy = identity;
  return checked as StrategySignal;
}

/**
 * The signal of a strategy that failed on a candle. A module function, not a closure in
 * runStrategy: under tsx (esbuild keepNames) a named closure costs an Object.defineProperty on
 * every call, and runStrategy runs on every candle.
 */
function failed(loaded: LoadedStrategy, identity: StrategyIdentity, error: string): StrategySignal {
  return errorSignal(`strategy ${loaded.identity.name} failed: ${error}`, error, identity);
}

const Distance = z.union([z.object({ pct: z.number().gt(0).lt(1) }).strict(), z.object({ atr: z.number().gt(0).max(100) }).strict()]);
const AnswerSchema = z
  .object({
    enter: z.boolean().optional(),
    exit: z.boolean().optional(),
    tag: z.string().regex(/^[\x20-\x7e]{0,40}$/, `at most ${TAG_MAX} printable ASCII characters`).optional(),
    reason: z.string().optional(),
    score: z.number().refine(Number.isFinite, 'must be a finite number').optional(),
    size: z.number().gt(0).max(1).optional(),
    confidence: z.number().refine(Number.isFinite, 'must be a finite number').optional(),
    stop: Distance.optional(),
    target: Distance.nullable().optional(),
    trailing: z
      .union([z.object({ pct: z.number().gt(0).lt(1), activateAtPct: z.number().min(0).max(10).optional() }).strict(), z.object({ atr: z.number().gt(0).max(100), activateAtPct: z.number().min(0).max(10).optional() }).strict()])
      .optional(),
  })
  .strict();

const PLAIN_KEYS: Readonly<Record<string, true>> = { enter: true, exit: true, score: true, reason: true, confidence: true };

/**
 * The common answer (enter, exit, score, reason, confidence: no hooks), checked by hand: the
 * zod schema below costs microseconds per candle, a third of a backtest's time per candle for
 * the built-ins (bench/backtest.ts). Anything else, valid or not, goes through the schema.
 */
function plainAnswer(a: Record<string, unknown>): Omit<StrategySignal, 'strategy'> | undefined {
  for (const k in a) if (PLAIN_KEYS[k] !== true) return undefined;
  const { enter, exit, score, reason, confidence } = a;
  if ((enter !== undefined && typeof enter !== 'boolean') || (exit !== undefined && typeof exit !== 'boolean')) return undefined;
  if ((score !== undefined && !(typeof score === 'number' && Number.isFinite(score))) || (confidence !== undefined && !(typeof confidence === 'number' && Number.isFinite(confidence)))) return undefined;
  if (reason !== undefined && typeof reason !== 'string') return undefined;
  const out = baseSignal(enter as boolean | undefined, exit as boolean | undefined, score as number | undefined, reason as string | undefined);
  if (confidence !== undefined) out.confidence = confidence as number;
  return out;
}

/** enter, exit, and the score and reason an answer may leave out. */
function baseSignal(enter: boolean | undefined, exit: boolean | undefined, score: number | undefined, reason: string | undefined): Omit<StrategySignal, 'strategy'> {
  return {
    enter: enter === true,
    exit: exit === true,
    score: score ?? (enter ? 1 : exit ? -1 : 0),
    reason: reason === undefined ? (enter ? 'enter' : exit ? 'exit' : 'no signal') : reason.length > 300 ? reason.slice(0, 300) : reason,
  };
}

/** The answer as a signal (without identity), or why it is not a valid answer. */
export function checkAnswer(answer: unknown): Omit<StrategySignal, 'strategy'> | string {
  if (answer === null || typeof answer !== 'object' || Array.isArray(answer)) return `decide() must return an object like { enter, exit }, got ${answer === null ? 'null' : Array.isArray(answer) ? 'an array' : typeof answer}`;
  const fast = plainAnswer(answer as Record<string, unknown>);
  if (fast) return fast;
  const parsed = AnswerSchema.safeParse(answer);
  if (!parsed.success) {
    const i = parsed.error.issues[0];
    const at = i.path.join('.') || '(answer)';
    const value = i.path.reduce<unknown>((o, k) => (o !== null && typeof o === 'object' ? (o as Record<string | number, unknown>)[k as string] : undefined), answer);
    return `invalid answer: ${at}: ${i.message}${value !== undefined && typeof value !== 'object' ? ` (got ${String(value)})` : ''}`;
  }
  const a: StrategyAnswer = parsed.data;
  const out = baseSignal(a.enter, a.exit, a.score, a.reason);
  if (a.tag !== undefined && a.tag.length > 0) out.tag = a.tag;
  if (a.size !== undefined) out.size = a.size;
  if (a.confidence !== undefined) out.confidence = a.confidence;
  if (a.stop !== undefined) out.stop = a.stop;
  if (a.target !== undefined) out.target = a.target;
  if (a.trailing !== undefined) out.trailing = a.trailing;
  return out;
}

/** The `length` closed candles ending with candles[i] (fewer at the start of the data): a strategy's window. */
export function windowEndingAt(candles: readonly Candle[], i: number, length: number): Candle[] {
  return candles.slice(Math.max(0, i + 1 - length), i + 1);
}

/** Which model parts a strategy's signal needs (none: the model is not run for it). */
export function modelPartsOf(s: Strategy): readonly ModelPart[] {
  return s.model ?? [];
}

/**
 * The strategy's `indicators` over `candles`, as columns (name -> one value per candle); a
 * column of the wrong length or a throw is an error naming the strategy.
 */
export function computeIndicators(s: Strategy, candles: readonly Candle[], params: Record<string, unknown>): Record<string, ArrayLike<number>> {
  if (!s.indicators) return {};
  const cols = s.indicators(candles, params);
  if (cols === null || typeof cols !== 'object') throw new Error(`${s.name}: indicators() must return an object of columns`);
  for (const [k, v] of Object.entries(cols)) {
    if (!v || typeof (v as ArrayLike<number>).length !== 'number') throw new Error(`${s.name}: indicator '${k}' is not an array`);
    if ((v as ArrayLike<number>).length !== candles.length) throw new Error(`${s.name}: indicator '${k}' has ${(v as ArrayLike<number>).length} values for ${candles.length} candles (one per candle, oldest first)`);
  }
  return cols;
}

/** Row `i` of indicator columns. */
export function indicatorRow(cols: Record<string, ArrayLike<number>>, i: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (const k of Object.keys(cols)) out[k] = cols[k][i];
  return out;
}

import type { z } from 'zod';
import type { Candle } from '../candles';
import type { Regime } from '../regime';
import type { Distance, ModelSignal, SignalStrategyIdentity, TrailingRule } from '../engine/types';

/**
 * A trading strategy: what it wants on one closed candle. Everything else (may we, how much, the
 * kill switch, protections, exposure, the protective orders resting on the exchange) is the
 * engine's and applies on top of the answer, whatever it says.
 *
 * A strategy is a plain object (write it with `defineStrategy` for the types):
 *
 * ```ts
 * import { defineStrategy, z } from 'durable-trader/strategy';
 *
 * export default defineStrategy({
 *   name: 'ema-cross',
 *   version: '1.0.0',
 *   warmup: 60,
 *   params: z.object({ fast: z.number().int().min(2).default(12), slow: z.number().int().min(3).default(48) }),
 *   search: { fast: { type: 'int', low: 5, high: 30 }, slow: { type: 'int', low: 30, high: 120 } },
 *   decide({ candles, params, feature }) {
 *     const closes = candles.map((c) => c.close);
 *     const fast = ema(closes, params.fast), slow = ema(closes, params.slow);
 *     return { enter: fast > slow && feature('adx_14') > 20, exit: fast < slow, tag: 'cross' };
 *   },
 * });
 * ```
 *
 * Rules every strategy keeps (`trader strategy check` tests the first two):
 * - it reads only what the context gives: the candle that just closed and the ones before it,
 *   never a later one (no look-ahead);
 * - its answer does not depend on how much history came before its `warmup` window (give the
 *   warm-up its indicators need);
 * - it is a pure function of its context: no clock, no randomness, no I/O, no state kept between
 *   calls (the same candle may be decided again after a crash, and a backtest must give the same
 *   trades as the live workflow).
 */
export interface Strategy<P extends Record<string, unknown> = Record<string, unknown>> {
  /** Lower-case name: letters, digits, `-` and `_`. */
  name: string;
  /** The strategy's own version (semver or any label): recorded with every decision and trade. */
  version: string;
  description?: string;
  /** Timeframes it is made for (`1h`, `4h`, ...); absent: any. Another timeframe is refused at start. */
  timeframes?: readonly string[];
  /**
   * Closed candles its own indicators need: `candles` holds at least this many (the decision
   * candle last) once the engine's features are warm. The feature kernel's own warm-up is the engine's.
   */
  warmup: number;
  /** Its parameters: a zod object whose every field has a default (`{}` parses). */
  params: z.ZodType<P, Record<string, unknown>>;
  /** Search ranges of the parameters (`trader hyperopt` reads them). */
  search?: Partial<Record<keyof P & string, SearchRange>>;
  /** The model parts its `model` signal needs; absent: none (the model is not run for it). */
  model?: readonly ModelPart[];
  /**
   * Indicators of its own, computed over a series of closed candles at once (technicalindicators
   * helps): one column per name, one value per candle, oldest first. decide() reads the decision
   * candle's row with `ctx.indicator(name)`. A backtest or replay computes them once over the whole
   * recorded series; live, over the last `warmup` candles. So a column must use only candles at or
   * before its own row (`trader strategy check` recomputes with the later candles removed) and
   * settle within `warmup` candles (it compares warm-ups).
   */
  indicators?(candles: readonly Candle[], params: P): Record<string, ArrayLike<number>>;
  /** The answer on a closed candle; called once per closed candle per symbol. */
  decide(ctx: StrategyContext<P>): StrategyAnswer;
}

export type ModelPart = 'ensemble' | 'ppo';

/**
 * Which part of the strategy a parameter tunes, for `trader hyperopt --spaces entry,exit`
 * (freqtrade's buy/sell/stoploss spaces): `entry` when absent.
 */
export type SearchSpace = 'entry' | 'exit' | 'stop' | 'size';

export type SearchRange = (
  | { type: 'int'; low: number; high: number; step?: number }
  | { type: 'float'; low: number; high: number; step?: number; log?: boolean }
  | { type: 'categorical'; choices: ReadonlyArray<string | number | boolean> }
) & { space?: SearchSpace };

/** The open position as the engine held it when the candle closed. */
export interface StrategyPosition {
  side: 'long';
  qty: number;
  entryPrice: number;
  /** When the entry filled (ms). */
  entryTime: number;
  /** Candles closed since the entry filled (0: the entry filled inside this candle). */
  ageCandles: number;
  /** (close - entry) / entry, before fees. */
  unrealizedPnlPct: number;
  /** Highest high since the entry. */
  bestPrice: number;
  stopPrice: number | null;
  targetPrice: number | null;
  /** The entry's tag, when the strategy gave one. */
  tag?: string;
}

export interface StrategyContext<P = Record<string, unknown>> {
  symbol: string;
  timeframe: string;
  timeframeMs: number;
  /** The candle that just closed: the decision candle. */
  candle: Candle;
  /** Closed candles, oldest first, ending with `candle`: at least `warmup` of them. */
  candles: readonly Candle[];
  /** A feature kernel column by name (`rsi_14`, `adx_14`, `ema_gap_50`, ...; see `featureNames`); an unknown name throws. */
  feature(name: string): number;
  /** The feature kernel's column names, in vector order. */
  featureNames: readonly string[];
  /** The feature vector (FEATURE_SCHEMA order). */
  features: readonly number[];
  regime: Regime;
  /** The model's signal, for a strategy that declares `model`; `ok: false` when the model failed. */
  model?: ModelSignal;
  /** The decision candle's value of one of the strategy's own `indicators` columns; an unknown name throws. */
  indicator(name: string): number;
  /** Null when flat. */
  position: StrategyPosition | null;
  params: P;
}

/**
 * What a strategy wants. Only `enter` and `exit` are required to trade; the rest are optional
 * hooks, each bounded by the engine's risk limits.
 */
export interface StrategyAnswer {
  /** Open a long when flat. */
  enter?: boolean;
  /** Close the position when long (read only while a position is open). */
  exit?: boolean;
  /** Travels with the entry to its trade (`trader trades`, the report): at most 40 printable ASCII characters. */
  tag?: string;
  /** Why, for the decision log and the UI. */
  reason?: string;
  /** A number the UI and metrics show (-1..1 or a probability); not used to trade. */
  score?: number;
  /** Share of the engine's maximum position size for this entry, in (0, 1]. */
  size?: number;
  /** A model's confidence in [0, 1]: scales the size as the risk config's sizing does. */
  confidence?: number;
  /** The entry's protective stop distance: a fraction of the entry price, or a multiple of ATR. Absent: the risk config's. */
  stop?: Distance;
  /** The take-profit distance, as the stop; `null`: no target order. Absent: the risk config's. */
  target?: Distance | null;
  /** A trailing stop for this position (a fraction of the best price or a multiple of ATR), active once the best price is `activateAtPct` above the entry. */
  trailing?: TrailingRule;
}

/** Who answered: recorded with every decision, order and trade (name, version, 12-hex sha256 of the source and of the parameters). */
export type StrategyIdentity = SignalStrategyIdentity;

/** Identity fn that gives a strategy object its types. */
export function defineStrategy<P extends Record<string, unknown>>(strategy: Strategy<P>): Strategy<P> {
  return strategy;
}

import { z } from 'zod';
import type { Candle } from '../../lib/candles';
import { computeFeatureMatrix, FEATURE_SCHEMA, featureIndex } from '../../lib/features';

/**
 * The PPO agent's trading environment over recorded candles: spot, long or flat, all-in.
 *
 * Timeline of one step t (row t = the candle whose close the decision sees):
 *   observe  features of candle t (computed from candles up to t) and the position flag;
 *   act      flat or long; a change of position fills AT THE CLOSE OF CANDLE t, moved against us
 *            by the slippage, and pays the fee on the notional. This is the paper exchange's rule
 *            (a market order meets the close of the last closed candle, lib/fill-model
 *            immediateFill), so the agent trains on the fills it will get; the slippage stands in
 *            for the drift between the close and the real fill a moment later;
 *   reward   log(equity at the close of candle t+1 / equity at the close of candle t), costs
 *            included, minus drawdownPenalty times the amount by which the step deepens the
 *            episode's maximum drawdown (from its equity peak). The penalties of an episode add
 *            up to drawdownPenalty x its max drawdown, so the episode's return is
 *            log(final equity) - drawdownPenalty x maxDrawdown: a Calmar-like trade-off. (A
 *            penalty on every dip below the peak would instead charge ordinary volatility, and at
 *            hourly noise it swamps any drift: the agent learns only to stay flat.)
 * The step reads candle t+1's close and nothing later; the next observation is candle t+1's.
 *
 * Costs follow lib/fill-model: a buy of notional N pays N * feeRate on top (so all-in with
 * equity E buys N = E / (1 + feeRate)), a sell receives N * (1 - feeRate); a buy fills at
 * close * (1 + slippage), a sell at close * (1 - slippage). A round trip at an unchanged price
 * keeps (1 - s)(1 - f) / ((1 + s)(1 + f)) of equity: two fees and two slippages.
 */

export const PpoEnvConfig = z.object({
  /** Taker fee per side, fraction of notional (Binance spot default 0.1 %). */
  feeRate: z.number().min(0).max(0.05).default(0.001),
  /** Adverse slippage per fill, basis points. */
  slippageBps: z.number().min(0).max(500).default(5),
  /** Weight of the episode's max drawdown against its log return (0 = plain log-return reward). */
  drawdownPenalty: z.number().min(0).max(100).default(0.5),
});
export type PpoEnvConfig = z.infer<typeof PpoEnvConfig>;
export type PpoEnvConfigInput = z.input<typeof PpoEnvConfig>;

export const ACTIONS = ['flat', 'long'] as const;
export type PpoAction = (typeof ACTIONS)[number];

/** Candles as the environment needs them: feature rows and the close of each row's candle. */
export interface PpoMarket {
  /** Open time of the candle of each row. */
  timestamps: Float64Array;
  closes: Float64Array;
  /** Raw feature vectors (FEATURE_SCHEMA order), row-major rowCount x width. */
  features: Float64Array;
  rowCount: number;
  width: number;
}

export class PpoDataError extends Error {
  override name = 'PpoDataError';
}

/** Features for every candle after the warm-up; throws if fewer than `minRows` remain. */
export function marketFromCandles(candles: readonly Candle[], minRows = 2): PpoMarket {
  if (!Array.isArray(candles)) throw new PpoDataError('expected an array of candles');
  const m = computeFeatureMatrix(candles);
  if (m.rowCount < minRows) {
    throw new PpoDataError(`${candles.length} candles give ${m.rowCount} feature rows after the ${m.warmup}-candle warm-up; need at least ${minRows} (${m.warmup + minRows} candles)`);
  }
  const closes = new Float64Array(m.rowCount);
  for (let k = 0; k < m.rowCount; k++) closes[k] = candles[m.warmup + k].close;
  return { timestamps: m.timestamps, closes, features: m.values, rowCount: m.rowCount, width: m.width };
}

/**
 * z = clip((x - mean) * scale, -clip, clip) per observation column. The observation is the
 * feature vector followed by the position flag (0 flat, 1 long). Statistics come from the
 * training rows only and travel with the policy; a column with scale 0 is ignored (atr_14, in
 * price units, would mean something else at every price level; constant columns).
 */
export interface ObservationNormalizer {
  mean: number[];
  scale: number[];
  clip: number;
}

/** Observation column names: the feature schema's, then the position flag. */
export const OBSERVATION_NAMES: readonly string[] = Object.freeze([...FEATURE_SCHEMA.names, 'position_long']);
export const OBSERVATION_WIDTH = OBSERVATION_NAMES.length;
/** Features left out of the observation by default (see ObservationNormalizer). */
export const DEFAULT_EXCLUDED_FEATURES: readonly string[] = Object.freeze(['atr_14']);

export function fitNormalizer(market: PpoMarket, fromRow: number, toRow: number, clip: number, excluded: readonly string[] = DEFAULT_EXCLUDED_FEATURES): ObservationNormalizer {
  return fitNormalizerRanges(market, [[fromRow, toRow]], clip, excluded);
}

/** The same over several row ranges [from, to] (the training rows of several markets). */
export function fitNormalizerRanges(market: PpoMarket, ranges: ReadonlyArray<readonly [number, number]>, clip: number, excluded: readonly string[] = DEFAULT_EXCLUDED_FEATURES): ObservationNormalizer {
  for (const [fromRow, toRow] of ranges) {
    if (!(Number.isInteger(fromRow) && Number.isInteger(toRow) && fromRow >= 0 && toRow < market.rowCount && toRow > fromRow)) {
      throw new RangeError(`normalizer rows [${fromRow}, ${toRow}] not inside 0..${market.rowCount - 1}`);
    }
  }
  const skip = new Set(excluded.map((name) => featureIndex(name)));
  const w = market.width;
  const n = ranges.reduce((a, [f, t]) => a + t - f + 1, 0);
  const mean = new Array<number>(w + 1).fill(0);
  const scale = new Array<number>(w + 1).fill(0);
  for (let j = 0; j < w; j++) {
    if (skip.has(j)) continue;
    let s = 0;
    for (const [fromRow, toRow] of ranges) for (let r = fromRow; r <= toRow; r++) s += market.features[r * w + j];
    const mu = s / n;
    let ss = 0;
    for (const [fromRow, toRow] of ranges) for (let r = fromRow; r <= toRow; r++) ss += (market.features[r * w + j] - mu) ** 2;
    const sd = Math.sqrt(ss / n);
    mean[j] = mu;
    scale[j] = sd > 1e-12 ? 1 / sd : 0;
  }
  scale[w] = 1; // the position flag goes in as 0 / 1
  return { mean, scale, clip };
}

/** Writes the normalized observation of (feature row, position) into out[offset..]. */
export function normalizeInto(norm: ObservationNormalizer, features: ArrayLike<number>, featuresOffset: number, position: 0 | 1, out: Float64Array, offset: number): void {
  const w = norm.mean.length - 1;
  const { mean, scale, clip } = norm;
  for (let j = 0; j < w; j++) {
    const z = (features[featuresOffset + j] - mean[j]) * scale[j];
    out[offset + j] = z > clip ? clip : z < -clip ? -clip : z;
  }
  out[offset + w] = (position - mean[w]) * scale[w];
}

export interface StepResult {
  reward: number;
  /** log(equity after / equity before), costs included, no penalty. */
  logReturn: number;
  /** Equity lost to fee and slippage on this step (0 without a trade), in equity units. */
  cost: number;
  traded: boolean;
  equity: number;
  /** 1 - equity / peak after the step. */
  drawdown: number;
  /** True when the next observation is the episode's last row (no further step possible). */
  done: boolean;
}

/** One episode at a time over rows [start, end] of a market; equity starts at 1, flat. */
export class TradingEnv {
  readonly config: PpoEnvConfig;
  private row = 0;
  private end = 0;
  private pos: 0 | 1 = 0;
  private cash = 1;
  private units = 0;
  private peak = 1;
  private maxDd = 0;

  constructor(readonly market: PpoMarket, readonly normalizer: ObservationNormalizer, config: PpoEnvConfigInput = {}) {
    this.config = PpoEnvConfig.parse(config);
    if (normalizer.mean.length !== market.width + 1 || normalizer.scale.length !== market.width + 1) {
      throw new RangeError(`normalizer has ${normalizer.mean.length} columns, the market's observation has ${market.width + 1}`);
    }
  }

  get currentRow(): number {
    return this.row;
  }

  get position(): 0 | 1 {
    return this.pos;
  }

  get equity(): number {
    return this.cash + this.units * this.market.closes[this.row];
  }

  /** Starts an episode on row `start`, flat with equity 1; it ends when row `end` is reached. */
  reset(start: number, end: number): void {
    if (!(Number.isInteger(start) && Number.isInteger(end) && start >= 0 && end > start && end < this.market.rowCount)) {
      throw new RangeError(`episode rows [${start}, ${end}] must satisfy 0 <= start < end <= ${this.market.rowCount - 1}`);
    }
    this.row = start;
    this.end = end;
    this.pos = 0;
    this.cash = 1;
    this.units = 0;
    this.peak = 1;
    this.maxDd = 0;
  }

  /** The normalized observation of the current row, written into out[offset..]. */
  observe(out: Float64Array, offset = 0): void {
    normalizeInto(this.normalizer, this.market.features, this.row * this.market.width, this.pos, out, offset);
  }

  step(action: 0 | 1): StepResult {
    if (this.row >= this.end) throw new RangeError(`episode is over at row ${this.row}; call reset`);
    if (action !== 0 && action !== 1) throw new RangeError(`action must be 0 (flat) or 1 (long), got ${String(action)}`);
    const { feeRate: f, slippageBps, drawdownPenalty } = this.config;
    const s = slippageBps / 10_000;
    const price = this.market.closes[this.row];
    const before = this.equity;
    let traded = false;
    if (action !== this.pos) {
      traded = true;
      if (action === 1) {
        this.units = this.cash / (price * (1 + s) * (1 + f));
        this.cash = 0;
      } else {
        this.cash = this.units * price * (1 - s) * (1 - f);
        this.units = 0;
      }
      this.pos = action;
    }
    const cost = before - this.equity;
    this.row++;
    const after = this.equity;
    const logReturn = Math.log(after / before);
    if (after > this.peak) this.peak = after;
    const dd = 1 - after / this.peak;
    let reward = logReturn;
    if (dd > this.maxDd) {
      reward -= drawdownPenalty * (dd - this.maxDd);
      this.maxDd = dd;
    }
    return { reward, logReturn, cost, traded, equity: after, drawdown: dd, done: this.row >= this.end };
  }
}

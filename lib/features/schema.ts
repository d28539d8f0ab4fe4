/**
 * The feature vector, versioned. A model records `FEATURE_SCHEMA.version` and `.hash` when it
 * is trained and refuses to run against a different vector, so any change to a name, its order,
 * a parameter or the maths behind a name must bump `version` (and the hash test will demand
 * the new hash). No Node imports here: workflows may import this file.
 *
 * Every feature is scale-free (returns, ratios to price, bounded oscillators) except `atr_14`,
 * kept in price units because stop distances are set in price; models should use `atr_pct_14`.
 */

export const FEATURE_PARAMS = {
  returnWindows: [1, 4, 12, 24],
  realizedVolWindows: [4, 12, 24],
  /** Realized vol over `window` bars ranked against its own last `lookback` values. */
  volPercentile: { window: 24, lookback: 480 },
  rsiPeriod: 14,
  macd: { fast: 12, slow: 26, signal: 9 },
  bollinger: { period: 20, stdDev: 2 },
  atrPeriod: 14,
  // 100 rather than 200 as the long EMA: an EMA's start-up error fades as (1 - 2/(p+1))^n, and
  // EMA(200) needs ~1,400 bars of history to settle to 1e-6 against ~800 for EMA(100). The
  // live path recomputes from a fetched window (one Binance spot request is at most 1,000 candles).
  emaPeriods: [20, 50, 100],
  emaSlopeLookback: 10,
  adxPeriod: 14,
  volumeZPeriod: 20,
} as const;

export interface FeatureSpec {
  name: string;
  indicator: string;
  params: Record<string, number>;
  unit: string;
}

const P = FEATURE_PARAMS;
const { fast, slow, signal } = P.macd;
const bb = `${P.bollinger.period}_${P.bollinger.stdDev}`;
const macd = `${fast}_${slow}_${signal}`;
const pct = P.volPercentile;

const FEATURES: FeatureSpec[] = [
  ...P.returnWindows.map((w) => ({ name: `ret_${w}`, indicator: 'log_return', params: { bars: w }, unit: 'ln(close / close w bars ago)' })),
  ...P.realizedVolWindows.map((w) => ({ name: `rvol_${w}`, indicator: 'realized_vol', params: { bars: w }, unit: 'sqrt(mean of squared 1-bar log returns), per bar' })),
  { name: `rvol_pctile_${pct.window}_${pct.lookback}`, indicator: 'realized_vol_percentile', params: { bars: pct.window, lookback: pct.lookback }, unit: 'mid-rank of rvol among its last lookback values, 0..1' },
  { name: `rsi_${P.rsiPeriod}`, indicator: 'rsi_wilder', params: { period: P.rsiPeriod }, unit: '0..100, unrounded; 50 when the window is flat' },
  { name: `macd_line_${macd}`, indicator: 'macd_ema', params: { fast, slow, signal }, unit: '(EMA fast - EMA slow) / close' },
  { name: `macd_signal_${macd}`, indicator: 'macd_ema', params: { fast, slow, signal }, unit: 'EMA(signal) of MACD / close' },
  { name: `macd_hist_${macd}`, indicator: 'macd_ema', params: { fast, slow, signal }, unit: '(MACD - signal) / close' },
  { name: `bb_pctb_${bb}`, indicator: 'bollinger', params: { ...P.bollinger }, unit: '(close - lower) / (upper - lower); 0.5 when the window is flat' },
  { name: `bb_width_${bb}`, indicator: 'bollinger', params: { ...P.bollinger }, unit: '(upper - lower) / middle' },
  { name: `atr_${P.atrPeriod}`, indicator: 'atr_wilder', params: { period: P.atrPeriod }, unit: 'price' },
  { name: `atr_pct_${P.atrPeriod}`, indicator: 'atr_wilder', params: { period: P.atrPeriod }, unit: 'ATR / close' },
  ...P.emaPeriods.map((p) => ({ name: `ema_gap_${p}`, indicator: 'ema', params: { period: p }, unit: 'close / EMA - 1' })),
  ...P.emaPeriods.map((p) => ({
    name: `ema_slope_${p}_${P.emaSlopeLookback}`, indicator: 'ema_slope', params: { period: p, lookback: P.emaSlopeLookback },
    unit: 'ln(EMA / EMA lookback bars ago) / lookback, per bar',
  })),
  { name: `adx_${P.adxPeriod}`, indicator: 'adx_wilder', params: { period: P.adxPeriod }, unit: '0..100' },
  { name: `di_plus_${P.adxPeriod}`, indicator: 'adx_wilder', params: { period: P.adxPeriod }, unit: '0..100' },
  { name: `di_minus_${P.adxPeriod}`, indicator: 'adx_wilder', params: { period: P.adxPeriod }, unit: '0..100' },
  { name: `volume_z_${P.volumeZPeriod}`, indicator: 'volume_zscore', params: { period: P.volumeZPeriod }, unit: 'z-score of volume in its window; 0 when the window is constant' },
];

/**
 * Candles consumed before the first complete vector: the longest look-back of any feature.
 * The realized-vol percentile dominates (vol window, then `lookback` values of it).
 */
function warmupCandles(): number {
  const firstIndex = [
    Math.max(...P.returnWindows, ...P.realizedVolWindows),
    pct.window + pct.lookback - 1,
    P.rsiPeriod,
    slow - 1 + signal - 1,
    P.bollinger.period - 1,
    P.atrPeriod,
    Math.max(...P.emaPeriods) - 1 + P.emaSlopeLookback,
    2 * P.adxPeriod - 1,
    P.volumeZPeriod - 1,
  ];
  return Math.max(...firstIndex);
}

/** Seed influence below which a recursive average counts as settled. */
const SETTLED_WEIGHT = 1e-6;

/**
 * Candles of history after which a vector no longer depends (to SETTLED_WEIGHT of the start-up
 * error) on where the series began: EMAs and Wilder averages are infinite-memory, so a live
 * window shorter than this gives slightly different numbers than the backtest's full history.
 */
function historyCandles(): number {
  const settle = (alpha: number) => Math.ceil(Math.log(SETTLED_WEIGHT) / Math.log(1 - alpha));
  const emaChains = [...P.emaPeriods, fast, slow].map((p) => p + settle(2 / (p + 1))).map((n) => n + P.emaSlopeLookback);
  const macdSignal = slow + signal + settle(2 / (signal + 1)) + settle(2 / (slow + 1));
  const wilder = [P.rsiPeriod, P.atrPeriod].map((p) => p + settle(1 / p));
  const adx = 2 * P.adxPeriod + 2 * settle(1 / P.adxPeriod);
  return Math.max(warmupCandles() + 1, ...emaChains, macdSignal, ...wilder, adx);
}

export interface FeatureSchema {
  version: number;
  /** sha256 of JSON.stringify(features.map(({ name, params }) => ({ name, params }))). */
  hash: string;
  features: readonly FeatureSpec[];
  names: readonly string[];
  width: number;
  /** Candles consumed before the first vector: row k of a matrix is candle `warmup + k`. */
  warmup: number;
  /** Candles of history a live window needs to reproduce the full-history vector (see historyCandles). */
  historyBars: number;
}

export const FEATURE_SCHEMA: FeatureSchema = Object.freeze({
  version: 1,
  hash: '0a75c4abdac90f9c3eb3bc33120d0158c8ef8bc05a6bc2e0c315302686dbca18',
  features: Object.freeze(FEATURES.map((f) => Object.freeze({ ...f, params: Object.freeze(f.params) }))),
  names: Object.freeze(FEATURES.map((f) => f.name)),
  width: FEATURES.length,
  warmup: warmupCandles(),
  historyBars: historyCandles(),
});

const INDEX_BY_NAME: ReadonlyMap<string, number> = new Map(FEATURE_SCHEMA.names.map((n, i) => [n, i]));

/** Position of a feature in the vector; throws on an unknown name (a typo must not read column 0). */
export function featureIndex(name: string): number {
  const i = INDEX_BY_NAME.get(name);
  if (i === undefined) throw new RangeError(`unknown feature '${name}' (schema v${FEATURE_SCHEMA.version} has ${FEATURE_SCHEMA.names.join(', ')})`);
  return i;
}

import { featureIndex, FEATURE_PARAMS, FEATURE_SCHEMA } from './features/schema';

/**
 * Market regime from one feature vector: a pure function, so the live decision, the
 * backtester and training label the same bar the same way. Trend comes from ADX (strength),
 * +DI/-DI and the EMA(50) slope (direction, both must agree) and price against EMA(100);
 * volatility from realized vol ranked against its own recent history (a percentile, so the
 * same threshold means the same thing for BTC at 1h and an altcoin at 1m).
 *
 * Volatile wins over a trend: in a crash or a squeeze, sizing and stops calibrated on ordinary
 * volatility are wrong whatever the direction, and risk sizing is what this label feeds.
 */

export const REGIMES = ['bull', 'bear', 'volatile', 'sideways'] as const;
export type RegimeLabel = (typeof REGIMES)[number];

export interface Regime {
  label: RegimeLabel;
  /** How clearly the bar fits its label, 0..1 (0 only when the inputs were unusable). */
  confidence: number;
  /** Index of `label` in REGIMES, for numeric use. */
  code: number;
}

export const REGIME_THRESHOLDS = Object.freeze({
  /** Wilder's own reading of ADX: below 20 the market ranges, there is no trend to follow. */
  adxTrendMin: 20,
  /** ADX this high is as strong as trends usually get: full trend strength. */
  adxTrendStrong: 40,
  /** ADX this low is a dead market: full "quiet" credit for sideways. */
  adxDead: 10,
  /**
   * Realized vol in the top decile of its own last FEATURE_PARAMS.volPercentile.lookback bars:
   * rare enough (about 10% of bars by construction) to mean "unusual"; the March 2020 crash
   * and the May 2021 sell-off in the recorded BTC futures series fall in it.
   */
  volatilePercentile: 0.9,
  /** Vol at or below its median: ordinary calm, full "calm" credit for sideways. */
  calmPercentile: 0.5,
});

const T = REGIME_THRESHOLDS;
const I = {
  volPct: featureIndex(`rvol_pctile_${FEATURE_PARAMS.volPercentile.window}_${FEATURE_PARAMS.volPercentile.lookback}`),
  adx: featureIndex(`adx_${FEATURE_PARAMS.adxPeriod}`),
  diPlus: featureIndex(`di_plus_${FEATURE_PARAMS.adxPeriod}`),
  diMinus: featureIndex(`di_minus_${FEATURE_PARAMS.adxPeriod}`),
  slope: featureIndex(`ema_slope_50_${FEATURE_PARAMS.emaSlopeLookback}`),
  longGap: featureIndex('ema_gap_100'),
};

const clamp01 = (x: number) => (x < 0 ? 0 : x > 1 ? 1 : x);
const regime = (label: RegimeLabel, confidence: number): Regime => ({ label, confidence: clamp01(confidence), code: REGIMES.indexOf(label) });

/** Classifies one vector laid out as FEATURE_SCHEMA (a stream vector or a matrix row). */
export function classifyRegime(features: ArrayLike<number>): Regime {
  if (features.length !== FEATURE_SCHEMA.width) throw new RangeError(`expected ${FEATURE_SCHEMA.width} features (schema v${FEATURE_SCHEMA.version}), got ${features.length}`);
  const volPct = features[I.volPct];
  const adx = features[I.adx];
  const diPlus = features[I.diPlus];
  const diMinus = features[I.diMinus];
  const slope = features[I.slope];
  const longGap = features[I.longGap];
  // Unusable inputs never produce a confident label: sideways with confidence 0 sizes to nothing.
  if (![volPct, adx, diPlus, diMinus, slope, longGap].every(Number.isFinite)) return regime('sideways', 0);

  if (volPct >= T.volatilePercentile) return regime('volatile', 0.5 + (0.5 * (volPct - T.volatilePercentile)) / (1 - T.volatilePercentile));

  const direction = Math.sign(diPlus - diMinus);
  if (adx >= T.adxTrendMin && direction !== 0 && Math.sign(slope) === direction) {
    const strength = clamp01((adx - T.adxTrendMin) / (T.adxTrendStrong - T.adxTrendMin));
    const priceOnTrendSide = Math.sign(longGap) === direction ? 1 : 0;
    return regime(direction > 0 ? 'bull' : 'bear', 0.5 + 0.3 * strength + 0.2 * priceOnTrendSide);
  }

  // Sideways: confident when ADX is low and vol ordinary; an ADX above the trend line whose
  // direction signals disagree is sideways too, but with only the calm half of the credit.
  const quiet = clamp01((T.adxTrendMin - adx) / (T.adxTrendMin - T.adxDead));
  const calm = clamp01((T.volatilePercentile - volPct) / (T.volatilePercentile - T.calmPercentile));
  return regime('sideways', 0.5 * quiet + 0.5 * calm);
}

/** The regime as model inputs: one slot per REGIMES entry, the label's slot holding its confidence. */
export function regimeVector(r: Regime): Float64Array {
  const v = new Float64Array(REGIMES.length);
  v[r.code] = r.confidence;
  return v;
}

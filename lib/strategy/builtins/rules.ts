import { z } from 'zod';
import { FEATURE_PARAMS, featureIndex } from '../../features/schema';
import type { Regime } from '../../regime';
import { defineStrategy } from '../types';

/**
 * `rules`, the indicator baseline: trend following with a momentum trigger, on the feature
 * kernel's columns alone.
 * - trend: price above its EMA(50), the EMA(50) rising, ADX >= 20 with +DI above -DI. ADX 20 is
 *   Wilder's own line between a trend and a range (the same threshold lib/regime uses); a long
 *   book that buys only established uptrends avoids most of the chop that eats a stop-based system;
 * - momentum: MACD histogram positive (momentum accelerating in the trend's direction) and RSI
 *   between 50 and 70: on the bullish side but not already overbought, where a fresh entry has the
 *   worst reward for its stop;
 * - regime filter: no entry in a `volatile` or `bear` regime (stops sized on ordinary volatility
 *   are hit by noise there, and a long-only book would be fighting the tape);
 * - exit: momentum has turned (MACD histogram negative) and price lost its EMA(20), or the regime
 *   turned bear. Protective stops and targets handle everything else.
 */

const I = {
  emaGap20: featureIndex('ema_gap_20'),
  emaGap50: featureIndex('ema_gap_50'),
  slope50: featureIndex(`ema_slope_50_${FEATURE_PARAMS.emaSlopeLookback}`),
  adx: featureIndex(`adx_${FEATURE_PARAMS.adxPeriod}`),
  diPlus: featureIndex(`di_plus_${FEATURE_PARAMS.adxPeriod}`),
  diMinus: featureIndex(`di_minus_${FEATURE_PARAMS.adxPeriod}`),
  rsi: featureIndex(`rsi_${FEATURE_PARAMS.rsiPeriod}`),
  macdHist: featureIndex(`macd_hist_${FEATURE_PARAMS.macd.fast}_${FEATURE_PARAMS.macd.slow}_${FEATURE_PARAMS.macd.signal}`),
};

const Regimes = z.enum(['bull', 'bear', 'volatile', 'sideways']);

export const RulesParams = z.object({
  adxTrendMin: z.number().min(0).max(100).default(20),
  rsiMin: z.number().min(0).max(100).default(50),
  rsiMax: z.number().min(0).max(100).default(70),
  blockedRegimes: z.array(Regimes).default(['volatile', 'bear']),
});
export type RulesParams = z.infer<typeof RulesParams>;

/** The defaults, frozen (the engine's own copy for inputs recorded before strategies were files). */
export const RULES: Readonly<RulesParams> = Object.freeze(RulesParams.parse({}));

export interface RulesVerdict {
  enter: boolean;
  exit: boolean;
  score: number;
  reason: string;
}

export function rulesVerdict(features: readonly number[], regime: Regime, p: RulesParams = RULES): RulesVerdict {
  // Columns read straight by index: this runs on every candle of every backtest and hyperopt
  // trial, and a closure made per call (a column getter) showed in the backtest's profile.
  const macdHist = features[I.macdHist];
  const rsi = features[I.rsi];
  const trend = features[I.emaGap50] > 0 && features[I.slope50] > 0 && features[I.adx] >= p.adxTrendMin && features[I.diPlus] > features[I.diMinus];
  const momentum = macdHist > 0 && rsi >= p.rsiMin && rsi < p.rsiMax;
  const regimeOk = !p.blockedRegimes.includes(regime.label);
  const turned = macdHist < 0 && features[I.emaGap20] < 0;
  const bear = regime.label === 'bear';
  const score = ((trend ? 1 : 0) + (momentum ? 1 : 0) + (regimeOk ? 1 : 0) - (turned ? 1.5 : 0) - (bear ? 1.5 : 0)) / 3;
  const enter = trend && momentum && regimeOk;
  const exit = turned || bear;
  const reason = exit ? (bear ? 'regime turned bear' : 'momentum turned, below EMA20') : enter ? 'uptrend with momentum' : missingReason(trend, momentum, regimeOk, regime.label);
  return { enter, exit, score: Math.max(-1, Math.min(1, score)), reason };
}

/** What kept an entry out, in the order trend, momentum, regime (e.g. "no uptrend, regime bear"). */
function missingReason(trend: boolean, momentum: boolean, regimeOk: boolean, label: string): string {
  let out = trend ? '' : 'no uptrend';
  if (!momentum) out += out ? ', no momentum' : 'no momentum';
  if (!regimeOk) out += out ? `, regime ${label}` : `regime ${label}`;
  return out;
}

export default defineStrategy<RulesParams>({
  name: 'rules',
  version: '1.0.0',
  description: 'Trend following with a momentum trigger and a regime filter, on the feature kernel (no model).',
  warmup: 0,
  params: RulesParams,
  search: {
    adxTrendMin: { type: 'float', low: 10, high: 35 },
    rsiMin: { type: 'float', low: 40, high: 60 },
    rsiMax: { type: 'float', low: 60, high: 85 },
  },
  decide: ({ features, regime, params }) => rulesVerdict(features, regime, params),
});

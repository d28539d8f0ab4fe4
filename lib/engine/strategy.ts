import { FEATURE_PARAMS, featureIndex } from '../features/schema';
import type { Regime } from '../regime';
import type { DecisionInput, EngineConfig, ModelSignal } from './types';

/**
 * What each strategy wants on one closed candle: enter (when flat), exit (when long), or neither.
 * Risk (may we, how much) is decided afterwards by the engine with lib/risk; this file only reads
 * the features, the regime and the model.
 *
 * `rules`, the indicator baseline, is trend following with a momentum trigger:
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
  atr: featureIndex(`atr_${FEATURE_PARAMS.atrPeriod}`),
  rvol24: featureIndex('rvol_24'),
};

export const RULES = Object.freeze({
  adxTrendMin: 20,
  rsiMin: 50,
  rsiMax: 70,
  blockedRegimes: Object.freeze(['volatile', 'bear']) as readonly string[],
});

export interface StrategySignal {
  enter: boolean;
  exit: boolean;
  /** -1..1 for the rules (share of bullish conditions minus bearish ones); the model's probability or action otherwise. */
  score: number;
  reason: string;
  /** Multiplies the size (model confidence). */
  confidence?: number;
}

export function featureAtr(features: readonly number[]): number | undefined {
  const v = features[I.atr];
  return Number.isFinite(v) && v > 0 ? v : undefined;
}

export function featureRealizedVol(features: readonly number[]): number | undefined {
  const v = features[I.rvol24];
  return Number.isFinite(v) && v > 0 ? v : undefined;
}

export function rulesSignal(features: readonly number[], regime: Regime): StrategySignal {
  const f = (k: keyof typeof I) => features[I[k]];
  const trend = f('emaGap50') > 0 && f('slope50') > 0 && f('adx') >= RULES.adxTrendMin && f('diPlus') > f('diMinus');
  const momentum = f('macdHist') > 0 && f('rsi') >= RULES.rsiMin && f('rsi') < RULES.rsiMax;
  const regimeOk = !RULES.blockedRegimes.includes(regime.label);
  const turned = f('macdHist') < 0 && f('emaGap20') < 0;
  const bear = regime.label === 'bear';
  const score = ((trend ? 1 : 0) + (momentum ? 1 : 0) + (regimeOk ? 1 : 0) - (turned ? 1.5 : 0) - (bear ? 1.5 : 0)) / 3;
  const enter = trend && momentum && regimeOk;
  const exit = turned || bear;
  const missing = [!trend && 'no uptrend', !momentum && 'no momentum', !regimeOk && `regime ${regime.label}`].filter(Boolean).join(', ');
  const reason = exit ? (bear ? 'regime turned bear' : 'momentum turned, below EMA20') : enter ? 'uptrend with momentum' : missing;
  return { enter, exit, score: Math.max(-1, Math.min(1, score)), reason };
}

/** The model's own thresholds when its signal carries a usable pair, else the engine's fallback. */
export function modelThresholds(m: ModelSignal, cfg: EngineConfig): { enterProb: number; exitProb: number } {
  const inUnit = (x: number | undefined): x is number => x !== undefined && Number.isFinite(x) && x > 0 && x < 1;
  const enterProb = inUnit(m.enterProb) ? m.enterProb : cfg.model.enterProb;
  const exitProb = inUnit(m.exitProb) ? m.exitProb : cfg.model.exitProb;
  return exitProb < enterProb ? { enterProb, exitProb } : cfg.model;
}

function ensembleSignal(m: ModelSignal, cfg: EngineConfig): StrategySignal | undefined {
  const p = m.probUp;
  if (p === undefined || !Number.isFinite(p)) return undefined;
  const { enterProb, exitProb } = modelThresholds(m, cfg);
  const f = (x: number) => x.toFixed(3);
  return {
    enter: p >= enterProb,
    exit: p <= exitProb,
    score: p,
    reason: `model P(up) ${f(p)}${p >= enterProb ? ` >= ${f(enterProb)}` : p <= exitProb ? ` <= ${f(exitProb)}` : ''}`,
    confidence: m.confidence,
  };
}

function ppoSignal(m: ModelSignal): StrategySignal | undefined {
  if (m.action !== 'long' && m.action !== 'flat') return undefined;
  return { enter: m.action === 'long', exit: m.action === 'flat', score: m.action === 'long' ? 1 : 0, reason: `policy says ${m.action}`, confidence: m.confidence };
}

/** The model's own view: an ensemble probability if it gives one, else a policy action. */
function modelView(m: ModelSignal, cfg: EngineConfig): StrategySignal | undefined {
  return ensembleSignal(m, cfg) ?? ppoSignal(m);
}

/**
 * `hybrid`, rule `majority`: three voices vote on every candle, the rules, the ensemble (at its
 * own thresholds) and the PPO policy (when the signal carries an action; "hold" abstains). It
 * enters when at least two want in and fewer want out, and leaves when at least two want out. No
 * single voice trades alone, and no single voice blocks: the earlier rule (`agreement`: the rules enter only when the ensemble's P(up) is at
 * least 0.5) almost never fired, because calibrated probabilities sit near the label's base rate.
 */
function hybridMajority(rules: StrategySignal, model: ModelSignal, cfg: EngineConfig): StrategySignal {
  const ensemble = ensembleSignal(model, cfg);
  const policy = ppoSignal(model);
  const voices = [['rules', rules], ['ensemble', ensemble], ['policy', policy]] as const;
  const speaking = voices.filter(([, v]) => v !== undefined) as ReadonlyArray<readonly [string, StrategySignal]>;
  const ins = speaking.filter(([, v]) => v.enter && !v.exit);
  const outs = speaking.filter(([, v]) => v.exit);
  const enter = ins.length >= 2 && ins.length > outs.length;
  const exit = outs.length >= 2;
  const names = (xs: ReadonlyArray<readonly [string, StrategySignal]>) => xs.map(([n]) => n).join(' + ') || 'none';
  const reason = exit
    ? `out: ${names(outs)} (${outs.map(([, v]) => v.reason).join('; ')})`
    : enter
      ? `in: ${names(ins)} (${ins.map(([, v]) => v.reason).join('; ')})`
      : `no majority: in ${names(ins)}, out ${names(outs)}`;
  const scores = speaking.map(([, v]) => v.score);
  return { enter, exit, score: scores.reduce((a, b) => a + b, 0) / scores.length, reason, confidence: ensemble?.confidence ?? policy?.confidence };
}

/** `hybrid`, rule `agreement` (workflows started before `majority`): the rules act only when the model agrees. */
function hybridAgreement(rules: StrategySignal, usable: StrategySignal, model: ModelSignal): StrategySignal {
  const modelLong = usable.score >= (model.probUp !== undefined ? 0.5 : 1);
  return {
    enter: rules.enter && modelLong && !usable.exit,
    exit: rules.exit || usable.exit,
    score: (rules.score + usable.score) / 2,
    reason: rules.exit || usable.exit ? [rules.exit && rules.reason, usable.exit && usable.reason].filter(Boolean).join('; ') : `${rules.reason}; ${usable.reason}`,
    confidence: usable.confidence,
  };
}

/**
 * The strategy's wish for this candle. A model strategy without a usable model signal makes no
 * entries and no strategy exits (hybrid keeps its rule exits: leaving is never the risky side);
 * protective stops and targets keep working regardless, they rest on the exchange.
 */
export function strategySignal(input: DecisionInput, cfg: EngineConfig): StrategySignal {
  const { features, regime, model } = input;
  if (cfg.strategy === 'rules') return rulesSignal(features, regime);
  const usable = model?.ok === true ? (cfg.strategy === 'ensemble' ? ensembleSignal(model, cfg) : cfg.strategy === 'ppo' ? ppoSignal(model) : modelView(model, cfg)) : undefined;
  const why = model === undefined ? 'no model signal' : model.ok ? `model signal unusable for ${cfg.strategy}` : `model error: ${model.error ?? 'unknown'}`;
  if (cfg.strategy === 'hybrid') {
    const rules = rulesSignal(features, regime);
    if (!usable || !model) return { enter: false, exit: rules.exit, score: rules.score, reason: rules.exit ? rules.reason : why };
    // Inputs recorded before hybridRule existed have none: they keep the rule they started with.
    return (cfg.hybridRule ?? 'agreement') === 'majority' ? hybridMajority(rules, model, cfg) : hybridAgreement(rules, usable, model);
  }
  return usable ?? { enter: false, exit: false, score: 0, reason: why };
}

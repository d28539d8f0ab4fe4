import { FEATURE_PARAMS, featureIndex } from '../features/schema';
import { BUILTIN_STRATEGIES, isBuiltinStrategy } from '../strategy/builtins';
import { checkAnswer, errorSignal, strategyParams, strategyContext } from '../strategy/run';
import type { DecisionInput, EngineConfig, StrategySignal } from './types';

/**
 * Where the engine gets a strategy's answer on a candle: the signal recorded with the candle read
 * (the strategy ran there, lib/strategy/run.ts), else (histories recorded before strategies were
 * files, whose candle reads carry no signal) the built-in named by EngineConfig.strategy, run here
 * with the parameters that workflow started with, exactly as the engine decided then.
 */

const I = {
  atr: featureIndex(`atr_${FEATURE_PARAMS.atrPeriod}`),
  rvol24: featureIndex('rvol_24'),
};

export function featureAtr(features: readonly number[]): number | undefined {
  const v = features[I.atr];
  return Number.isFinite(v) && v > 0 ? v : undefined;
}

export function featureRealizedVol(features: readonly number[]): number | undefined {
  const v = features[I.rvol24];
  return Number.isFinite(v) && v > 0 ? v : undefined;
}

/**
 * A built-in's parameters for a workflow's engine config: the fields the config carried before
 * strategies had parameters of their own (the model's fallback thresholds; hybrid's rule, which a
 * config recorded before it existed lacks: `agreement`, the rule that workflow started with),
 * under the config's strategyParams.
 */
export function builtinParams(cfg: Pick<EngineConfig, 'strategy' | 'strategyParams' | 'model' | 'hybridRule'>): Record<string, unknown> {
  const legacy: Record<string, unknown> = { enterProb: cfg.model?.enterProb ?? 0.55, exitProb: cfg.model?.exitProb ?? 0.45 };
  if (cfg.strategy === 'hybrid') legacy.rule = cfg.hybridRule ?? 'agreement';
  return { ...legacy, ...(cfg.strategyParams ?? {}) };
}

/** Parsed once per engine config (a workflow keeps one for its run, a backtest one per symbol). */
const paramsOfConfig = new WeakMap<EngineConfig, Record<string, unknown>>();

/** The signal the engine decides on. */
export function strategySignal(input: DecisionInput, cfg: EngineConfig): StrategySignal {
  if (input.signal) return input.signal;
  if (!isBuiltinStrategy(cfg.strategy)) {
    const error = `no strategy answer was read with this candle (strategy ${cfg.strategy})`;
    return errorSignal(error, error);
  }
  const s = BUILTIN_STRATEGIES[cfg.strategy];
  let params = paramsOfConfig.get(cfg);
  if (!params) paramsOfConfig.set(cfg, (params = strategyParams(s, builtinParams(cfg))));
  const ctx = strategyContext(
    { symbol: cfg.symbol, timeframe: '', timeframeMs: cfg.timeframeMs, candle: input.candle, window: [input.candle], features: input.features, regime: input.regime, model: input.model, position: null },
    params,
  );
  const checked = checkAnswer(s.decide(ctx));
  if (typeof checked === 'string') return errorSignal(checked, checked);
  return checked;
}

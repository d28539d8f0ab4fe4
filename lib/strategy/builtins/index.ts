import type { BuiltinStrategyName } from '../../engine/types';
import type { Strategy } from '../types';
import ensemble from './ensemble';
import hybrid from './hybrid';
import ppo from './ppo';
import rules from './rules';

/** The strategies built into the engine, by name. */
export const BUILTIN_STRATEGIES: Readonly<Record<BuiltinStrategyName, Strategy>> = Object.freeze({
  rules: rules as unknown as Strategy,
  ensemble: ensemble as unknown as Strategy,
  ppo: ppo as unknown as Strategy,
  hybrid: hybrid as unknown as Strategy,
});

export function isBuiltinStrategy(name: string): name is BuiltinStrategyName {
  return Object.prototype.hasOwnProperty.call(BUILTIN_STRATEGIES, name);
}

export { RULES, rulesVerdict, RulesParams } from './rules';
export { modelThresholds, ThresholdParams } from './model-voices';
export { HybridParams } from './hybrid';

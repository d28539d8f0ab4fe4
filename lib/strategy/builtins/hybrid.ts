import { z } from 'zod';
import type { ModelSignal } from '../../engine/types';
import type { Regime } from '../../regime';
import { defineStrategy } from '../types';
import { rulesVerdict, RulesParams, RULES } from './rules';
import { ensembleVoice, policyVoice, silentModel, ThresholdParams, type Voice } from './model-voices';

/**
 * `hybrid`: three voices vote on every candle, the rules, the ensemble (at its own thresholds) and
 * the PPO policy (when the signal carries an action; "hold" abstains).
 *
 * Rule `majority`: it enters when at least two want in and fewer want out, and leaves when at
 * least two want out. No single voice trades alone, and no single voice blocks. Rule `agreement`
 * (workflows started before `majority`): the rules act only when the model agrees; it almost never
 * fired, because calibrated probabilities sit near the label's base rate.
 *
 * Without a usable model signal it makes no entries and keeps the rules' exits (leaving is never
 * the risky side).
 */
export const HybridParams = ThresholdParams.extend({
  rule: z.enum(['majority', 'agreement']).default('majority'),
  rules: RulesParams.default(RULES as RulesParams),
});
export type HybridParams = z.infer<typeof HybridParams>;

function majority(rules: Voice, model: ModelSignal, p: ThresholdParams): Voice {
  const ensemble = ensembleVoice(model, p);
  const policy = policyVoice(model);
  const voices = [['rules', rules], ['ensemble', ensemble], ['policy', policy]] as const;
  const speaking = voices.filter(([, v]) => v !== undefined) as ReadonlyArray<readonly [string, Voice]>;
  const ins = speaking.filter(([, v]) => v.enter && !v.exit);
  const outs = speaking.filter(([, v]) => v.exit);
  const enter = ins.length >= 2 && ins.length > outs.length;
  const exit = outs.length >= 2;
  const names = (xs: ReadonlyArray<readonly [string, Voice]>) => xs.map(([n]) => n).join(' + ') || 'none';
  const reason = exit
    ? `out: ${names(outs)} (${outs.map(([, v]) => v.reason).join('; ')})`
    : enter
      ? `in: ${names(ins)} (${ins.map(([, v]) => v.reason).join('; ')})`
      : `no majority: in ${names(ins)}, out ${names(outs)}`;
  const scores = speaking.map(([, v]) => v.score);
  const out: Voice = { enter, exit, score: scores.reduce((a, b) => a + b, 0) / scores.length, reason };
  const confidence = ensemble?.confidence ?? policy?.confidence;
  if (confidence !== undefined) out.confidence = confidence;
  return out;
}

function agreement(rules: Voice, usable: Voice, model: ModelSignal): Voice {
  const modelLong = usable.score >= (model.probUp !== undefined ? 0.5 : 1);
  const out: Voice = {
    enter: rules.enter && modelLong && !usable.exit,
    exit: rules.exit || usable.exit,
    score: (rules.score + usable.score) / 2,
    reason: rules.exit || usable.exit ? [rules.exit && rules.reason, usable.exit && usable.reason].filter(Boolean).join('; ') : `${rules.reason}; ${usable.reason}`,
  };
  if (usable.confidence !== undefined) out.confidence = usable.confidence;
  return out;
}

export function hybridVerdict(features: readonly number[], regime: Regime, model: ModelSignal | undefined, p: HybridParams): Voice {
  const rules = rulesVerdict(features, regime, p.rules);
  const usable = model?.ok === true ? (ensembleVoice(model, p) ?? policyVoice(model)) : undefined;
  if (!usable || !model) return { enter: false, exit: rules.exit, score: rules.score, reason: rules.exit ? rules.reason : silentModel(model, 'hybrid') };
  return p.rule === 'majority' ? majority(rules, model, p) : agreement(rules, usable, model);
}

export default defineStrategy<HybridParams>({
  name: 'hybrid',
  version: '1.0.0',
  description: 'The rules, the ensemble and the PPO policy vote; a majority trades.',
  warmup: 0,
  params: HybridParams,
  model: ['ensemble', 'ppo'],
  decide: ({ features, regime, model, params }) => hybridVerdict(features, regime, model, params),
});

import { z } from 'zod';
import { defineStrategy } from '../types';
import { policyVoice, silentModel } from './model-voices';

/** `ppo`: the PPO policy's action (long: enter or stay; flat: exit or stay out; none: hold). */
export default defineStrategy<Record<string, never>>({
  name: 'ppo',
  version: '1.0.0',
  description: "The PPO policy's action.",
  warmup: 0,
  params: z.object({}),
  model: ['ppo'],
  decide({ model }) {
    const v = model?.ok === true ? policyVoice(model) : undefined;
    return v ?? { enter: false, exit: false, score: 0, reason: silentModel(model, 'ppo') };
  },
});

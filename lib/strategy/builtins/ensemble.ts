import { defineStrategy } from '../types';
import { ensembleVoice, silentModel, ThresholdParams } from './model-voices';

/**
 * `ensemble`: the calibrated model ensemble's P(up) at the model's own fitted thresholds (the
 * parameters are the fallback pair for a model without them); its confidence scales the size. No
 * usable model signal: no entries and no strategy exits (the protective orders go on).
 */
export default defineStrategy<ThresholdParams>({
  name: 'ensemble',
  version: '1.0.0',
  description: "The model ensemble's probability of a rise, at the model's fitted thresholds.",
  warmup: 0,
  params: ThresholdParams,
  model: ['ensemble'],
  decide({ model, params }) {
    const v = model?.ok === true ? ensembleVoice(model, params) : undefined;
    return v ?? { enter: false, exit: false, score: 0, reason: silentModel(model, 'ensemble') };
  },
});

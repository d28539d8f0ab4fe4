import { z } from 'zod';
import { FEATURE_SCHEMA } from '../../lib/features';
import { ACTIONS, normalizeInto, OBSERVATION_NAMES, OBSERVATION_WIDTH, PpoEnvConfig, type PpoAction } from './env';
import { Mlp } from './mlp';

/**
 * A trained PPO policy as plain JSON: what inference needs (normalization, network weights,
 * the feature schema it was trained on) and where it came from. The value network is a training
 * aid and is not kept. Parsed with zod wherever it comes from disk.
 */

export const POLICY_FORMAT = 'durable-trader/ppo-policy';

const finite = z.number().finite();

export const PpoPolicy = z
  .object({
    format: z.literal(POLICY_FORMAT),
    formatVersion: z.literal(1),
    featureSchema: z.object({ version: z.number().int(), hash: z.string().regex(/^[0-9a-f]{64}$/), names: z.array(z.string()) }),
    /** Raw observation = feature vector (schema order) then position flag; z = clip((x - mean) * scale). */
    observation: z.object({
      names: z.array(z.string()),
      mean: z.array(finite),
      scale: z.array(finite),
      clip: z.number().min(1),
    }),
    actions: z.tuple([z.literal('flat'), z.literal('long')]),
    /** tanh hidden layers, linear logits; params = per layer W (row-major out x in) then b. */
    network: z.object({ sizes: z.array(z.number().int().positive()).min(2), activation: z.literal('tanh'), params: z.array(finite) }),
    env: PpoEnvConfig,
    provenance: z.object({
      seed: z.number().int(),
      steps: z.number().int(),
      trainFrom: z.number().int(),
      trainTo: z.number().int(),
      trainRows: z.number().int(),
    }),
  })
  .superRefine((p, ctx) => {
    const w = p.observation.names.length;
    if (p.observation.mean.length !== w || p.observation.scale.length !== w) ctx.addIssue({ code: 'custom', message: `observation mean/scale must have ${w} entries`, path: ['observation'] });
    if (p.featureSchema.names.length + 1 !== w) ctx.addIssue({ code: 'custom', message: 'observation names must be the feature names plus the position flag', path: ['observation', 'names'] });
    if (p.network.sizes[0] !== w) ctx.addIssue({ code: 'custom', message: `network input ${p.network.sizes[0]} != observation width ${w}`, path: ['network', 'sizes'] });
    if (p.network.sizes[p.network.sizes.length - 1] !== 2) ctx.addIssue({ code: 'custom', message: 'network must end in 2 logits (flat, long)', path: ['network', 'sizes'] });
    let count = 0;
    for (let l = 0; l + 1 < p.network.sizes.length; l++) count += p.network.sizes[l] * p.network.sizes[l + 1] + p.network.sizes[l + 1];
    if (p.network.params.length !== count) ctx.addIssue({ code: 'custom', message: `network [${p.network.sizes.join(', ')}] needs ${count} params, got ${p.network.params.length}`, path: ['network', 'params'] });
  });
export type PpoPolicy = z.infer<typeof PpoPolicy>;

export class PolicyInputError extends Error {
  override name = 'PolicyInputError';
}

const nets = new WeakMap<PpoPolicy, Mlp>();

/** The policy's network (built once per policy object). */
export function policyNetwork(policy: PpoPolicy): Mlp {
  let net = nets.get(policy);
  if (!net) {
    net = new Mlp(policy.network.sizes, policy.network.params);
    nets.set(policy, net);
  }
  return net;
}

/** The raw observation the policy (and its ONNX graph) takes: features, then 1 if long else 0. */
export function buildObservation(features: ArrayLike<number>, position: PpoAction): Float64Array {
  if (features.length !== FEATURE_SCHEMA.width) throw new PolicyInputError(`expected ${FEATURE_SCHEMA.width} features (schema v${FEATURE_SCHEMA.version}), got ${features.length}`);
  if (position !== 'flat' && position !== 'long') throw new PolicyInputError(`position must be 'flat' or 'long', got ${String(position)}`);
  const obs = new Float64Array(OBSERVATION_WIDTH);
  obs.set(Array.from(features));
  obs[OBSERVATION_WIDTH - 1] = position === 'long' ? 1 : 0;
  return obs;
}

/** P(long) from the two logits, computed stably. */
export function probLongFromLogits(flat: number, long: number): number {
  return 1 / (1 + Math.exp(flat - long));
}

/**
 * The policy's decision for one raw observation (see buildObservation). Acts greedily:
 * long when P(long) > 0.5. Throws PolicyInputError on a wrong width or a non-finite value.
 */
export function policyAct(policy: PpoPolicy, obs: ArrayLike<number>): { action: PpoAction; probLong: number } {
  const w = policy.observation.names.length;
  if (obs.length !== w) throw new PolicyInputError(`observation has ${obs.length} values, the policy takes ${w} (${OBSERVATION_NAMES.length - 1} features + position flag)`);
  for (let j = 0; j < w; j++) {
    if (!Number.isFinite(obs[j])) throw new PolicyInputError(`observation '${policy.observation.names[j]}' is not finite (${obs[j]})`);
  }
  const pos = obs[w - 1];
  if (pos !== 0 && pos !== 1) throw new PolicyInputError(`position flag must be 0 or 1, got ${pos}`);
  const x = new Float64Array(w);
  normalizeInto(policy.observation, obs, 0, pos, x, 0);
  const z = policyNetwork(policy).forward(x, 1);
  const probLong = probLongFromLogits(z[0], z[1]);
  return { action: probLong > 0.5 ? ACTIONS[1] : ACTIONS[0], probLong };
}

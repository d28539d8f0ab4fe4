import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import { z } from 'zod';
import type { Candle } from '../../lib/candles';
import { FEATURE_SCHEMA } from '../../lib/features';
import {
  DEFAULT_EXCLUDED_FEATURES, fitNormalizerRanges, marketFromCandles, OBSERVATION_NAMES, OBSERVATION_WIDTH, PpoDataError, PpoEnvConfig, TradingEnv,
  type ObservationNormalizer, type PpoMarket,
} from './env';
import { Adam, clipGradNorm, Mlp, type MlpTrace } from './mlp';
import { POLICY_FORMAT, policyNetwork, type PpoPolicy } from './policy';
import { Prng } from '../../lib/random';

/**
 * Proximal Policy Optimization (Schulman et al. 2017) for the flat/long trading environment:
 * clipped surrogate objective, GAE(lambda) advantages, entropy bonus, minibatch Adam epochs,
 * separate policy and value MLPs. Single-threaded and seeded: the same data, options and seed give
 * the same weights bit for bit (every random draw comes from one Prng in a fixed order).
 *
 * Episodes are windows of `episodeLength` rows drawn at random from the training rows, each
 * starting flat with equity 1. A window's end is a truncation, not a terminal state, so its last
 * step bootstraps from the value of the state it reached.
 */

export const PpoOptions = z.object({
  seed: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
  /** Environment steps of experience to collect (rounded up to whole rollouts). */
  steps: z.number().int().min(1).max(100_000_000).default(100_000),
  rolloutSteps: z.number().int().min(16).max(1_000_000).default(2048),
  episodeLength: z.number().int().min(8).default(720),
  epochs: z.number().int().min(1).max(100).default(10),
  minibatchSize: z.number().int().min(1).default(256),
  learningRate: z.number().positive().max(1).default(3e-4),
  valueLearningRate: z.number().positive().max(1).default(1e-3),
  /** Linearly decay both learning rates to 0 over the run. */
  annealLearningRate: z.boolean().default(true),
  gamma: z.number().min(0).max(1).default(0.99),
  gaeLambda: z.number().min(0).max(1).default(0.95),
  clipRange: z.number().positive().max(1).default(0.2),
  entropyCoef: z.number().min(0).default(0.01),
  maxGradNorm: z.number().positive().default(0.5),
  /** Stop an update's remaining epochs once the approximate KL to the rollout policy passes this. */
  targetKl: z.number().positive().optional(),
  hidden: z.array(z.number().int().min(1).max(1024)).min(1).max(4).default([32, 32]),
  /**
   * Hourly log returns are ~1e-3; multiplying rewards by this keeps value targets near 1 so the
   * value net's initial scale is right. Advantages are normalized anyway, so the optimum is unchanged.
   */
  rewardScale: z.number().positive().default(100),
  /** Normalized observations are clipped to +-obsClip (fat tails, regime changes); at least 1 so the 0/1 position flag passes unchanged. */
  obsClip: z.number().min(1).default(5),
  excludeFeatures: z.array(z.string()).default([...DEFAULT_EXCLUDED_FEATURES]),
  /** Held-out tail, as a fraction of the feature rows (ignored when evalFrom is given). */
  evalFraction: z.number().min(0).max(0.9).default(0.2),
  /** Hold out the rows whose candle opens at or after this time (epoch ms) instead. */
  evalFrom: z.number().int().optional(),
  env: PpoEnvConfig.default(PpoEnvConfig.parse({})),
});
export type PpoOptions = z.infer<typeof PpoOptions>;
export type PpoOptionsInput = z.input<typeof PpoOptions>;

/**
 * Candles, or anything that carries them (a dataset); or several markets (one per symbol, their
 * features possibly normalized per symbol by the caller), whose episodes never cross from one
 * market into another.
 */
export type PpoTrainingData = readonly Candle[] | { readonly candles: readonly Candle[] } | { readonly markets: readonly PpoMarket[] };

export interface PpoIterationStats {
  iteration: number;
  steps: number;
  /** Mean per-step reward of the rollout (unscaled, sampled actions). */
  meanReward: number;
  policyLoss: number;
  valueLoss: number;
  entropy: number;
  approxKl: number;
  clipFraction: number;
  explainedVariance: number;
  epochsRun: number;
}

export interface PpoProgress {
  iteration: number;
  iterations: number;
  steps: number;
  totalSteps: number;
  elapsedMs: number;
  stats: PpoIterationStats;
}

/** A greedy run of a policy (or a fixed action) over rows [from, to], starting flat. */
export interface PpoBacktest {
  fromTime: number;
  toTime: number;
  steps: number;
  /** Sum of rewards: the objective the agent maximises (log return less the drawdown penalty). */
  objective: number;
  totalReturn: number;
  logReturn: number;
  maxDrawdown: number;
  /** Position changes. */
  trades: number;
  /** Fraction of steps spent long. */
  exposure: number;
  /** Equity lost to fees and slippage, as a fraction of starting equity. */
  costs: number;
}

export interface PpoEvaluation {
  policy: PpoBacktest;
  /** Long from the first step to the end: entry costs and the same penalty included. */
  buyHold: PpoBacktest;
}

export interface PpoMetrics {
  seed: number;
  steps: number;
  iterations: number;
  trainSeconds: number;
  trainRows: { from: number; to: number; count: number };
  evalRows: { from: number; to: number; count: number } | null;
  history: PpoIterationStats[];
  /** Greedy policy on the training rows (in-sample). */
  train: PpoEvaluation;
  /** Greedy policy on the held-out rows (out-of-sample), when there are any. */
  eval: PpoEvaluation | null;
}

export interface PpoTrainResult {
  policy: PpoPolicy;
  metrics: PpoMetrics;
}

export class PpoAbortedError extends Error {
  override name = 'PpoAbortedError';
}

function marketsOf(data: PpoTrainingData): PpoMarket[] {
  if (Array.isArray(data)) return [marketFromCandles(data, MIN_TRAIN_ROWS)];
  const markets = (data as { markets?: unknown } | null)?.markets;
  if (Array.isArray(markets) && markets.length > 0) return markets as PpoMarket[];
  const candles = (data as { candles?: unknown } | null)?.candles;
  if (Array.isArray(candles)) return [marketFromCandles(candles as readonly Candle[], MIN_TRAIN_ROWS)];
  throw new PpoDataError('trainPpo needs candles: an array of candles, an object with a `candles` array, or `markets`');
}

/** Several markets as one, rows one after the other; `offsets[k]` is market k's first row. */
function joinMarkets(markets: readonly PpoMarket[]): { market: PpoMarket; offsets: number[] } {
  if (markets.length === 1) return { market: markets[0], offsets: [0] };
  const width = markets[0].width;
  if (markets.some((m) => m.width !== width)) throw new PpoDataError('markets have different feature widths');
  const rows = markets.reduce((a, m) => a + m.rowCount, 0);
  const joined: PpoMarket = { timestamps: new Float64Array(rows), closes: new Float64Array(rows), features: new Float64Array(rows * width), rowCount: rows, width };
  const offsets: number[] = [];
  let at = 0;
  for (const m of markets) {
    offsets.push(at);
    joined.timestamps.set(m.timestamps.subarray(0, m.rowCount), at);
    joined.closes.set(m.closes.subarray(0, m.rowCount), at);
    joined.features.set(m.features.subarray(0, m.rowCount * width), at * width);
    at += m.rowCount;
  }
  return { market: joined, offsets };
}

const MIN_TRAIN_ROWS = 64;

/** Row split: training rows [0, trainEnd], held-out rows [evalStart, rowCount - 1] (none when evalStart = rowCount). */
export function splitRows(market: PpoMarket, opts: Pick<PpoOptions, 'evalFraction' | 'evalFrom'>): { trainEnd: number; evalStart: number } {
  const n = market.rowCount;
  let evalStart: number;
  if (opts.evalFrom !== undefined) {
    evalStart = market.timestamps.findIndex((t) => t >= (opts.evalFrom as number));
    if (evalStart < 0) evalStart = n;
  } else {
    evalStart = n - Math.round(n * opts.evalFraction);
  }
  // Training steps read closes up to row trainEnd, held-out steps from row evalStart on: no
  // candle's close counts in both.
  const trainEnd = evalStart - 1;
  if (trainEnd + 1 < MIN_TRAIN_ROWS) throw new PpoDataError(`only ${trainEnd + 1} training rows before the held-out period; need at least ${MIN_TRAIN_ROWS}`);
  if (evalStart < n && n - evalStart < 2) throw new PpoDataError(`the held-out period has ${n - evalStart} row(s); need at least 2, or none`);
  return { trainEnd, evalStart };
}

// --- the PPO loss and its gradient ----------------------------------------------------------------

export interface PolicyBatch {
  obs: Float64Array;
  actions: Uint8Array;
  oldLogProb: Float64Array;
  advantages: Float64Array;
  n: number;
}

export interface PolicyLossParts {
  loss: number;
  policyLoss: number;
  entropy: number;
  approxKl: number;
  clipFraction: number;
}

/**
 * Clipped surrogate plus entropy bonus for a minibatch, averaged over it:
 *   L = -mean(min(r A, clip(r, 1 - eps, 1 + eps) A)) - c_ent mean(H),  r = pi(a|s) / pi_old(a|s).
 * Adds dL/dparams to the network's grads (call zeroGrad first). With softmax logits z:
 *   d log pi(a) / dz_j = [j = a] - p_j,   dH/dz_j = -p_j (log p_j + H).
 * The surrogate's gradient flows only where the unclipped term is the minimum.
 */
export function policyLossAndGrad(net: Mlp, b: PolicyBatch, clipRange: number, entropyCoef: number): PolicyLossParts {
  const trace: MlpTrace = { n: 0, acts: [] };
  const z = net.forward(b.obs, b.n, trace);
  const dz = new Float64Array(b.n * 2);
  let surrSum = 0;
  let entSum = 0;
  let klSum = 0;
  let clipped = 0;
  for (let i = 0; i < b.n; i++) {
    const z0 = z[2 * i];
    const z1 = z[2 * i + 1];
    const m = Math.max(z0, z1);
    const lse = m + Math.log(Math.exp(z0 - m) + Math.exp(z1 - m));
    const lp0 = z0 - lse;
    const lp1 = z1 - lse;
    const p0 = Math.exp(lp0);
    const p1 = Math.exp(lp1);
    const a = b.actions[i];
    const logp = a === 1 ? lp1 : lp0;
    const logRatio = logp - b.oldLogProb[i];
    const ratio = Math.exp(logRatio);
    const adv = b.advantages[i];
    const unclipped = ratio * adv;
    const clippedRatio = Math.min(Math.max(ratio, 1 - clipRange), 1 + clipRange);
    const surr = Math.min(unclipped, clippedRatio * adv);
    surrSum += surr;
    if (Math.abs(ratio - 1) > clipRange) clipped++;
    klSum += ratio - 1 - logRatio;
    const h = -(p0 * lp0 + p1 * lp1);
    entSum += h;
    // d(-surr)/d(log pi(a)): -A r where the unclipped term is active, else 0.
    const gLogp = unclipped <= clippedRatio * adv ? -adv * ratio : 0;
    const inv = 1 / b.n;
    dz[2 * i] = inv * (gLogp * ((a === 0 ? 1 : 0) - p0) + entropyCoef * p0 * (lp0 + h));
    dz[2 * i + 1] = inv * (gLogp * ((a === 1 ? 1 : 0) - p1) + entropyCoef * p1 * (lp1 + h));
  }
  net.backward(trace, dz);
  const policyLoss = -surrSum / b.n;
  const entropy = entSum / b.n;
  return { loss: policyLoss - entropyCoef * entropy, policyLoss, entropy, approxKl: klSum / b.n, clipFraction: clipped / b.n };
}

/** 0.5 mean((V - R)^2); adds its gradient to the value net's grads. */
export function valueLossAndGrad(net: Mlp, obs: Float64Array, returns: Float64Array, n: number): number {
  const trace: MlpTrace = { n: 0, acts: [] };
  const v = net.forward(obs, n, trace);
  const dv = new Float64Array(n);
  let sum = 0;
  for (let i = 0; i < n; i++) {
    const e = v[i] - returns[i];
    sum += e * e;
    dv[i] = e / n;
  }
  net.backward(trace, dv);
  return (0.5 * sum) / n;
}

// --- training ---------------------------------------------------------------------------------------

function policyFrom(net: Mlp, norm: ObservationNormalizer, opts: PpoOptions, provenance: PpoPolicy['provenance']): PpoPolicy {
  return {
    format: POLICY_FORMAT,
    formatVersion: 1,
    featureSchema: { version: FEATURE_SCHEMA.version, hash: FEATURE_SCHEMA.hash, names: [...FEATURE_SCHEMA.names] },
    observation: { names: [...OBSERVATION_NAMES], mean: [...norm.mean], scale: [...norm.scale], clip: norm.clip },
    actions: ['flat', 'long'],
    network: { sizes: [...net.sizes], activation: 'tanh', params: Array.from(net.params) },
    env: { ...opts.env },
    provenance,
  };
}

/**
 * Trains a policy on the candles' training rows and evaluates it greedily on both splits.
 * Async only to let the event loop breathe between iterations (progress bars, Temporal
 * heartbeats); the maths is synchronous and deterministic. `signal` aborts between iterations.
 */
export async function trainPpo(
  data: PpoTrainingData,
  options: PpoOptionsInput,
  onProgress?: (p: PpoProgress) => void,
  signal?: AbortSignal,
): Promise<PpoTrainResult> {
  const parsed = PpoOptions.safeParse(options);
  if (!parsed.success) throw new RangeError(`invalid PPO options: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`);
  const opts = parsed.data;
  const started = performance.now();
  const markets = marketsOf(data);
  for (const m of markets) if (m.rowCount < MIN_TRAIN_ROWS) throw new PpoDataError(`a market has ${m.rowCount} feature rows; need at least ${MIN_TRAIN_ROWS}`);
  const { market, offsets } = joinMarkets(markets);
  // Per market: training rows [offset, offset + trainEnd], held-out rows from offset + evalStart.
  const segments = markets.map((m, k) => {
    const split = splitRows(m, opts);
    return { start: offsets[k], trainEnd: offsets[k] + split.trainEnd, evalStart: offsets[k] + split.evalStart, end: offsets[k] + m.rowCount - 1 };
  });
  const { trainEnd, evalStart } = { trainEnd: segments[0].trainEnd, evalStart: segments[0].evalStart };
  const norm = fitNormalizerRanges(market, segments.map((g) => [g.start, g.trainEnd] as [number, number]), opts.obsClip, opts.excludeFeatures);
  const env = new TradingEnv(market, norm, opts.env);
  const trainRows = segments.reduce((a, g) => a + g.trainEnd - g.start + 1, 0);

  const rng = new Prng(opts.seed);
  const W = OBSERVATION_WIDTH;
  const pi = Mlp.initialized([W, ...opts.hidden, 2], rng, Math.SQRT2, 0.01);
  const vf = Mlp.initialized([W, ...opts.hidden, 1], rng, Math.SQRT2, 1);
  const piOpt = new Adam(pi.params.length);
  const vfOpt = new Adam(vf.params.length);

  const R = opts.rolloutSteps;
  const iterations = Math.ceil(opts.steps / R);
  const mbSize = Math.min(opts.minibatchSize, R);

  const obs = new Float64Array(R * W);
  const actions = new Uint8Array(R);
  const logProbs = new Float64Array(R);
  const values = new Float64Array(R);
  const rewards = new Float64Array(R);
  const ends = new Uint8Array(R);
  const bootstrap = new Float64Array(R);
  const advantages = new Float64Array(R);
  const returns = new Float64Array(R);
  const nextObs = new Float64Array(W);
  const order = new Uint32Array(R);
  const mbObs = new Float64Array(mbSize * W);
  const mbActions = new Uint8Array(mbSize);
  const mbOldLogProb = new Float64Array(mbSize);
  const mbAdv = new Float64Array(mbSize);
  const mbRet = new Float64Array(mbSize);

  const newEpisode = () => {
    // One market: the draw sequence of a single series (a seed gives the same policy as before
    // several markets existed). Several: a market weighted by its training rows, then a window.
    let g = segments[0];
    if (segments.length > 1) {
      let pick = rng.int(0, trainRows - 1);
      for (const seg of segments) {
        g = seg;
        pick -= seg.trainEnd - seg.start + 1;
        if (pick < 0) break;
      }
    }
    const L = Math.min(opts.episodeLength, g.trainEnd - g.start);
    const start = g.start + rng.int(0, g.trainEnd - g.start - L);
    env.reset(start, start + L);
  };
  newEpisode();

  const history: PpoIterationStats[] = [];
  for (let it = 0; it < iterations; it++) {
    if (signal?.aborted) throw new PpoAbortedError(`PPO training aborted at iteration ${it} of ${iterations}`);
    const frac = opts.annealLearningRate ? 1 - it / iterations : 1;

    // Rollout with the current policy.
    let rewardSum = 0;
    for (let t = 0; t < R; t++) {
      const o = obs.subarray(t * W, (t + 1) * W);
      env.observe(o);
      const z = pi.forward(o, 1);
      const pLong = 1 / (1 + Math.exp(z[0] - z[1]));
      const a: 0 | 1 = rng.next() < pLong ? 1 : 0;
      actions[t] = a;
      logProbs[t] = Math.log(a === 1 ? pLong : 1 - pLong);
      values[t] = vf.forward(o, 1)[0];
      const step = env.step(a);
      rewards[t] = step.reward * opts.rewardScale;
      rewardSum += step.reward;
      ends[t] = step.done || t === R - 1 ? 1 : 0;
      if (ends[t]) {
        env.observe(nextObs);
        bootstrap[t] = vf.forward(nextObs, 1)[0];
        if (step.done) newEpisode();
      }
    }

    // GAE(lambda); every end is a truncation, so it bootstraps from V(next state).
    let last = 0;
    for (let t = R - 1; t >= 0; t--) {
      const nextV = ends[t] ? bootstrap[t] : values[t + 1];
      const delta = rewards[t] + opts.gamma * nextV - values[t];
      last = delta + opts.gamma * opts.gaeLambda * (ends[t] ? 0 : last);
      advantages[t] = last;
      returns[t] = last + values[t];
    }

    // Minibatch epochs.
    let pl = 0, vl = 0, ent = 0, kl = 0, cf = 0, batches = 0, epochsRun = 0;
    for (let e = 0; e < opts.epochs; e++) {
      for (let i = 0; i < R; i++) order[i] = i;
      rng.shuffle(order);
      let epochKl = 0;
      let epochBatches = 0;
      for (let s = 0; s < R; s += mbSize) {
        const n = Math.min(mbSize, R - s);
        let mean = 0;
        for (let k = 0; k < n; k++) {
          const j = order[s + k];
          mbObs.set(obs.subarray(j * W, (j + 1) * W), k * W);
          mbActions[k] = actions[j];
          mbOldLogProb[k] = logProbs[j];
          mbAdv[k] = advantages[j];
          mbRet[k] = returns[j];
          mean += advantages[j];
        }
        mean /= n;
        let sq = 0;
        for (let k = 0; k < n; k++) sq += (mbAdv[k] - mean) ** 2;
        const sd = Math.sqrt(sq / n) + 1e-8;
        for (let k = 0; k < n; k++) mbAdv[k] = (mbAdv[k] - mean) / sd;

        pi.zeroGrad();
        const parts = policyLossAndGrad(pi, { obs: mbObs, actions: mbActions, oldLogProb: mbOldLogProb, advantages: mbAdv, n }, opts.clipRange, opts.entropyCoef);
        clipGradNorm(pi.grads, opts.maxGradNorm);
        piOpt.step(pi.params, pi.grads, opts.learningRate * frac);

        vf.zeroGrad();
        const vLoss = valueLossAndGrad(vf, mbObs, mbRet, n);
        clipGradNorm(vf.grads, opts.maxGradNorm);
        vfOpt.step(vf.params, vf.grads, opts.valueLearningRate * frac);

        pl += parts.policyLoss;
        vl += vLoss;
        ent += parts.entropy;
        kl += parts.approxKl;
        cf += parts.clipFraction;
        batches++;
        epochKl += parts.approxKl;
        epochBatches++;
      }
      epochsRun++;
      if (opts.targetKl !== undefined && epochKl / epochBatches > opts.targetKl) break;
    }

    const stats: PpoIterationStats = {
      iteration: it + 1,
      steps: (it + 1) * R,
      meanReward: rewardSum / R,
      policyLoss: pl / batches,
      valueLoss: vl / batches,
      entropy: ent / batches,
      approxKl: kl / batches,
      clipFraction: cf / batches,
      explainedVariance: explainedVariance(values, returns),
      epochsRun,
    };
    history.push(stats);
    onProgress?.({ iteration: it + 1, iterations, steps: (it + 1) * R, totalSteps: iterations * R, elapsedMs: performance.now() - started, stats });
    await yieldToEventLoop();
  }

  const policy = policyFrom(pi, norm, opts, {
    seed: opts.seed,
    steps: iterations * R,
    trainFrom: Math.min(...segments.map((g) => market.timestamps[g.start])),
    trainTo: Math.max(...segments.map((g) => market.timestamps[g.trainEnd])),
    trainRows,
  });
  // The figures below are the first market's (its training and held-out rows).
  const hasEval = evalStart <= segments[0].end;
  const metrics: PpoMetrics = {
    seed: opts.seed,
    steps: iterations * R,
    iterations,
    trainSeconds: (performance.now() - started) / 1000,
    trainRows: { from: market.timestamps[0], to: market.timestamps[trainEnd], count: trainEnd + 1 },
    evalRows: hasEval ? { from: market.timestamps[evalStart], to: market.timestamps[segments[0].end], count: segments[0].end - evalStart + 1 } : null,
    history,
    train: evaluateOn(policy, market, 0, trainEnd),
    eval: hasEval ? evaluateOn(policy, market, evalStart, segments[0].end) : null,
  };
  return { policy, metrics };
}

function explainedVariance(pred: Float64Array, target: Float64Array): number {
  const n = target.length;
  let mt = 0, md = 0;
  for (let i = 0; i < n; i++) {
    mt += target[i];
    md += target[i] - pred[i];
  }
  mt /= n;
  md /= n;
  let vt = 0, vd = 0;
  for (let i = 0; i < n; i++) {
    vt += (target[i] - mt) ** 2;
    vd += (target[i] - pred[i] - md) ** 2;
  }
  return vt === 0 ? 0 : 1 - vd / vt;
}

// --- evaluation -------------------------------------------------------------------------------------

/** Runs `choose` greedily over rows [from, to] of the market from flat; the position is not closed at the end. */
export function runBacktest(
  market: PpoMarket,
  norm: ObservationNormalizer,
  env: PpoEnvConfig,
  from: number,
  to: number,
  choose: (obs: Float64Array, row: number) => 0 | 1,
): PpoBacktest {
  const sim = new TradingEnv(market, norm, env);
  sim.reset(from, to);
  const o = new Float64Array(market.width + 1);
  let objective = 0, trades = 0, long = 0, costs = 0, maxDd = 0, steps = 0;
  let equity: number;
  for (;;) {
    sim.observe(o);
    const a = choose(o, sim.currentRow);
    const s = sim.step(a);
    objective += s.reward;
    costs += s.cost;
    if (s.traded) trades++;
    if (a === 1) long++;
    if (s.drawdown > maxDd) maxDd = s.drawdown;
    equity = s.equity;
    steps++;
    if (s.done) break;
  }
  return {
    fromTime: market.timestamps[from],
    toTime: market.timestamps[to],
    steps,
    objective,
    totalReturn: equity - 1,
    logReturn: Math.log(equity),
    maxDrawdown: maxDd,
    trades,
    exposure: long / steps,
    costs,
  };
}

/** Greedy policy and buy-and-hold over rows [from, to] of `market`. */
export function evaluateOn(policy: PpoPolicy, market: PpoMarket, from: number, to: number): PpoEvaluation {
  const net = policyNetwork(policy);
  const greedy = (o: Float64Array): 0 | 1 => {
    const z = net.forward(o, 1);
    return z[1] > z[0] ? 1 : 0;
  };
  return {
    policy: runBacktest(market, policy.observation, policy.env, from, to, greedy),
    buyHold: runBacktest(market, policy.observation, policy.env, from, to, () => 1),
  };
}

/** Greedy out-of-sample check of a trained policy on other candles (e.g. a later period). */
export function evaluatePolicy(policy: PpoPolicy, candles: readonly Candle[]): PpoEvaluation {
  const market = marketFromCandles(candles);
  return evaluateOn(policy, market, 0, market.rowCount - 1);
}

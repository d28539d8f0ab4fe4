import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { checkCandles } from '../../lib/candle-hygiene';
import type { Candle } from '../../lib/candles';
import { FEATURE_SCHEMA } from '../../lib/features';
import { applyFill, makeFill, slippedPrice } from '../../lib/exchange/fill-model';
import {
  buildObservation, exportPolicy, fitNormalizer, loadPolicyManifest, marketFromCandles, OBSERVATION_WIDTH, PolicyArtifactError, PolicyInputError,
  policyAct, policyToOnnx, PpoAbortedError, PpoDataError, trainPpo, TradingEnv, type PpoMarket, type PpoMetrics, type PpoPolicy, type PpoProgress,
} from '../../models/ppo';
import { Mlp } from '../../models/ppo/mlp';
import { policyLossAndGrad, valueLossAndGrad } from '../../models/ppo/ppo';
import { Prng } from '../../lib/random';
import { readCandleCsv } from '../../infra/candle-files';
import { flippingTrendCandles } from '../../testkit/candles';
import { fixtureCandleFile } from '../../testkit/fixtures';

function recorded(name: string): Candle[] {
  const f = readCandleCsv(fixtureCandleFile(name));
  return checkCandles(f.candles, f.timeframeMs).candles;
}

/** A market with given closes and all-zero features: the environment's maths without the feature pipeline. */
function flatFeatureMarket(closes: number[]): PpoMarket {
  const width = FEATURE_SCHEMA.width;
  return {
    timestamps: Float64Array.from(closes, (_, i) => i * 3_600_000),
    closes: Float64Array.from(closes),
    features: new Float64Array(closes.length * width),
    rowCount: closes.length,
    width,
  };
}
const identityNorm = () => ({ mean: new Array(OBSERVATION_WIDTH).fill(0), scale: new Array(OBSERVATION_WIDTH).fill(1), clip: 5 });

describe('PPO trading environment', () => {
  const cfg = { feeRate: 0.001, slippageBps: 5, drawdownPenalty: 0 };

  it('a round trip at an unchanged price costs two fees and two slippages, as the paper fill model charges', () => {
    const env = new TradingEnv(flatFeatureMarket([100, 100, 100, 100]), identityNorm(), cfg);
    env.reset(0, 3);
    const buy = env.step(1);
    const sell = env.step(0);
    const hold = env.step(0);
    const f = 0.001;
    const s = 0.0005;
    const expected = ((1 - s) * (1 - f)) / ((1 + s) * (1 + f));
    assert.ok(Math.abs(sell.equity - expected) < 1e-15, `equity after the round trip ${sell.equity}, expected ${expected}`);
    assert.ok(buy.traded && sell.traded && !hold.traded, 'trades only on position changes');
    assert.equal(hold.reward, 0, 'flat at an unchanged price earns nothing');
    const roundTripLog = buy.logReturn + sell.logReturn;
    assert.ok(Math.abs(roundTripLog + 2 * f + 2 * s) < 1e-5, `round-trip log cost ${-roundTripLog} ~ 2 fees + 2 slippages = ${2 * f + 2 * s}`);
    assert.ok(Math.abs(buy.cost + sell.cost - (1 - expected)) < 1e-15, `reported costs ${buy.cost + sell.cost} = equity lost ${1 - expected}`);

    // The same round trip through lib/fill-model (what the paper exchange and the backtester run).
    const fees = { maker: f, taker: f };
    const buyPrice = slippedPrice('buy', 100, 5);
    const qty = 1 / (buyPrice * (1 + f));
    const afterBuy = applyFill({ base: '0', quote: '1.0000000001' }, makeFill('b', 'buy', qty, buyPrice, 'taker', fees));
    assert.ok(afterBuy, 'the paper fill model can pay for the buy');
    const afterSell = applyFill(afterBuy, makeFill('s', 'sell', qty, slippedPrice('sell', 100, 5), 'taker', fees));
    assert.ok(afterSell, 'the paper fill model can sell what it bought');
    const paperEquity = Number(afterSell.quote) - 1e-10;
    assert.ok(Math.abs(paperEquity - expected) < 1e-9, `paper fill model ends with ${paperEquity}, environment with ${expected}`);
  });

  it('a held position earns the close-to-close log return; costs are paid only when the position changes', () => {
    const env = new TradingEnv(flatFeatureMarket([100, 110, 99, 99]), identityNorm(), cfg);
    env.reset(0, 3);
    const enter = env.step(1);
    const f = 0.001;
    const s = 0.0005;
    assert.ok(Math.abs(enter.logReturn - (Math.log(110 / (100 * (1 + s) * (1 + f))))) < 1e-12, `entry step log return ${enter.logReturn}`);
    const held = env.step(1);
    assert.ok(Math.abs(held.logReturn - Math.log(99 / 110)) < 1e-12, `held step log return ${held.logReturn}`);
    assert.equal(held.cost, 0, 'no cost while holding');
    assert.ok(env.step(0).done, 'the episode ends at its last row');
    assert.throws(() => env.step(0), /episode is over/);
  });

  it('the drawdown penalty adds up to drawdownPenalty x the episode max drawdown', () => {
    const closes = [100, 120, 90, 110, 80, 130];
    const env = new TradingEnv(flatFeatureMarket(closes), identityNorm(), { feeRate: 0, slippageBps: 0, drawdownPenalty: 2 });
    env.reset(0, closes.length - 1);
    let sum = 0;
    let r;
    do {
      r = env.step(1);
      sum += r.reward;
    } while (!r.done);
    const maxDd = 1 - 80 / 120;
    assert.ok(Math.abs(sum - (Math.log(130 / 100) - 2 * maxDd)) < 1e-12, `sum of rewards ${sum} = log return - 2 x max drawdown ${maxDd}`);
  });

  it('never reads a candle beyond the step: changing the future changes nothing up to it', () => {
    const a = recorded('fixture_BTC-USDT_1h.csv').slice(0, 1200);
    const j = 900; // candles after j are rewritten
    const b = a.map((c, i) => (i > j ? { ...c, open: c.open * 1.3, high: c.high * 1.4, low: c.low * 1.2, close: c.close * 1.35, volume: c.volume * 3 } : c));
    const ma = marketFromCandles(a);
    const mb = marketFromCandles(b);
    const norm = fitNormalizer(ma, 0, 300, 5);
    const cfg2 = { feeRate: 0.001, slippageBps: 5, drawdownPenalty: 0.5 };
    const ea = new TradingEnv(ma, norm, cfg2);
    const eb = new TradingEnv(mb, norm, cfg2);
    const lastSame = j - FEATURE_SCHEMA.warmup; // row of candle j
    ea.reset(0, ma.rowCount - 1);
    eb.reset(0, mb.rowCount - 1);
    const oa = new Float64Array(OBSERVATION_WIDTH);
    const ob = new Float64Array(OBSERVATION_WIDTH);
    const actions = new Prng(5);
    let firstDiffObs = -1;
    let firstDiffReward = -1;
    for (let t = 0; t < ma.rowCount - 1; t++) {
      ea.observe(oa);
      eb.observe(ob);
      if (firstDiffObs < 0 && oa.some((v, k) => v !== ob[k])) firstDiffObs = t;
      const act = t >= lastSame - 3 ? 1 : ((actions.next() < 0.5 ? 1 : 0) as 0 | 1); // long into the boundary
      const ra = ea.step(act);
      const rb = eb.step(act);
      if (firstDiffReward < 0 && ra.reward !== rb.reward) firstDiffReward = t;
    }
    assert.equal(firstDiffObs, lastSame + 1, 'the first observation that differs is that of the first rewritten candle');
    assert.equal(firstDiffReward, lastSame, 'the first reward that differs is the step whose outcome is the first rewritten close');
  });

  it('refuses bad episodes, actions and too few candles with clear errors', () => {
    const env = new TradingEnv(flatFeatureMarket([1, 2, 3]), identityNorm(), cfg);
    assert.throws(() => env.reset(1, 1), /episode rows/);
    assert.throws(() => env.reset(0, 3), /episode rows/);
    env.reset(0, 2);
    assert.throws(() => env.step(2 as 0), /action must be 0/);
    assert.throws(() => marketFromCandles(recorded('fixture_BTC-USDT_1h.csv').slice(0, 100)), PpoDataError);
    assert.throws(() => new TradingEnv(flatFeatureMarket([1, 2]), identityNorm(), { feeRate: -1 }), /feeRate/);
  });
});

describe('PPO maths', () => {
  function numericGrad(f: () => number, params: Float64Array, i: number): number {
    const h = 1e-6;
    const x = params[i];
    params[i] = x + h;
    const up = f();
    params[i] = x - h;
    const down = f();
    params[i] = x;
    return (up - down) / (2 * h);
  }

  it('backprop of the clipped surrogate + entropy and of the value loss matches finite differences', () => {
    const rng = new Prng(11);
    const W = 6;
    const n = 12;
    const pi = Mlp.initialized([W, 5, 4, 2], rng, Math.SQRT2, 1);
    const vf = Mlp.initialized([W, 5, 1], rng, Math.SQRT2, 1);
    const obs = Float64Array.from({ length: n * W }, () => rng.gaussian());
    const actions = Uint8Array.from({ length: n }, () => (rng.next() < 0.5 ? 1 : 0));
    const advantages = Float64Array.from({ length: n }, () => rng.gaussian());
    // Old log-probs near the current ones, some far enough that the clip is active.
    const z = pi.forward(obs, n);
    const oldLogProb = Float64Array.from({ length: n }, (_, i) => {
      const lse = Math.log(Math.exp(z[2 * i]) + Math.exp(z[2 * i + 1]));
      return z[2 * i + actions[i]] - lse + (i % 3 === 0 ? 0.5 : 0.01 * rng.gaussian());
    });
    const batch = { obs, actions, oldLogProb, advantages, n };
    pi.zeroGrad();
    const parts = policyLossAndGrad(pi, batch, 0.2, 0.05);
    assert.ok(parts.clipFraction > 0, 'some samples have an active clip, so its branch is tested');
    const analytic = Float64Array.from(pi.grads);
    const loss = () => {
      const g = Float64Array.from(pi.grads);
      const l = policyLossAndGrad(pi, batch, 0.2, 0.05).loss;
      pi.grads.set(g);
      return l;
    };
    let worst = 0;
    for (let i = 0; i < pi.params.length; i++) worst = Math.max(worst, Math.abs(numericGrad(loss, pi.params, i) - analytic[i]));
    assert.ok(worst < 1e-7, `policy gradient differs from finite differences by ${worst}`);

    const returns = Float64Array.from({ length: n }, () => rng.gaussian());
    vf.zeroGrad();
    valueLossAndGrad(vf, obs, returns, n);
    const vAnalytic = Float64Array.from(vf.grads);
    const vLoss = () => {
      const g = Float64Array.from(vf.grads);
      const l = valueLossAndGrad(vf, obs, returns, n);
      vf.grads.set(g);
      return l;
    };
    let vWorst = 0;
    for (let i = 0; i < vf.params.length; i++) vWorst = Math.max(vWorst, Math.abs(numericGrad(vLoss, vf.params, i) - vAnalytic[i]));
    assert.ok(vWorst < 1e-7, `value gradient differs from finite differences by ${vWorst}`);
  });
});

describe('PPO training', function () {
  this.timeout(180_000); // trains a PPO policy
  const btc = () => recorded('fixture_BTC-USDT_1h.csv');

  it('is reproducible: the same seed gives the same weights bit for bit, another seed different ones', async () => {
    const candles = btc().slice(0, 2500);
    const opts = { steps: 2048, rolloutSteps: 512, episodeLength: 200, epochs: 3, minibatchSize: 128 };
    const a = await trainPpo(candles, { ...opts, seed: 42 });
    const b = await trainPpo(candles, { ...opts, seed: 42 });
    const c = await trainPpo(candles, { ...opts, seed: 43 });
    assert.deepEqual(a.policy, b.policy, 'same seed, same policy');
    assert.deepEqual(a.metrics.history, b.metrics.history, 'same seed, same training curve');
    assert.deepEqual(a.metrics.eval, b.metrics.eval, 'same seed, same held-out figures');
    const differing = a.policy.network.params.filter((p, i) => p !== c.policy.network.params[i]).length;
    assert.ok(differing > a.policy.network.params.length / 2, `another seed changes the weights (${differing} of ${a.policy.network.params.length} differ)`);
  });

  it('never reads the held-out candles: rewriting them changes the evaluation, not the policy', async () => {
    const a = btc().slice(0, 2500);
    const cut = a.length - 300;
    const warp = (i: number) => 0.7 + 0.002 * (i - cut); // a different path, not just a rescaled one
    const b = a.map((c, i) => (i >= cut ? { ...c, open: c.open * warp(i), high: c.high * warp(i), low: c.low * warp(i), close: c.close * warp(i) } : c));
    const opts = { seed: 9, steps: 1024, rolloutSteps: 512, episodeLength: 200, epochs: 2, evalFrom: a[cut].timestamp };
    const ra = await trainPpo(a, opts);
    const rb = await trainPpo(b, opts);
    assert.deepEqual(ra.policy, rb.policy, 'the policy (weights and normalization) depends on training rows only');
    assert.ok(ra.metrics.eval && rb.metrics.eval, 'both runs have a held-out evaluation');
    assert.notEqual(ra.metrics.eval.buyHold.totalReturn, rb.metrics.eval.buyHold.totalReturn, 'the held-out evaluation does read the rewritten candles');
    assert.equal(ra.metrics.evalRows?.from, a[cut].timestamp, 'held-out rows start at evalFrom');
    assert.ok(ra.metrics.trainRows.to < a[cut].timestamp, 'training rows end before evalFrom');
  });

  it('improves the objective on a trending synthetic series (and beats buy-and-hold out of sample)', async () => {
    const candles = flippingTrendCandles(4000, 7);
    const progress: PpoProgress[] = [];
    const { metrics } = await trainPpo(candles, { seed: 1, steps: 24_576, rolloutSteps: 1024, episodeLength: 256 }, (p) => progress.push(p));
    assert.equal(progress.length, 24, 'one progress report per iteration');
    assert.deepEqual(progress.map((p) => p.iteration), Array.from({ length: 24 }, (_, i) => i + 1));
    const h = metrics.history;
    const early = (h[0].meanReward + h[1].meanReward) / 2;
    const late = h.slice(-4).reduce((s, x) => s + x.meanReward, 0) / 4;
    assert.ok(late > early + 0.001, `mean per-step reward rose from ${early.toFixed(5)} to ${late.toFixed(5)}`);
    assert.ok(h[h.length - 1].entropy < h[0].entropy, `the policy became more decided (entropy ${h[0].entropy.toFixed(3)} -> ${h[h.length - 1].entropy.toFixed(3)})`);
    const ev = metrics.eval;
    assert.ok(ev, 'a held-out evaluation was made');
    // Untrained policies (learningRate 1e-9) score -0.99..0.56 here by luck of the init; trained ones 0.97..1.01 (seeds 1-3).
    assert.ok(ev.policy.objective > 0.8, `held-out objective ${ev.policy.objective.toFixed(3)} > 0.8 (flat scores 0)`);
    assert.ok(ev.policy.objective > ev.buyHold.objective + 0.2, `held-out objective ${ev.policy.objective.toFixed(3)} beats buy-and-hold ${ev.buyHold.objective.toFixed(3)}`);
  });

  it('rejects bad options and data with clear errors, and stops when aborted', async () => {
    const candles = btc().slice(0, 1200);
    await assert.rejects(trainPpo(candles, { seed: -1 }), /invalid PPO options: seed/);
    await assert.rejects(trainPpo(candles, { seed: 1, hidden: [] }), /invalid PPO options: hidden/);
    await assert.rejects(trainPpo(candles.slice(0, 520), { seed: 1 }), PpoDataError);
    await assert.rejects(trainPpo({ rows: 3 } as never, { seed: 1 }), /needs candles/);
    await assert.rejects(trainPpo(candles, { seed: 1, evalFrom: candles[560].timestamp }), /training rows/);
    const ac = new AbortController();
    ac.abort();
    await assert.rejects(trainPpo(candles, { seed: 1, steps: 4096 }, undefined, ac.signal), PpoAbortedError);
    const ds = await trainPpo({ candles }, { seed: 1, steps: 64, rolloutSteps: 64 });
    assert.equal(ds.metrics.steps, 64, 'accepts a dataset-like object carrying candles');
  });
});

describe('PPO policy export (ONNX)', function () {
  this.timeout(120_000); // trains a PPO policy and exports it to ONNX
  let dir: string;
  let policy: PpoPolicy;
  let metrics: PpoMetrics;
  let heldOut: Float64Array[];

  before(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'ppo-onnx-'));
    const candles = recorded('fixture_BTC-USDT_1h.csv');
    const result = await trainPpo(candles, { seed: 3, steps: 4096, rolloutSteps: 1024 });
    policy = result.policy;
    metrics = result.metrics;
    // Held-out observations: every row after the training period, both position flags.
    const market = marketFromCandles(candles);
    heldOut = [];
    for (let k = 0; k < market.rowCount; k++) {
      if (market.timestamps[k] <= policy.provenance.trainTo) continue;
      heldOut.push(buildObservation(market.features.subarray(k * market.width, (k + 1) * market.width), k % 2 === 0 ? 'long' : 'flat'));
    }
    assert.ok(heldOut.length > 500, `enough held-out rows (${heldOut.length})`);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('ONNX Runtime gives the TypeScript policy outputs within 1e-5 on held-out observations', async () => {
    const { onnxPath, manifestPath } = exportPolicy(policy, path.join(dir, 'ppo.onnx'), metrics);
    const loaded = loadPolicyManifest(manifestPath);
    assert.deepEqual(loaded.policy, policy, 'the manifest round-trips the policy exactly');
    assert.deepEqual(loaded.manifest.metrics?.eval, metrics.eval, 'the manifest carries the training metrics');
    const session = await ort.InferenceSession.create(readFileSync(onnxPath));
    assert.deepEqual(session.inputNames, ['obs']);
    const n = heldOut.length;
    const x = new Float32Array(n * OBSERVATION_WIDTH);
    heldOut.forEach((o, k) => x.set(o, k * OBSERVATION_WIDTH));
    const out = await session.run({ obs: new ort.Tensor('float32', x, [n, OBSERVATION_WIDTH]) });
    const probs = out.probabilities.data as Float32Array;
    let worst = 0;
    let longs = 0;
    let agree = 0;
    for (let k = 0; k < n; k++) {
      const ts = policyAct(loaded.policy, heldOut[k]);
      worst = Math.max(worst, Math.abs(probs[2 * k + 1] - ts.probLong), Math.abs(probs[2 * k] - (1 - ts.probLong)));
      if (ts.action === 'long') longs++;
      if ((probs[2 * k + 1] > 0.5) === (ts.action === 'long')) agree++;
    }
    assert.ok(worst < 1e-5, `max |ONNX - TS| probability difference ${worst}`);
    assert.ok(longs > 0 && longs < n, `the parity set holds both decisions (${longs} long of ${n})`);
    assert.ok(agree >= n - 2, `decisions agree on ${agree} of ${n} rows`);
    await session.release();
  });

  it('the graph is plain operators with the normalization inside', async () => {
    const bytes = policyToOnnx(policy);
    const session = await ort.InferenceSession.create(bytes);
    // A raw observation far outside the training range must be clipped inside the graph, as in TS.
    const wild = buildObservation(new Array(FEATURE_SCHEMA.width).fill(1e6), 'flat');
    const out = await session.run({ obs: new ort.Tensor('float32', Float32Array.from(wild), [1, OBSERVATION_WIDTH]) });
    const ts = policyAct(policy, wild);
    assert.ok(Math.abs((out.probabilities.data as Float32Array)[1] - ts.probLong) < 1e-5, 'clipping matches');
    const text = Buffer.from(bytes).toString('latin1');
    for (const op of ['Sub', 'Mul', 'Clip', 'Gemm', 'Tanh', 'Softmax']) assert.ok(text.includes(op), `graph uses ${op}`);
    await session.release();
  });

  it('a corrupt, missing or mismatched artifact is refused with PolicyArtifactError', () => {
    const { onnxPath, manifestPath } = exportPolicy(policy, path.join(dir, 'bad', 'ppo.onnx'), { note: 'test' });
    const problem = (fn: () => unknown) => {
      try {
        fn();
      } catch (err) {
        assert.ok(err instanceof PolicyArtifactError, `expected PolicyArtifactError, got ${String(err)}`);
        return err.problem;
      }
      assert.fail('expected the load to fail');
    };
    assert.equal(loadPolicyManifest(onnxPath).manifest.metrics?.note, 'test', 'loads by the .onnx path too');
    assert.equal(problem(() => loadPolicyManifest(manifestPath, { version: 99, hash: 'f'.repeat(64) })), 'schema_mismatch');
    const bytes = readFileSync(onnxPath);
    bytes[bytes.length - 5] ^= 0xff;
    writeFileSync(onnxPath, bytes);
    assert.equal(problem(() => loadPolicyManifest(manifestPath)), 'checksum');
    rmSync(onnxPath);
    assert.equal(problem(() => loadPolicyManifest(manifestPath)), 'missing');
    writeFileSync(manifestPath, '{"format": "durable-trader/ppo-manifest"');
    assert.equal(problem(() => loadPolicyManifest(manifestPath)), 'corrupt');
    writeFileSync(manifestPath, '{"format": "something-else"}');
    assert.equal(problem(() => loadPolicyManifest(manifestPath)), 'corrupt');
    assert.equal(problem(() => loadPolicyManifest(path.join(dir, 'nowhere.manifest.json'))), 'missing');
  });

  it('policyAct refuses malformed observations', () => {
    assert.throws(() => policyAct(policy, new Float64Array(3)), PolicyInputError);
    const nan = buildObservation(new Array(FEATURE_SCHEMA.width).fill(0), 'flat');
    nan[2] = NaN;
    assert.throws(() => policyAct(policy, nan), /not finite/);
    const half = buildObservation(new Array(FEATURE_SCHEMA.width).fill(0), 'flat');
    half[OBSERVATION_WIDTH - 1] = 0.5;
    assert.throws(() => policyAct(policy, half), /position flag/);
    assert.throws(() => buildObservation([1, 2], 'flat'), new RegExp(`expected ${FEATURE_SCHEMA.width} features`));
    assert.throws(() => exportPolicy(policy, path.join(dir, 'ppo.bin')), /must end in .onnx/);
  });
});

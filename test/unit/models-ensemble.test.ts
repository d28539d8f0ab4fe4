import assert from 'node:assert/strict';
import * as ort from 'onnxruntime-node';
import { checkCandles } from '../../lib/candle-hygiene';
import { buildDataset, sliceDataset, type Dataset } from '../../models/dataset';
import {
  auc, brier, calibrate, classifierMetrics, combineMembers, fitPlatt, logLoss, memberToOnnx, MEMBER_INPUT, MEMBER_OUTPUT, predictEnsemble,
  predictMemberRaw, reliability, trainEnsemble, trainGradientBoosting, trainLogistic, trainRandomForest, treeDepth, type TrainEnsembleOptions,
} from '../../models/ensemble';
import { readCandleCsv } from '../../infra/candle-files';
import { Prng } from '../../lib/random';
import { fixtureCandleFile } from '../../testkit/fixtures';

const SMALL: TrainEnsembleOptions = { seed: 11, forest: { trees: 30 }, boosting: { rounds: 60 } };

/** Two informative features and two noise features, labels from a known logistic model. */
function synthetic(n: number, seed: number): Dataset {
  const rng = new Prng(seed);
  const width = 4;
  const X = new Float32Array(n * width);
  const y = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    for (let f = 0; f < width; f++) X[i * width + f] = rng.next() * 2 - 1;
    const z = 6 * X[i * width] - 4 * X[i * width + 1];
    y[i] = rng.next() < 1 / (1 + Math.exp(-z)) ? 1 : 0;
  }
  const ts = Float64Array.from({ length: n }, (_, i) => i * 1000);
  return {
    inputNames: ['a', 'b', 'noise1', 'noise2'], featureSchema: { version: 0, hash: 'synthetic' }, timeframeMs: 1000, width, rows: n, X, y,
    labels: { kind: 'forward_return_net_of_cost', horizon: 1, roundTripCost: 0, costLogReturn: 0 },
    forwardLogReturn: new Float64Array(n), timestamps: ts, labelEnd: ts.map((t) => t + 1000),
  };
}

describe('models/ensemble: metrics and calibration', () => {
  it('AUC, log loss, Brier and reliability on hand-checked inputs', () => {
    assert.equal(auc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]), 0.75);
    assert.equal(auc([0.2, 0.2, 0.2], [0, 1, 0]), 0.5);
    assert.equal(auc([0.9, 0.1], [1, 0]), 1);
    assert.ok(Math.abs(logLoss([0.8, 0.3], [1, 0]) - -(Math.log(0.8) + Math.log(0.7)) / 2) < 1e-12, 'log loss');
    assert.ok(Math.abs(brier([0.8, 0.3], [1, 0]) - (0.04 + 0.09) / 2) < 1e-12, 'brier');
    const rel = reliability([0.05, 0.15, 0.12, 0.95], [0, 1, 0, 1], 10);
    assert.equal(rel.bins.reduce((s, b) => s + b.count, 0), 4);
    assert.equal(rel.bins[1].count, 2);
    assert.equal(rel.bins[1].observedRate, 0.5);
    assert.ok(Math.abs(rel.ece - (0.25 * 0.05 + 0.5 * Math.abs(0.5 - 0.135) + 0.25 * 0.05)) < 1e-12, `ece ${rel.ece}`);
    assert.throws(() => auc([0.1], [1, 0]), /differ in length/);
  });

  it('Platt scaling recovers a known distortion and leaves ranking unchanged', () => {
    const rng = new Prng(5);
    const p: number[] = [];
    const y: number[] = [];
    for (let i = 0; i < 20000; i++) {
      const z = rng.next() * 6 - 3;
      y.push(rng.next() < 1 / (1 + Math.exp(-z)) ? 1 : 0);
      p.push(1 / (1 + Math.exp(-(z - 0.5) / 2))); // under-confident and shifted: z = 2 logit(p) + 0.5
    }
    const c = fitPlatt(p, y);
    assert.ok(Math.abs(c.a - 2) < 0.15 && Math.abs(c.b - 0.5) < 0.1, `a=${c.a} b=${c.b}, expected 2 and 0.5`);
    const q = p.map((v) => calibrate(c, v));
    assert.ok(Math.abs(auc(q, y) - auc(p, y)) < 1e-12, 'monotone map keeps AUC');
    assert.ok(reliability(q, y).ece < reliability(p, y).ece, 'calibrated probabilities are better calibrated');
  });

  it('soft voting: mean probability, confidence = margin discounted by disagreement', () => {
    const same = combineMembers([0.7, 0.7, 0.7]);
    assert.ok(Math.abs(same.probUp - 0.7) < 1e-12 && Math.abs(same.confidence - 0.4) < 1e-12, JSON.stringify(same));
    const c = combineMembers([0.9, 0.5, 0.7]);
    assert.ok(Math.abs(c.probUp - 0.7) < 1e-12 && Math.abs(c.confidence - 0.4 * 0.6) < 1e-12, JSON.stringify(c));
    assert.equal(combineMembers([0.5, 0.5, 0.5]).confidence, 0);
  });
});

describe('models/ensemble: members learn', () => {
  const train = synthetic(4000, 1);
  const test = synthetic(2000, 2);
  for (const [name, fit] of [
    ['logistic', () => trainLogistic(train)],
    ['random_forest', () => trainRandomForest(train, { trees: 40, seed: 3 })],
    ['gbt', () => trainGradientBoosting(train, { rounds: 80, seed: 3 })],
  ] as const) {
    it(`${name} separates a synthetic signal from noise (AUC > 0.85 out of sample)`, () => {
      const m = fit();
      const p = predictMemberRaw(m, test.X, test.rows);
      const a = auc(p, test.y);
      assert.ok(a > 0.85, `${name} AUC ${a}`);
    });
  }

  it('logistic regression folds the standardization into raw-space weights', () => {
    const m = trainLogistic(train, { l2: 1e-4 });
    // True model: z = 6a - 4b; the fitted raw weights must be close, noise weights near 0.
    assert.ok(Math.abs(m.weights[0] - 6) < 0.6 && Math.abs(m.weights[1] + 4) < 0.5, `weights ${Array.from(m.weights)}`);
    assert.ok(Math.abs(m.weights[2]) < 0.4 && Math.abs(m.weights[3]) < 0.4, `noise weights ${Array.from(m.weights)}`);
  });

  it('trees respect the depth limit', () => {
    const f = trainRandomForest(train, { trees: 5, maxDepth: 4, seed: 1 });
    const g = trainGradientBoosting(train, { rounds: 5, maxDepth: 2, seed: 1 });
    assert.ok(f.trees.every((t) => treeDepth(t) <= 4), 'forest depth');
    assert.ok(g.trees.every((t) => treeDepth(t) <= 2), 'boosting depth');
  });

  it('rejects bad hyper-parameters', () => {
    assert.throws(() => trainRandomForest(train, { trees: 0 }), /trees must be a positive integer/);
    assert.throws(() => trainGradientBoosting(train, { learningRate: 0 }), /learningRate/);
    assert.throws(() => trainLogistic(train, { l2: 0 }), /l2 must be > 0/);
  });
});

describe('models/ensemble on BTC 1h: reproducibility and ONNX Runtime parity', function () {
  this.timeout(120_000); // trains the ensemble on the 1h BTC fixture (twice, for reproducibility) and runs it in ONNX Runtime
  let ds: Dataset;
  let a: ReturnType<typeof trainEnsemble>;

  before(() => {
    const f = readCandleCsv(fixtureCandleFile('binanceusdm_BTC-USDT_1h.csv'));
    const candles = checkCandles(f.candles, f.timeframeMs).candles.slice(0, 7000);
    ds = buildDataset(candles, f.timeframeMs, { horizon: 4, roundTripCost: 0.002 });
    a = trainEnsemble(ds, SMALL);
  });

  it('the same seed gives identical models and outputs; another seed does not', () => {
    const b = trainEnsemble(ds, SMALL);
    assert.deepEqual(b.models, a.models);
    assert.deepEqual(b.metrics.test, a.metrics.test);
    const test = sliceDataset(ds, { start: ds.rows - 500, end: ds.rows });
    assert.deepEqual(predictEnsemble(b.models, test.X, test.rows), predictEnsemble(a.models, test.X, test.rows));
    const c = trainEnsemble(ds, { ...SMALL, seed: 12 });
    const pa = predictMemberRaw(a.models.members[1].model, test.X, test.rows);
    const pc = predictMemberRaw(c.models.members[1].model, test.X, test.rows);
    assert.notDeepEqual(pc, pa, 'a different seed grows a different forest');
  });

  it('reports accuracy, AUC, log loss and calibration per member and for the ensemble', () => {
    for (const k of ['logistic', 'random_forest', 'gbt', 'ensemble'] as const) {
      const m = a.metrics.test[k];
      assert.equal(m.rows, a.metrics.splits.test.end - a.metrics.splits.test.start);
      for (const v of [m.accuracy, m.auc, m.logLoss, m.brier, m.ece]) assert.ok(Number.isFinite(v), `${k} metric ${v}`);
      assert.equal(m.reliability.length, 10);
    }
    assert.ok(a.metrics.splits.train.to < a.metrics.splits.validation.from, 'train labels end before validation starts');
    assert.ok(a.metrics.splits.validation.to < a.metrics.splits.test.from, 'validation labels end before test starts');
  });

  it('ONNX Runtime outputs equal the TypeScript members within 1e-5 on held-out rows (small and default-size models)', async () => {
    const test = sliceDataset(ds, a.metrics.splits.test);
    const full = trainEnsemble(ds, { seed: 2 }); // default sizes: 100 trees of depth 8, 150 boosting rounds
    for (const m of [...a.models.members, ...full.models.members]) {
      const bytes = memberToOnnx(m.model, { member: m.name, inputNames: ds.inputNames, featureSchemaHash: ds.featureSchema.hash });
      const session = await ort.InferenceSession.create(bytes);
      const out = await session.run({ [MEMBER_INPUT]: new ort.Tensor('float32', test.X.slice(), [test.rows, test.width]) });
      const z = out[MEMBER_OUTPUT].data as Float32Array;
      assert.deepEqual(session.outputNames, [MEMBER_OUTPUT]);
      const ts = predictMemberRaw(m.model, test.X, test.rows);
      let worst = 0;
      for (let r = 0; r < test.rows; r++) {
        worst = Math.max(worst, Math.abs(z[2 * r + 1] - ts[r]), Math.abs(z[2 * r] - (1 - ts[r])));
      }
      assert.ok(worst < 1e-5, `${m.name}: worst |ONNX - TS| = ${worst} over ${test.rows} rows`);
      await session.release();
    }
  });

  it('walk-forward evaluation retrains per fold and scores each test block', () => {
    const r = trainEnsemble(ds, { ...SMALL, forest: { trees: 10 }, boosting: { rounds: 20 }, walkForward: { folds: 3 } });
    assert.equal(r.metrics.walkForward?.length, 3);
    for (const f of r.metrics.walkForward!) assert.ok(Number.isFinite(f.metrics.ensemble.auc), `fold ${f.fold} AUC`);
    const m = classifierMetrics([0.2, 0.8], [0, 1]);
    assert.equal(m.accuracy, 1);
  });
});

import type { Dataset } from '../dataset';
import { Prng } from '../../lib/random';
import { binFeatures, growTree, treeValue, type Criterion, type Tree } from './trees';

/**
 * Gradient-boosted trees for the logistic loss (second-order, as XGBoost): each round fits a
 * depth-limited tree to the gradient and hessian of the log loss on a seeded row subsample;
 * leaves are the Newton step -G / (H + lambda), shrunk by the learning rate.
 * Output: sigmoid(base + sum of leaves).
 */
export interface GradientBoostingParams {
  rounds: number;
  learningRate: number;
  maxDepth: number;
  /** L2 on leaf values. */
  lambda: number;
  /** Minimum rows and minimum hessian in a leaf. */
  minLeaf: number;
  minHessian: number;
  /** Fraction of rows each round sees (stochastic boosting). */
  subsample: number;
  maxBins: number;
  seed: number;
}

export const DEFAULT_BOOSTING: GradientBoostingParams = {
  rounds: 150, learningRate: 0.05, maxDepth: 3, lambda: 1, minLeaf: 40, minHessian: 1, subsample: 0.8, maxBins: 64, seed: 1,
};

export interface GradientBoostingModel {
  kind: 'gbt';
  width: number;
  params: GradientBoostingParams;
  /** Log-odds of the training base rate (float32). */
  base: number;
  trees: Tree[];
}

const sigmoid = (z: number) => 1 / (1 + Math.exp(-z));

export function trainGradientBoosting(ds: Dataset, params: Partial<GradientBoostingParams> = {}, progress?: (done: number, total: number) => void): GradientBoostingModel {
  const p = { ...DEFAULT_BOOSTING, ...params };
  if (!(Number.isInteger(p.rounds) && p.rounds >= 1)) throw new RangeError(`rounds must be a positive integer, got ${p.rounds}`);
  if (!(p.learningRate > 0 && p.learningRate <= 1)) throw new RangeError(`learningRate must be in (0, 1], got ${p.learningRate}`);
  if (!(Number.isInteger(p.maxDepth) && p.maxDepth >= 1)) throw new RangeError(`maxDepth must be a positive integer, got ${p.maxDepth}`);
  if (!(p.subsample > 0 && p.subsample <= 1)) throw new RangeError(`subsample must be in (0, 1], got ${p.subsample}`);
  if (!(p.lambda >= 0)) throw new RangeError(`lambda must be >= 0, got ${p.lambda}`);
  const n = ds.rows;
  const binned = binFeatures(ds.X, n, ds.width, p.maxBins);
  const rng = new Prng(p.seed);
  let positives = 0;
  for (let i = 0; i < n; i++) positives += ds.y[i];
  const rate = Math.min(1 - 1e-6, Math.max(1e-6, positives / n));
  const base = Math.fround(Math.log(rate / (1 - rate)));
  const score = new Float64Array(n).fill(base);
  const g = new Float64Array(n);
  const h = new Float64Array(n);
  const ones = new Float64Array(n).fill(1);
  const all = Int32Array.from({ length: n }, (_, i) => i);
  const take = Math.max(1, Math.round(p.subsample * n));
  const crit: Criterion = {
    score: (G, H) => (G * G) / (H + p.lambda),
    leaf: (G, H) => (-p.learningRate * G) / (H + p.lambda),
    allowed: (_G, H, c) => c >= p.minLeaf && H >= p.minHessian,
  };
  const trees: Tree[] = [];
  for (let t = 0; t < p.rounds; t++) {
    for (let i = 0; i < n; i++) {
      const q = sigmoid(score[i]);
      g[i] = q - ds.y[i];
      h[i] = Math.max(q * (1 - q), 1e-12);
    }
    let rows = all;
    if (take < n) {
      rng.sampleInPlace(all, take);
      rows = all.slice(0, take).sort();
    }
    const tree = growTree(binned, rows === all ? all.slice() : rows, g, h, ones, crit, { maxDepth: p.maxDepth });
    trees.push(tree);
    for (let i = 0; i < n; i++) score[i] += treeValue(tree, ds.X, i * ds.width);
    progress?.(t + 1, p.rounds);
  }
  return { kind: 'gbt', width: ds.width, params: p, base, trees };
}

/** Raw score (log-odds) per row. */
export function gradientBoostingMargin(model: GradientBoostingModel, X: Float32Array, rows: number): Float64Array {
  const out = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let s = model.base;
    for (const tree of model.trees) s += treeValue(tree, X, r * model.width);
    out[r] = s;
  }
  return out;
}

export function predictGradientBoosting(model: GradientBoostingModel, X: Float32Array, rows: number): Float64Array {
  return gradientBoostingMargin(model, X, rows).map(sigmoid);
}

import type { Dataset } from '../dataset';
import { Prng } from '../../lib/random';
import { binFeatures, growTree, treeValue, type Criterion, type Tree } from './trees';

/**
 * Random forest classifier: Gini trees on seeded bootstrap samples, a random subset of features
 * tried at each split. Output = mean over trees of the leaf's share of positive rows.
 */
export interface RandomForestParams {
  trees: number;
  maxDepth: number;
  /** Minimum bootstrap weight in a leaf. */
  minLeaf: number;
  /** Features tried per split; default round(sqrt(width)). */
  featuresPerSplit?: number;
  maxBins: number;
  seed: number;
}

export const DEFAULT_FOREST: RandomForestParams = { trees: 100, maxDepth: 8, minLeaf: 40, maxBins: 64, seed: 1 };

export interface RandomForestModel {
  kind: 'random_forest';
  width: number;
  params: RandomForestParams;
  trees: Tree[];
}

export function trainRandomForest(ds: Dataset, params: Partial<RandomForestParams> = {}, progress?: (done: number, total: number) => void): RandomForestModel {
  const p = { ...DEFAULT_FOREST, ...params };
  if (!(Number.isInteger(p.trees) && p.trees >= 1)) throw new RangeError(`trees must be a positive integer, got ${p.trees}`);
  if (!(Number.isInteger(p.maxDepth) && p.maxDepth >= 1)) throw new RangeError(`maxDepth must be a positive integer, got ${p.maxDepth}`);
  if (!(p.minLeaf >= 1)) throw new RangeError(`minLeaf must be >= 1, got ${p.minLeaf}`);
  const n = ds.rows;
  const binned = binFeatures(ds.X, n, ds.width, p.maxBins);
  const rng = new Prng(p.seed);
  const mtry = p.featuresPerSplit ?? Math.max(1, Math.round(Math.sqrt(ds.width)));
  const gini: Criterion = {
    // s1 = weighted positives, s2 = weight: minus the node's weighted Gini impurity.
    score: (pos, w) => (w > 0 ? (-2 * pos * (w - pos)) / w : 0),
    leaf: (pos, w) => (w > 0 ? pos / w : 0.5),
    allowed: (_pos, w) => w >= p.minLeaf,
  };
  const count = new Float64Array(n);
  const pos = new Float64Array(n);
  const trees: Tree[] = [];
  for (let t = 0; t < p.trees; t++) {
    count.fill(0);
    for (let i = 0; i < n; i++) count[rng.int(0, n - 1)]++;
    let m = 0;
    for (let i = 0; i < n; i++) if (count[i] > 0) m++;
    const rows = new Int32Array(m);
    m = 0;
    for (let i = 0; i < n; i++) {
      if (count[i] > 0) rows[m++] = i;
      pos[i] = count[i] * ds.y[i];
    }
    trees.push(growTree(binned, rows, pos, count, count, gini, { maxDepth: p.maxDepth, featuresPerSplit: mtry, rng }));
    progress?.(t + 1, p.trees);
  }
  return { kind: 'random_forest', width: ds.width, params: p, trees };
}

export function predictRandomForest(model: RandomForestModel, X: Float32Array, rows: number): Float64Array {
  const out = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let s = 0;
    for (const tree of model.trees) s += treeValue(tree, X, r * model.width);
    out[r] = s / model.trees.length;
  }
  return out;
}

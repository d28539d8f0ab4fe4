import type { Prng } from '../../lib/random';

/**
 * Histogram decision trees shared by the random forest and gradient boosting.
 *
 * Candidate thresholds are quantiles of the training values of each feature, taken as the
 * values themselves (float32, as the rows are stored): a row goes left when x <= threshold,
 * exactly ONNX's BRANCH_LEQ on float inputs, so TypeScript and ONNX Runtime route every row
 * the same way. Split search then works on small integer bin codes (one histogram pass per
 * node and feature), which is what keeps a 100-tree forest on a year of hourly data fast.
 */

/** One tree, flat. Node 0 is the root; `feature[i] < 0` marks a leaf. Nodes are in pre-order. */
export interface Tree {
  feature: Int32Array;
  threshold: Float32Array;
  left: Int32Array;
  right: Int32Array;
  /** Leaf output (float32-representable); 0 on internal nodes. */
  value: Float64Array;
}

export interface Binned {
  rows: number;
  width: number;
  /** Per feature, ascending distinct float32 cut values. */
  thresholds: Float32Array[];
  /** rows x width, bin code of each value: the first k with x <= thresholds[f][k], else thresholds[f].length. */
  codes: Uint8Array;
}

export const MAX_BINS = 255;

export function binFeatures(X: Float32Array, rows: number, width: number, maxBins = 64): Binned {
  if (!(maxBins >= 2 && maxBins <= MAX_BINS)) throw new RangeError(`maxBins must be in 2..${MAX_BINS}, got ${maxBins}`);
  const thresholds: Float32Array[] = [];
  const col = new Float32Array(rows);
  for (let f = 0; f < width; f++) {
    for (let r = 0; r < rows; r++) col[r] = X[r * width + f];
    col.sort();
    const cuts: number[] = [];
    const max = col[rows - 1];
    for (let j = 1; j < maxBins; j++) {
      const v = col[Math.floor((j * rows) / maxBins)];
      if (v < max && (cuts.length === 0 || v > cuts[cuts.length - 1])) cuts.push(v);
    }
    thresholds.push(Float32Array.from(cuts));
  }
  const codes = new Uint8Array(rows * width);
  for (let r = 0; r < rows; r++) {
    for (let f = 0; f < width; f++) {
      const t = thresholds[f];
      const x = X[r * width + f];
      let lo = 0;
      let hi = t.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (x <= t[mid]) hi = mid;
        else lo = mid + 1;
      }
      codes[r * width + f] = lo;
    }
  }
  return { rows, width, thresholds, codes };
}

/**
 * What a split optimises. Each row carries two sums (s1, s2) and a count c; a node's quality is
 * score(s1, s2) and a split's gain is score(left) + score(right) - score(parent).
 */
export interface Criterion {
  score(s1: number, s2: number): number;
  leaf(s1: number, s2: number): number;
  /** Whether a child with these sums may exist (minimum samples, minimum hessian). */
  allowed(s1: number, s2: number, c: number): boolean;
}

export interface GrowOptions {
  maxDepth: number;
  /** Features tried per split (random subset); undefined = all. */
  featuresPerSplit?: number;
  minGain?: number;
  rng?: Prng;
}

/**
 * Grows one tree over `rows` (indices into the binned data, modified in place) with per-row
 * sums s1, s2 and counts c (indexed by row number).
 */
export function growTree(binned: Binned, rows: Int32Array, s1: Float64Array, s2: Float64Array, c: Float64Array, crit: Criterion, opts: GrowOptions): Tree {
  const { width, codes, thresholds } = binned;
  const nodes = { feature: [] as number[], threshold: [] as number[], left: [] as number[], right: [] as number[], value: [] as number[] };
  const h1 = new Float64Array(MAX_BINS + 1);
  const h2 = new Float64Array(MAX_BINS + 1);
  const hc = new Float64Array(MAX_BINS + 1);
  const featureOrder = Int32Array.from({ length: width }, (_, i) => i);
  const tries = Math.min(width, opts.featuresPerSplit ?? width);
  const minGain = opts.minGain ?? 1e-12;
  if (tries < width && !opts.rng) throw new Error('growTree: featuresPerSplit needs an rng');

  const addNode = () => {
    nodes.feature.push(-1);
    nodes.threshold.push(0);
    nodes.left.push(-1);
    nodes.right.push(-1);
    nodes.value.push(0);
    return nodes.feature.length - 1;
  };

  const grow = (start: number, end: number, depth: number): number => {
    const id = addNode();
    let t1 = 0;
    let t2 = 0;
    let tc = 0;
    for (let i = start; i < end; i++) {
      const r = rows[i];
      t1 += s1[r];
      t2 += s2[r];
      tc += c[r];
    }
    const makeLeaf = () => {
      nodes.value[id] = Math.fround(crit.leaf(t1, t2));
      return id;
    };
    if (depth >= opts.maxDepth || end - start < 2) return makeLeaf();
    const parent = crit.score(t1, t2);

    let bestGain = minGain;
    let bestFeature = -1;
    let bestBin = -1;
    if (tries < width) (opts.rng as Prng).sampleInPlace(featureOrder, tries);
    for (let q = 0; q < tries; q++) {
      const f = featureOrder[q];
      const nb = thresholds[f].length;
      if (nb === 0) continue;
      h1.fill(0, 0, nb + 1);
      h2.fill(0, 0, nb + 1);
      hc.fill(0, 0, nb + 1);
      for (let i = start; i < end; i++) {
        const r = rows[i];
        const b = codes[r * width + f];
        h1[b] += s1[r];
        h2[b] += s2[r];
        hc[b] += c[r];
      }
      let l1 = 0;
      let l2 = 0;
      let lc = 0;
      for (let b = 0; b < nb; b++) {
        l1 += h1[b];
        l2 += h2[b];
        lc += hc[b];
        const r1 = t1 - l1;
        const r2 = t2 - l2;
        const rc = tc - lc;
        if (!crit.allowed(l1, l2, lc) || !crit.allowed(r1, r2, rc)) continue;
        const gain = crit.score(l1, l2) + crit.score(r1, r2) - parent;
        if (gain > bestGain) {
          bestGain = gain;
          bestFeature = f;
          bestBin = b;
        }
      }
    }
    if (bestFeature < 0) return makeLeaf();

    // Partition rows in place: bin <= bestBin to the left, stable order not needed.
    let i = start;
    let j = end - 1;
    while (i <= j) {
      if (codes[rows[i] * width + bestFeature] <= bestBin) i++;
      else {
        const t = rows[i];
        rows[i] = rows[j];
        rows[j] = t;
        j--;
      }
    }
    nodes.feature[id] = bestFeature;
    nodes.threshold[id] = thresholds[bestFeature][bestBin];
    nodes.left[id] = grow(start, i, depth + 1);
    nodes.right[id] = grow(i, end, depth + 1);
    return id;
  };

  grow(0, rows.length, 0);
  return {
    feature: Int32Array.from(nodes.feature),
    threshold: Float32Array.from(nodes.threshold),
    left: Int32Array.from(nodes.left),
    right: Int32Array.from(nodes.right),
    value: Float64Array.from(nodes.value),
  };
}

/** The leaf value of row `x` (float32 values, as ONNX Runtime sees them). */
export function treeValue(tree: Tree, x: Float32Array, offset: number): number {
  let n = 0;
  const { feature, threshold, left, right } = tree;
  while (feature[n] >= 0) n = x[offset + feature[n]] <= threshold[n] ? left[n] : right[n];
  return tree.value[n];
}

export function treeDepth(tree: Tree, node = 0): number {
  return tree.feature[node] < 0 ? 0 : 1 + Math.max(treeDepth(tree, tree.left[node]), treeDepth(tree, tree.right[node]));
}

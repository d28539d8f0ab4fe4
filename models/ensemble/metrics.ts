/**
 * Classification metrics on probabilities of the positive class. Each takes predictions and
 * 0/1 labels of equal length.
 */
export interface ReliabilityBin {
  lo: number;
  hi: number;
  count: number;
  meanPredicted: number | null;
  observedRate: number | null;
}

export interface ClassifierMetrics {
  rows: number;
  positiveRate: number;
  accuracy: number;
  auc: number;
  logLoss: number;
  brier: number;
  /** Expected calibration error: bin-weighted |observed - predicted|. */
  ece: number;
  reliability: ReliabilityBin[];
}

function check(p: ArrayLike<number>, y: ArrayLike<number>): void {
  if (p.length !== y.length) throw new RangeError(`predictions (${p.length}) and labels (${y.length}) differ in length`);
  if (p.length === 0) throw new RangeError('no rows to evaluate');
}

export function accuracy(p: ArrayLike<number>, y: ArrayLike<number>, threshold = 0.5): number {
  check(p, y);
  let ok = 0;
  for (let i = 0; i < p.length; i++) if ((p[i] >= threshold ? 1 : 0) === y[i]) ok++;
  return ok / p.length;
}

/** Area under the ROC curve by the rank-sum (Mann-Whitney) formula; ties get mid-ranks. 0.5 when one class is absent. */
export function auc(p: ArrayLike<number>, y: ArrayLike<number>): number {
  check(p, y);
  const idx = Array.from({ length: p.length }, (_, i) => i).sort((a, b) => p[a] - p[b]);
  let rankSumPos = 0;
  let pos = 0;
  for (let i = 0; i < idx.length; ) {
    let j = i;
    while (j + 1 < idx.length && p[idx[j + 1]] === p[idx[i]]) j++;
    const mid = (i + j) / 2 + 1;
    for (let k = i; k <= j; k++) if (y[idx[k]]) {
      rankSumPos += mid;
      pos++;
    }
    i = j + 1;
  }
  const neg = p.length - pos;
  if (pos === 0 || neg === 0) return 0.5;
  return (rankSumPos - (pos * (pos + 1)) / 2) / (pos * neg);
}

export function logLoss(p: ArrayLike<number>, y: ArrayLike<number>): number {
  check(p, y);
  let s = 0;
  for (let i = 0; i < p.length; i++) {
    const q = Math.min(1 - 1e-15, Math.max(1e-15, p[i]));
    s -= y[i] ? Math.log(q) : Math.log(1 - q);
  }
  return s / p.length;
}

export function brier(p: ArrayLike<number>, y: ArrayLike<number>): number {
  check(p, y);
  let s = 0;
  for (let i = 0; i < p.length; i++) s += (p[i] - y[i]) ** 2;
  return s / p.length;
}

export function reliability(p: ArrayLike<number>, y: ArrayLike<number>, bins = 10): { bins: ReliabilityBin[]; ece: number } {
  check(p, y);
  const sumP = new Float64Array(bins);
  const sumY = new Float64Array(bins);
  const count = new Float64Array(bins);
  for (let i = 0; i < p.length; i++) {
    const b = Math.min(bins - 1, Math.max(0, Math.floor(p[i] * bins)));
    sumP[b] += p[i];
    sumY[b] += y[i];
    count[b]++;
  }
  let ece = 0;
  const out: ReliabilityBin[] = [];
  for (let b = 0; b < bins; b++) {
    const c = count[b];
    out.push({ lo: b / bins, hi: (b + 1) / bins, count: c, meanPredicted: c ? sumP[b] / c : null, observedRate: c ? sumY[b] / c : null });
    if (c) ece += (c / p.length) * Math.abs(sumY[b] / c - sumP[b] / c);
  }
  return { bins: out, ece };
}

export function classifierMetrics(p: ArrayLike<number>, y: ArrayLike<number>): ClassifierMetrics {
  check(p, y);
  let pos = 0;
  for (let i = 0; i < y.length; i++) pos += y[i];
  const rel = reliability(p, y);
  return {
    rows: p.length, positiveRate: pos / p.length, accuracy: accuracy(p, y), auc: auc(p, y), logLoss: logLoss(p, y), brier: brier(p, y), ece: rel.ece, reliability: rel.bins,
  };
}

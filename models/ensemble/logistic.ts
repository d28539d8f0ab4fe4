import type { Dataset } from '../dataset';
import { solveSpd } from './linalg';

/**
 * L2-regularised logistic regression fitted by Newton's method (IRLS) on standardized inputs:
 * minimises mean log loss + l2/2 * |w|^2 (intercept not penalised). The standardization is then
 * folded into the weights (w_raw = w / std, b_raw = b - sum w * mean / std), so the exported
 * model is one plain linear function of the raw feature row. Newton on a few dozen columns is
 * exact and deterministic: no learning rate, no seed needed for a given dataset.
 */
export interface LogisticParams {
  l2: number;
  maxIterations: number;
  tolerance: number;
}

export const DEFAULT_LOGISTIC: LogisticParams = { l2: 0.01, maxIterations: 50, tolerance: 1e-9 };

export interface LogisticModel {
  kind: 'logistic';
  width: number;
  params: LogisticParams;
  /** Raw-space weights and intercept, float32-representable (what the ONNX file holds). */
  weights: Float64Array;
  intercept: number;
  /** Training standardization, kept for inspection (already folded into the weights). */
  mean: Float64Array;
  std: Float64Array;
  iterations: number;
}

const sigmoid = (z: number) => 1 / (1 + Math.exp(-z));

export function trainLogistic(ds: Dataset, params: Partial<LogisticParams> = {}): LogisticModel {
  const p = { ...DEFAULT_LOGISTIC, ...params };
  if (!(p.l2 > 0)) throw new RangeError(`l2 must be > 0 (it keeps Newton's system solvable with one-hot columns), got ${p.l2}`);
  const n = ds.rows;
  const d = ds.width;
  const mean = new Float64Array(d);
  const std = new Float64Array(d);
  for (let r = 0; r < n; r++) for (let f = 0; f < d; f++) mean[f] += ds.X[r * d + f];
  for (let f = 0; f < d; f++) mean[f] /= n;
  for (let r = 0; r < n; r++) for (let f = 0; f < d; f++) std[f] += (ds.X[r * d + f] - mean[f]) ** 2;
  // A constant column gets std 1: its weight then only shifts the intercept, and L2 keeps it at 0.
  for (let f = 0; f < d; f++) std[f] = Math.sqrt(std[f] / n) || 1;

  const m = d + 1; // weights then intercept
  const beta = new Float64Array(m);
  const z = new Float64Array(m);
  let iterations = 0;
  for (; iterations < p.maxIterations; iterations++) {
    const grad = new Float64Array(m);
    const hess = new Float64Array(m * m);
    for (let r = 0; r < n; r++) {
      for (let f = 0; f < d; f++) z[f] = (ds.X[r * d + f] - mean[f]) / std[f];
      z[d] = 1;
      let s = 0;
      for (let k = 0; k < m; k++) s += beta[k] * z[k];
      const q = sigmoid(s);
      const e = q - ds.y[r];
      const w = q * (1 - q);
      for (let i = 0; i < m; i++) {
        grad[i] += e * z[i];
        const wi = w * z[i];
        for (let j = 0; j <= i; j++) hess[i * m + j] += wi * z[j];
      }
    }
    for (let i = 0; i < m; i++) {
      grad[i] /= n;
      for (let j = 0; j <= i; j++) {
        hess[i * m + j] /= n;
        hess[j * m + i] = hess[i * m + j];
      }
    }
    for (let i = 0; i < d; i++) {
      grad[i] += p.l2 * beta[i];
      hess[i * m + i] += p.l2;
    }
    hess[d * m + d] += 1e-12;
    const step = solveSpd(hess, grad, m);
    let biggest = 0;
    for (let i = 0; i < m; i++) {
      beta[i] -= step[i];
      biggest = Math.max(biggest, Math.abs(step[i]));
    }
    if (biggest < p.tolerance) {
      iterations++;
      break;
    }
  }
  const weights = new Float64Array(d);
  let intercept = beta[d];
  for (let f = 0; f < d; f++) {
    weights[f] = Math.fround(beta[f] / std[f]);
    intercept -= (beta[f] * mean[f]) / std[f];
  }
  return { kind: 'logistic', width: d, params: p, weights, intercept: Math.fround(intercept), mean, std, iterations };
}

export function logisticMargin(model: LogisticModel, X: Float32Array, rows: number): Float64Array {
  const out = new Float64Array(rows);
  const d = model.width;
  for (let r = 0; r < rows; r++) {
    let s = model.intercept;
    for (let f = 0; f < d; f++) s += model.weights[f] * X[r * d + f];
    out[r] = s;
  }
  return out;
}

export function predictLogistic(model: LogisticModel, X: Float32Array, rows: number): Float64Array {
  return logisticMargin(model, X, rows).map(sigmoid);
}

/**
 * Platt scaling on the log-odds: p' = sigmoid(a * logit(p) + b), fitted on the validation split
 * by Newton's method with Platt's smoothed targets ((N+ + 1)/(N+ + 2), 1/(N- + 2)), which keep
 * the fit finite on separable data. Chosen over isotonic regression because the validation split
 * holds a few thousand noisy rows: two parameters cannot overfit it, the map stays smooth and
 * monotone (so AUC is unchanged), and it is one multiply-add at inference.
 */
export interface PlattCalibration {
  method: 'platt';
  a: number;
  b: number;
}

export const IDENTITY_CALIBRATION: PlattCalibration = { method: 'platt', a: 1, b: 0 };

const EPS = 1e-7;
export const logit = (p: number) => {
  const q = Math.min(1 - EPS, Math.max(EPS, p));
  return Math.log(q / (1 - q));
};
const sigmoid = (z: number) => 1 / (1 + Math.exp(-z));

export function calibrate(c: PlattCalibration, p: number): number {
  return sigmoid(c.a * logit(p) + c.b);
}

export function fitPlatt(probs: ArrayLike<number>, y: ArrayLike<number>): PlattCalibration {
  const n = probs.length;
  if (n !== y.length || n === 0) throw new RangeError(`fitPlatt needs equal, non-empty inputs, got ${n} and ${y.length}`);
  let pos = 0;
  for (let i = 0; i < n; i++) pos += y[i];
  const hi = (pos + 1) / (pos + 2);
  const lo = 1 / (n - pos + 2);
  const x = Array.from(probs, logit);
  let a = 1;
  let b = 0;
  for (let it = 0; it < 100; it++) {
    let ga = 0, gb = 0, haa = 1e-9, hab = 0, hbb = 1e-9;
    for (let i = 0; i < n; i++) {
      const q = sigmoid(a * x[i] + b);
      const e = q - (y[i] ? hi : lo);
      const w = q * (1 - q);
      ga += e * x[i];
      gb += e;
      haa += w * x[i] * x[i];
      hab += w * x[i];
      hbb += w;
    }
    const det = haa * hbb - hab * hab;
    if (!(det > 0)) break;
    const da = (hbb * ga - hab * gb) / det;
    const db = (haa * gb - hab * ga) / det;
    a -= da;
    b -= db;
    if (Math.abs(da) + Math.abs(db) < 1e-10) break;
  }
  if (!Number.isFinite(a) || !Number.isFinite(b)) return IDENTITY_CALIBRATION;
  return { method: 'platt', a, b };
}

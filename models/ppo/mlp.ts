import type { Prng } from '../../lib/random';

/**
 * A fully connected network with tanh hidden layers and a linear output, its gradients by hand,
 * and Adam. Plain Float64Array maths: the nets here have ~2,000 weights, far below the size at
 * which a tensor library would pay for itself, and hand-written backprop keeps every operation's
 * order fixed, which is what makes a seed reproduce the weights bit for bit.
 *
 * All weights and biases live in one flat `params` array (and gradients in `grads`), so the
 * optimiser, gradient clipping and serialisation each see a single vector. Layer l's weight
 * matrix is row-major [out][in], i.e. y = x W^T + b: ONNX Gemm with transB = 1 takes it as is.
 */

interface Dense {
  inSize: number;
  outSize: number;
  w: number; // offset of W in params
  b: number; // offset of b in params
}

/** Activations kept from a forward pass for the backward pass; acts[0] is the input. */
export interface MlpTrace {
  n: number;
  acts: Float64Array[];
}

export class Mlp {
  readonly sizes: readonly number[];
  readonly params: Float64Array;
  readonly grads: Float64Array;
  private readonly layers: Dense[];

  constructor(sizes: readonly number[], params?: ArrayLike<number>) {
    if (sizes.length < 2 || !sizes.every((s) => Number.isSafeInteger(s) && s > 0)) {
      throw new RangeError(`layer sizes must be at least two positive integers, got [${sizes.join(', ')}]`);
    }
    this.sizes = Object.freeze([...sizes]);
    this.layers = [];
    let off = 0;
    for (let l = 0; l + 1 < sizes.length; l++) {
      const inSize = sizes[l];
      const outSize = sizes[l + 1];
      this.layers.push({ inSize, outSize, w: off, b: off + inSize * outSize });
      off += inSize * outSize + outSize;
    }
    this.params = new Float64Array(off);
    this.grads = new Float64Array(off);
    if (params) {
      if (params.length !== off) throw new RangeError(`a [${sizes.join(', ')}] network has ${off} parameters, got ${params.length}`);
      for (let i = 0; i < off; i++) {
        if (!Number.isFinite(params[i])) throw new RangeError(`parameter ${i} is not finite (${params[i]})`);
        this.params[i] = params[i];
      }
    }
  }

  /**
   * Orthogonal weights scaled by `hiddenGain` (sqrt 2 in the PPO literature) and `outputGain`
   * (0.01 for policy logits so the first policy is near uniform, 1 for a value head), zero biases.
   */
  static initialized(sizes: readonly number[], rng: Prng, hiddenGain: number, outputGain: number): Mlp {
    const net = new Mlp(sizes);
    net.layers.forEach((d, l) => {
      const gain = l === net.layers.length - 1 ? outputGain : hiddenGain;
      net.params.set(orthogonal(d.outSize, d.inSize, rng, gain), d.w);
    });
    return net;
  }

  get inputSize(): number {
    return this.sizes[0];
  }

  get outputSize(): number {
    return this.sizes[this.sizes.length - 1];
  }

  /** Weight matrix and bias of layer l, as views into `params`. */
  layer(l: number): { inSize: number; outSize: number; weights: Float64Array; bias: Float64Array } {
    const d = this.layers[l];
    if (!d) throw new RangeError(`layer ${l} out of range 0..${this.layers.length - 1}`);
    return { inSize: d.inSize, outSize: d.outSize, weights: this.params.subarray(d.w, d.b), bias: this.params.subarray(d.b, d.b + d.outSize) };
  }

  get layerCount(): number {
    return this.layers.length;
  }

  /** Outputs for `n` rows of `x` (row-major n x inputSize). Pass `trace` to keep what backward needs. */
  forward(x: Float64Array, n: number, trace?: MlpTrace): Float64Array {
    if (x.length < n * this.inputSize) throw new RangeError(`forward: ${n} rows of ${this.inputSize} need ${n * this.inputSize} values, got ${x.length}`);
    const p = this.params;
    const last = this.layers.length - 1;
    let input = x;
    if (trace) {
      trace.n = n;
      trace.acts = [x];
    }
    for (let l = 0; l <= last; l++) {
      const { inSize, outSize, w, b } = this.layers[l];
      const out = new Float64Array(n * outSize);
      for (let r = 0; r < n; r++) {
        const xi = r * inSize;
        const yo = r * outSize;
        for (let o = 0; o < outSize; o++) {
          let s = p[b + o];
          const wo = w + o * inSize;
          for (let i = 0; i < inSize; i++) s += input[xi + i] * p[wo + i];
          out[yo + o] = l === last ? s : Math.tanh(s);
        }
      }
      if (trace) trace.acts.push(out);
      input = out;
    }
    return input;
  }

  zeroGrad(): void {
    this.grads.fill(0);
  }

  /** Adds d(loss)/d(params) to `grads`, given d(loss)/d(output) for the traced rows. */
  backward(trace: MlpTrace, dOut: Float64Array): void {
    const { n, acts } = trace;
    const p = this.params;
    const g = this.grads;
    const last = this.layers.length - 1;
    let delta = dOut; // d(loss)/d(pre-activation) of the current layer
    for (let l = last; l >= 0; l--) {
      const { inSize, outSize, w, b } = this.layers[l];
      if (l !== last) {
        const a = acts[l + 1];
        for (let k = 0; k < delta.length; k++) delta[k] *= 1 - a[k] * a[k]; // tanh'
      }
      const input = acts[l];
      const dInput = l > 0 ? new Float64Array(n * inSize) : undefined;
      for (let r = 0; r < n; r++) {
        const xi = r * inSize;
        for (let o = 0; o < outSize; o++) {
          const d = delta[r * outSize + o];
          if (d === 0) continue;
          g[b + o] += d;
          const wo = w + o * inSize;
          for (let i = 0; i < inSize; i++) {
            g[wo + i] += d * input[xi + i];
            if (dInput) dInput[xi + i] += d * p[wo + i];
          }
        }
      }
      if (dInput) delta = dInput;
    }
  }
}

/** rows x cols matrix with orthonormal rows (or columns, whichever are fewer), times gain. */
function orthogonal(rows: number, cols: number, rng: Prng, gain: number): Float64Array {
  const tall = rows > cols;
  const [m, k] = tall ? [cols, rows] : [rows, cols]; // m orthonormal vectors of length k
  const v = new Float64Array(m * k);
  for (let i = 0; i < v.length; i++) v[i] = rng.gaussian();
  for (let i = 0; i < m; i++) {
    const vi = i * k;
    for (let j = 0; j < i; j++) {
      const vj = j * k;
      let dot = 0;
      for (let t = 0; t < k; t++) dot += v[vi + t] * v[vj + t];
      for (let t = 0; t < k; t++) v[vi + t] -= dot * v[vj + t];
    }
    let norm = 0;
    for (let t = 0; t < k; t++) norm += v[vi + t] * v[vi + t];
    norm = Math.sqrt(norm);
    for (let t = 0; t < k; t++) v[vi + t] /= norm;
  }
  const out = new Float64Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[r * cols + c] = gain * (tall ? v[c * k + r] : v[r * k + c]);
  return out;
}

/** Scales `grads` so their L2 norm is at most `maxNorm`; returns the norm before scaling. */
export function clipGradNorm(grads: Float64Array, maxNorm: number): number {
  let sq = 0;
  for (let i = 0; i < grads.length; i++) sq += grads[i] * grads[i];
  const norm = Math.sqrt(sq);
  if (norm > maxNorm) {
    const s = maxNorm / (norm + 1e-12);
    for (let i = 0; i < grads.length; i++) grads[i] *= s;
  }
  return norm;
}

/** Adam (Kingma & Ba) with bias correction; one instance per parameter vector. */
export class Adam {
  private readonly m: Float64Array;
  private readonly v: Float64Array;
  private t = 0;

  constructor(size: number, private readonly beta1 = 0.9, private readonly beta2 = 0.999, private readonly eps = 1e-8) {
    this.m = new Float64Array(size);
    this.v = new Float64Array(size);
  }

  step(params: Float64Array, grads: Float64Array, lr: number): void {
    if (params.length !== this.m.length || grads.length !== this.m.length) throw new RangeError(`Adam sized for ${this.m.length} parameters, got ${params.length}/${grads.length}`);
    this.t++;
    const { beta1, beta2, eps, m, v } = this;
    const c1 = 1 - beta1 ** this.t;
    const c2 = 1 - beta2 ** this.t;
    for (let i = 0; i < params.length; i++) {
      const g = grads[i];
      m[i] = beta1 * m[i] + (1 - beta1) * g;
      v[i] = beta2 * v[i] + (1 - beta2) * g * g;
      params[i] -= (lr * (m[i] / c1)) / (Math.sqrt(v[i] / c2) + eps);
    }
  }
}

import { fnv1a } from './hash';

/**
 * The project's one seeded random generator: model training (PPO weight init, episode starts,
 * action sampling, minibatch shuffles; random-forest bootstraps and feature subsets, boosting
 * subsamples), simulated slippage, and the tests' generated scenarios. Whoever draws in a fixed
 * order from one seed gets the same numbers on every machine, so a seed fixes every model weight
 * bit for bit and every simulated fill.
 *
 * sfc32 (Chris Doty-Humphrey's Small Fast Counter) on 32-bit integer maths: the same sequence on
 * every platform, unlike Math.random, and a period far beyond anything a training run draws.
 * Written out here rather than taken from a package because its exact sequence is part of every
 * committed model and recorded test scenario: ten lines of integer maths we pin ourselves, not a
 * sequence that could move with a dependency's version.
 */
export class Prng {
  private a: number;
  private b: number;
  private c: number;
  private d = 1;
  private spare: number | undefined;

  constructor(seed: number) {
    if (!Number.isSafeInteger(seed)) throw new RangeError(`seed must be a safe integer, got ${seed}`);
    // Split the seed into two words so seeds differing only above bit 32 still differ.
    this.a = seed >>> 0;
    this.b = Math.floor(seed / 4294967296) >>> 0;
    this.c = 0x9e3779b9;
    for (let i = 0; i < 16; i++) this.nextUint32(); // mix the seed through the state
  }

  nextUint32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    return this.nextUint32() / 4294967296;
  }

  /** Uniform integer in [lo, hi] (inclusive). */
  int(lo: number, hi: number): number {
    if (!(Number.isSafeInteger(lo) && Number.isSafeInteger(hi) && hi >= lo)) throw new RangeError(`bad integer range [${lo}, ${hi}]`);
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }

  /** Standard normal (Box-Muller, both values used). */
  gaussian(): number {
    if (this.spare !== undefined) {
      const s = this.spare;
      this.spare = undefined;
      return s;
    }
    let u = 0;
    while (u === 0) u = this.next();
    const v = this.next();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }

  /** Fisher-Yates in place. */
  shuffle(a: Uint32Array | Int32Array): void {
    for (let i = a.length - 1; i > 0; i--) {
      const j = Math.floor(this.next() * (i + 1));
      const t = a[i];
      a[i] = a[j];
      a[j] = t;
    }
  }

  /** The first k entries of `items` become a uniform random sample of them without replacement (in place). */
  sampleInPlace(items: Uint32Array | Int32Array, k: number): void {
    for (let i = 0; i < k; i++) {
      const j = i + Math.floor(this.next() * (items.length - i));
      const t = items[i];
      items[i] = items[j];
      items[j] = t;
    }
  }
}

/**
 * One uniform draw in [0, 1) determined by (seed, key) alone, with no generator state to carry:
 * the same order key gives the same draw in a replay, a backtest or a restarted worker, whatever
 * else was drawn before it.
 */
export function keyedUniform(seed: number, key: string): number {
  return new Prng(fnv1a(`${seed}:${key}`)).next();
}

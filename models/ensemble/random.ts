/**
 * Seeded randomness for training: mulberry32, a 32-bit generator that is tiny, fast and fully
 * determined by its seed, so the same seed gives the same bootstrap samples, feature subsets and
 * therefore the same model, bit for bit, on any machine.
 */
export interface Rng {
  /** Uniform in [0, 1). */
  next(): number;
  /** Uniform integer in [0, n). */
  int(n: number): number;
}

export function createRng(seed: number): Rng {
  if (!Number.isSafeInteger(seed)) throw new RangeError(`seed must be an integer, got ${seed}`);
  let a = (seed ^ 0x9e3779b9) >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return { next, int: (n) => Math.floor(next() * n) };
}

/** The first k entries of `items` become a uniform random sample without replacement (in place). */
export function partialShuffle(items: Int32Array, k: number, rng: Rng): void {
  for (let i = 0; i < k; i++) {
    const j = i + rng.int(items.length - i);
    const t = items[i];
    items[i] = items[j];
    items[j] = t;
  }
}

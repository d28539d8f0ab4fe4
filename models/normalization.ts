import { z } from 'zod';
import { FEATURE_SCHEMA } from '../lib/features';

/**
 * Per-symbol feature normalization, for models trained on several symbols pooled.
 *
 * The same feature means different things on different coins: a 1 % distance from the EMA is a
 * big move for BTC and an ordinary hour for SOL, and their volatility features live on different
 * scales. Pooled raw, the symbol's own scale becomes a feature. So every feature column (in
 * FEATURE_SCHEMA order) is z-scored with the mean and standard deviation of that symbol's own
 * training rows: z = (x - mean) * scale, scale = 1 / sd (0 for a constant column, which is then
 * passed through unchanged). The statistics are fitted on the training split only (never on the
 * validation or held-out rows) and travel in the version's manifest; serving applies the same
 * map before the ensemble and the PPO policy see a vector. A symbol the version was not trained
 * on is normalized with the statistics of all training rows pooled.
 *
 * The regime (lib/regime) is still computed from the raw features: it is a rule on raw values.
 */

const Stats = z.object({
  rows: z.number().int().positive(),
  mean: z.array(z.number().finite()),
  scale: z.array(z.number().finite().min(0)),
});
export type FeatureStats = z.infer<typeof Stats>;

export const FeatureNormalization = z
  .object({
    method: z.literal('per_symbol_zscore'),
    /** The rows the statistics come from: decision candles before this time (the training split). */
    fittedBefore: z.iso.datetime(),
    symbols: z.record(z.string().min(1), Stats),
    pooled: Stats,
  })
  .superRefine((n, ctx) => {
    for (const [name, s] of [...Object.entries(n.symbols), ['(pooled)', n.pooled] as const]) {
      if (s.mean.length !== FEATURE_SCHEMA.width || s.scale.length !== FEATURE_SCHEMA.width) {
        ctx.addIssue({ code: 'custom', path: ['symbols', name], message: `statistics need ${FEATURE_SCHEMA.width} columns (feature schema v${FEATURE_SCHEMA.version})` });
      }
    }
  });
export type FeatureNormalization = z.infer<typeof FeatureNormalization>;

/** Column sums over the rows of a feature matrix (row-major, FEATURE_SCHEMA width) picked by `keep`. */
class Moments {
  readonly sum = new Float64Array(FEATURE_SCHEMA.width);
  readonly sq = new Float64Array(FEATURE_SCHEMA.width);
  rows = 0;

  add(values: ArrayLike<number>, offset: number): void {
    for (let j = 0; j < FEATURE_SCHEMA.width; j++) {
      const x = values[offset + j];
      this.sum[j] += x;
      this.sq[j] += x * x;
    }
    this.rows++;
  }

  stats(): FeatureStats {
    const mean: number[] = [];
    const scale: number[] = [];
    for (let j = 0; j < FEATURE_SCHEMA.width; j++) {
      const m = this.sum[j] / this.rows;
      const sd = Math.sqrt(Math.max(0, this.sq[j] / this.rows - m * m));
      mean.push(m);
      // Relative floor: a column that is constant up to rounding must not be blown up to noise.
      scale.push(sd > 1e-9 * Math.max(1, Math.abs(m)) ? 1 / sd : 0);
    }
    return { rows: this.rows, mean, scale };
  }
}

export interface SymbolFeatureRows {
  symbol: string;
  /** Raw feature rows, row-major, FEATURE_SCHEMA width. */
  values: ArrayLike<number>;
  /** Decision candle open time of each row. */
  timestamps: ArrayLike<number>;
}

/** Statistics per symbol and pooled, from the rows decided before `before` (ms). */
export function fitFeatureNormalization(parts: readonly SymbolFeatureRows[], before: number): FeatureNormalization {
  const pooled = new Moments();
  const symbols: Record<string, FeatureStats> = {};
  for (const p of parts) {
    const own = new Moments();
    const w = FEATURE_SCHEMA.width;
    for (let r = 0; r < p.timestamps.length; r++) {
      if (!(p.timestamps[r] < before)) continue;
      let finite = true;
      for (let j = 0; j < w && finite; j++) finite = Number.isFinite(p.values[r * w + j]);
      if (!finite) continue;
      own.add(p.values, r * w);
      pooled.add(p.values, r * w);
    }
    if (own.rows < 2) throw new RangeError(`${p.symbol}: ${own.rows} feature row(s) before ${new Date(before).toISOString()}; per-symbol normalization needs training rows of every symbol`);
    symbols[p.symbol] = own.stats();
  }
  return { method: 'per_symbol_zscore', fittedBefore: new Date(before).toISOString(), symbols, pooled: pooled.stats() };
}

/** The statistics a symbol is served with: its own, else the pooled ones. */
export function statsFor(n: FeatureNormalization, symbol: string): FeatureStats {
  return n.symbols[symbol] ?? n.pooled;
}

/** z-scored copy of one raw feature vector (FEATURE_SCHEMA order); without a normalization, the vector itself. */
export function normalizeFeatures(n: FeatureNormalization | undefined, symbol: string, features: ArrayLike<number>, out?: Float64Array): ArrayLike<number> {
  if (!n) return features;
  const s = statsFor(n, symbol);
  const z = out ?? new Float64Array(features.length);
  for (let j = 0; j < features.length; j++) z[j] = s.scale[j] > 0 ? (features[j] - s.mean[j]) * s.scale[j] : features[j];
  return z;
}

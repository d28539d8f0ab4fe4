import type { Candle } from '../candles';
import { FeatureKernel } from './kernel';
import { FEATURE_SCHEMA, type FeatureSchema } from './schema';
import { candleRejection, InvalidCandleError } from './validate';

/** Incremental features for the live path: one closed candle in, the vector out once warm. */
export interface FeatureStream {
  readonly schema: FeatureSchema;
  /** Candles accepted so far. */
  readonly count: number;
  /** Open time of the last accepted candle (-Infinity before the first). */
  readonly lastTimestamp: number;
  /**
   * Adds the next closed candle; returns a fresh vector (yours to keep) or null during warm-up.
   * Given `into` (FEATURE_SCHEMA.width long), writes every element of the vector there and
   * returns it instead: a caller that keeps only the newest vector saves an allocation per candle.
   * Throws InvalidCandleError, leaving the state untouched, on a candle the maths cannot take.
   */
  push(candle: Candle, into?: Float64Array): Float64Array | null;
}

export function createFeatureStream(): FeatureStream {
  const kernel = new FeatureKernel();
  let last = -Infinity;
  return {
    schema: FEATURE_SCHEMA,
    get count() {
      return kernel.n;
    },
    get lastTimestamp() {
      return last;
    },
    push(candle: Candle, into?: Float64Array): Float64Array | null {
      const why = candleRejection(candle, last);
      if (why) throw new InvalidCandleError(`candle ${candle.timestamp}: ${why}`, candle.timestamp, kernel.n);
      last = candle.timestamp;
      if (kernel.n < FEATURE_SCHEMA.warmup) {
        kernel.update(candle.high, candle.low, candle.close, candle.volume, NO_OUTPUT, 0);
        return null;
      }
      if (into !== undefined && into.length !== FEATURE_SCHEMA.width) throw new RangeError(`a feature vector has ${FEATURE_SCHEMA.width} elements, the buffer given has ${into.length}`);
      const out = into ?? new Float64Array(FEATURE_SCHEMA.width);
      kernel.update(candle.high, candle.low, candle.close, candle.volume, out, 0);
      return out;
    },
  };
}

const NO_OUTPUT = new Float64Array(0);

import { timeframeToMs, type Candle } from '../candles';
import { createFeatureStream, FEATURE_SCHEMA, InvalidCandleError, type FeatureStream } from '.';
import type { MarketDataSource } from '../exchange/types';

/**
 * Feature vectors for the trading loop without recomputing history every candle: per symbol, a
 * streaming feature state (lib/features createFeatureStream) advanced one closed candle at a time.
 *
 * When the asked candle is not the next one (worker restarted, cache cold, candles skipped) the
 * state is rebuilt by streaming from the start of the available history: the whole recorded file
 * in a replay (so a replay's vectors equal computeFeatureMatrix over the file, bit for bit), or the
 * last `warmupCandles` candles live. Live vectors therefore depend a little on where the window
 * starts; FEATURE_SCHEMA.historyBars (801) candles settle every recursive average to 1e-6, and the
 * default window of 1,000 is above it.
 *
 * Process memory only: losing it costs one rebuild, never a wrong vector.
 */

export interface FeatureCacheOptions {
  source: MarketDataSource;
  /** 'all': stream from the first candle the source has (replay). Default: the last 1,000 candles. */
  history?: 'all' | { candles: number };
  /** Candles asked per request while rebuilding (most venues cap a page at 1,000). */
  pageSize?: number;
}

interface Entry {
  stream: FeatureStream;
  /** The newest vector: `buffer`, rewritten by every push (callers get copies), or null. */
  vector: Float64Array | null;
  buffer: Float64Array;
  /** Candles the maths refused while streaming (they are skipped, as computeFeatureMatrix would refuse them). */
  skipped: number;
  /** The newest candles streamed, oldest first (at most 2 x RECENT_CANDLES_KEPT before a trim). */
  recent: Candle[];
}

export interface FeatureCacheStats {
  pushes: number;
  rebuilds: number;
  skipped: number;
}

export class FeatureCacheError extends Error {
  override name = 'FeatureCacheError';
}

export const DEFAULT_WARMUP_CANDLES = 1000;
/** Closed candles kept per symbol for strategies' windows (lib/strategy MAX_STRATEGY_WARMUP). */
export const RECENT_CANDLES_KEPT = 1000;

export class FeatureCache {
  private readonly entries = new Map<string, Entry>();
  private readonly history: 'all' | { candles: number };
  private readonly pageSize: number;
  readonly stats: FeatureCacheStats = { pushes: 0, rebuilds: 0, skipped: 0 };

  constructor(private readonly opts: FeatureCacheOptions) {
    this.history = opts.history ?? { candles: DEFAULT_WARMUP_CANDLES };
    if (this.history !== 'all' && !(Number.isInteger(this.history.candles) && this.history.candles > 0)) {
      throw new RangeError(`feature cache history must be 'all' or a positive number of candles, got ${JSON.stringify(this.history)}`);
    }
    this.pageSize = opts.pageSize ?? 1000;
  }

  /**
   * The vector of `candle` (closed), or null while the history is too short for a first vector.
   * `previous` is the open time of the candle before it in the series, when the caller knows it:
   * then the common case (the next candle) costs no request at all. A plain array, the caller's
   * own copy: it goes into a payload as it is (allocating a typed array per candle, then
   * converting it, was ~10 % of a backtest).
   */
  async vectorAt(symbol: string, timeframe: string, candle: Candle, previous?: number): Promise<number[] | null> {
    const known = this.vectorNow(symbol, timeframe, candle, previous);
    if (known !== undefined) return known;
    const built = await this.rebuild(symbol, timeframe, candle);
    this.entries.set(`${symbol}|${timeframe}`, built);
    return built.vector && plainCopy(built.vector);
  }

  /**
   * vectorAt when it needs no request: the candle asked last, or the next one after it
   * (`previous`); undefined when the state must be rebuilt (then call vectorAt). The backtester
   * asks on every candle, and a promise per candle was a measurable part of its time.
   */
  vectorNow(symbol: string, timeframe: string, candle: Candle, previous?: number): number[] | null | undefined {
    const e = this.entries.get(`${symbol}|${timeframe}`);
    if (!e) return undefined;
    if (e.stream.lastTimestamp === candle.timestamp) return e.vector && plainCopy(e.vector);
    if (previous !== undefined && e.stream.lastTimestamp === previous) {
      this.push(e, candle);
      return e.vector && plainCopy(e.vector);
    }
    return undefined;
  }

  /**
   * The last `n` closed candles streamed for a symbol, oldest first, ending with the one the last
   * vectorAt asked for (fewer while the history is shorter; empty before any).
   */
  recentCandles(symbol: string, timeframe: string, n: number): Candle[] {
    const r = this.entries.get(`${symbol}|${timeframe}`)?.recent ?? [];
    return r.slice(Math.max(0, r.length - Math.min(n, RECENT_CANDLES_KEPT)));
  }

  /** Forgets a symbol (e.g. after its data source changed). */
  drop(symbol: string, timeframe: string): void {
    this.entries.delete(`${symbol}|${timeframe}`);
  }

  private push(e: Entry, c: Candle): void {
    e.recent.push(c);
    if (e.recent.length >= 2 * RECENT_CANDLES_KEPT) e.recent = e.recent.slice(-RECENT_CANDLES_KEPT);
    try {
      e.vector = e.stream.push(c, e.buffer);
      this.stats.pushes++;
    } catch (err) {
      if (!(err instanceof InvalidCandleError)) throw err;
      e.skipped++;
      this.stats.skipped++;
      e.vector = null;
    }
  }

  private async rebuild(symbol: string, timeframe: string, target: Candle): Promise<Entry> {
    this.stats.rebuilds++;
    const tfMs = timeframeToMs(timeframe);
    const e: Entry = { stream: createFeatureStream(), vector: null, buffer: new Float64Array(FEATURE_SCHEMA.width), skipped: 0, recent: [] };
    const window = this.history === 'all' ? undefined : this.history.candles;
    // A window counts candles, not hours: ask for a margin more time than N candles span, so gaps
    // in the data still leave N candles to stream.
    let since = window === undefined ? 0 : target.timestamp - Math.ceil(window * 1.25 + 10) * tfMs;
    const kept: Candle[] = [];
    let last = -Infinity;
    let found = false;
    for (;;) {
      const page = await this.opts.source.fetchCandles(symbol, timeframe, since, this.pageSize);
      let reached = false;
      for (const c of page) {
        if (c.timestamp > target.timestamp) {
          reached = true;
          break;
        }
        if (c.timestamp <= last) continue;
        last = c.timestamp;
        if (window === undefined) this.push(e, c);
        else kept.push(c);
        if (c.timestamp === target.timestamp) reached = found = true;
      }
      if (reached || page.length < this.pageSize) break;
      since = page[page.length - 1].timestamp + 1;
    }
    if (!found) {
      throw new FeatureCacheError(`${symbol} ${timeframe}: candle ${new Date(target.timestamp).toISOString()} is not in the market data (last seen: ${Number.isFinite(last) ? new Date(last).toISOString() : 'none'})`);
    }
    if (window !== undefined) for (const c of kept.slice(-window)) this.push(e, c);
    return e;
  }
}

function plainCopy(v: Float64Array): number[] {
  const out = new Array<number>(v.length);
  for (let i = 0; i < v.length; i++) out[i] = v[i];
  return out;
}

import { timeframeToMs, type Candle } from '../candles';
import { BadSymbolError } from './errors';
import type { MarketDataSource, SyncMarketDataSource } from './types';

/**
 * Market data replayed from recorded candles, as of a moving "now": fetchCandles answers only
 * with candles that had closed by then (open time + timeframe <= now), so code driven by it
 * cannot see the future, exactly as with a live exchange. A series is given in memory or as a
 * loader called on first use (files: infra/candle-files.ts; the candle store).
 */

/** A recorded series to be loaded on first use. */
export interface ReplaySource {
  symbol: string | undefined;
  timeframe: string | undefined;
  /** Where it comes from, for messages (a file path, `store:binance`). */
  label: string;
  load(): Candle[];
}

interface Series {
  symbol: string;
  timeframe: string;
  tfMs: number;
  source?: ReplaySource;
  candles?: Candle[];
  /** Other recordings of the same series found in a directory: using it is refused until one is chosen. */
  alsoIn?: string[];
}

export interface ReplayOptions {
  /** The clock deciding what has closed. Default: an internal clock set with setNow(), starting at Date.now(). */
  now?: () => number;
}

const key = (symbol: string, timeframe: string) => `${symbol}|${timeframe}`;

export class ReplayMarketData implements SyncMarketDataSource {
  private readonly series = new Map<string, Series>();
  private readonly clock?: () => number;
  private current = Date.now();

  constructor(opts: ReplayOptions = {}) {
    this.clock = opts.now;
  }

  /** Registers a series loaded on first use. A second source for the same series throws, or with 'mark' makes the series unusable. */
  addSource(source: ReplaySource, onDuplicate: 'throw' | 'mark' = 'throw'): this {
    const { symbol, timeframe } = source;
    if (!symbol || !timeframe) throw new BadSymbolError(`${source.label}: cannot tell symbol and timeframe from the file name; give them explicitly`);
    const k = key(symbol, timeframe);
    const prev = this.series.get(k);
    if (prev) {
      const labels = [prev.source?.label ?? 'in memory', ...(prev.alsoIn ?? []), source.label];
      if (onDuplicate === 'throw') throw new BadSymbolError(`two recordings of ${symbol} ${timeframe}: ${labels.join(' and ')}; choose one (e.g. by exchange)`);
      prev.alsoIn = labels.slice(1);
      return this;
    }
    this.series.set(k, { symbol, timeframe, tfMs: timeframeToMs(timeframe), source: { ...source, symbol, timeframe } });
    return this;
  }

  /** Registers candles already in memory. */
  addCandles(symbol: string, timeframe: string, candles: Candle[]): this {
    this.series.set(key(symbol, timeframe), { symbol, timeframe, tfMs: timeframeToMs(timeframe), candles: checkedOrder([...candles], `${symbol} ${timeframe}`) });
    return this;
  }

  now(): number {
    return this.clock ? this.clock() : this.current;
  }

  setNow(ms: number): void {
    if (this.clock) throw new Error('this replay follows an external clock; move that clock instead');
    this.current = ms;
  }

  /** Symbols and timeframes on offer. */
  listSeries(): Array<{ symbol: string; timeframe: string }> {
    return [...this.series.values()].map((s) => ({ symbol: s.symbol, timeframe: s.timeframe }));
  }

  /** Every recorded candle of a series regardless of now (for setting up a replay, not for decisions). */
  recorded(symbol: string, timeframe: string): readonly Candle[] {
    return this.load(symbol, timeframe).candles as Candle[];
  }

  async fetchCandles(symbol: string, timeframe: string, since?: number, limit?: number): Promise<Candle[]> {
    return this.fetchCandlesAt(this.now(), symbol, timeframe, since, limit);
  }

  fetchCandlesSync(symbol: string, timeframe: string, since?: number, limit?: number): Candle[] {
    return this.fetchCandlesAt(this.now(), symbol, timeframe, since, limit);
  }

  /**
   * A view of the same recordings frozen at `now`: what a replayed activity sees while it
   * processes the candle closing at `now`, whatever other symbols' activities are doing.
   */
  at(now: number | (() => number)): MarketDataSource {
    const clock = typeof now === 'number' ? () => now : now;
    return { fetchCandles: async (symbol, timeframe, since, limit) => this.fetchCandlesAt(clock(), symbol, timeframe, since, limit) };
  }

  private fetchCandlesAt(now: number, symbol: string, timeframe: string, since?: number, limit?: number): Candle[] {
    const s = this.load(symbol, timeframe);
    const candles = s.candles as Candle[];
    // Candles [0, end) have closed by now.
    const end = upperBound(candles, (c) => c.timestamp + s.tfMs <= now);
    if (since === undefined) return candles.slice(limit === undefined ? 0 : Math.max(0, end - limit), end);
    const start = upperBound(candles, (c) => c.timestamp < since);
    return candles.slice(start, limit === undefined ? end : Math.min(end, start + limit));
  }

  private load(symbol: string, timeframe: string): Series {
    const s = this.series.get(key(symbol, timeframe));
    if (!s) {
      const offered = this.listSeries().map((x) => `${x.symbol} ${x.timeframe}`).join(', ') || 'none';
      throw new BadSymbolError(`no recorded candles for ${symbol} ${timeframe} (recorded: ${offered})`, { exchangeId: 'replay', operation: 'fetchCandles', symbol });
    }
    if (s.alsoIn) {
      throw new BadSymbolError(`${symbol} ${timeframe} is recorded in several files (${[s.source?.label, ...s.alsoIn].join(', ')}); pick the exchange`, { exchangeId: 'replay', operation: 'fetchCandles', symbol });
    }
    if (!s.candles) {
      const src = s.source as ReplaySource;
      s.candles = checkedOrder(src.load(), src.label);
    }
    return s;
  }
}

/** Sorted ascending with unique timestamps, or a clear error: a replay must not reorder history silently. */
function checkedOrder(candles: Candle[], label: string): Candle[] {
  for (let i = 1; i < candles.length; i++) {
    if (candles[i].timestamp <= candles[i - 1].timestamp) {
      const what = candles[i].timestamp === candles[i - 1].timestamp ? 'duplicate' : 'out-of-order';
      throw new BadSymbolError(`${label}: ${what} candle at ${new Date(candles[i].timestamp).toISOString()} (row ${i + 1}); clean the file first`);
    }
  }
  return candles;
}

/** Index of the first element for which `before` is false (`before` must be true-then-false). */
function upperBound<T>(items: T[], before: (x: T) => boolean): number {
  let lo = 0;
  let hi = items.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (before(items[mid])) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

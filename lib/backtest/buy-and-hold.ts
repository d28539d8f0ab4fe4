import type { Candle } from '../candles';
import type { EquityPoint } from './metrics';

/**
 * The benchmark a backtest's equity is drawn against: the same capital split equally between the
 * symbols, each share buying its symbol at the close of its first decision candle and holding it
 * (no fees: the market's own move, as metrics.buyAndHoldReturn). A share whose symbol has not
 * started yet is cash. At time t a symbol is worth its last close at or before t (a candle counts
 * once it has closed: open time + timeframe <= t). Pure.
 */
export interface HoldingSeries {
  candles: readonly Candle[];
  timeframeMs: number;
  /** Open time of the first decision candle; null: the symbol never started (its share stays cash). */
  startTime: number | null;
}

export function buyAndHoldCurve(times: readonly number[], holdings: readonly HoldingSeries[], initialCapital: number): EquityPoint[] {
  if (holdings.length === 0) return times.map((time) => ({ time, equity: initialCapital }));
  const share = initialCapital / holdings.length;
  const state = holdings.map((h) => {
    const start = h.startTime === null ? -1 : h.candles.findIndex((c) => c.timestamp === h.startTime);
    return { h, start, entry: start >= 0 ? h.candles[start].close : NaN, next: 0, last: NaN };
  });
  return times.map((time) => {
    let equity = 0;
    for (const s of state) {
      const { candles, timeframeMs } = s.h;
      while (s.next < candles.length && candles[s.next].timestamp + timeframeMs <= time) s.last = candles[s.next++].close;
      const started = s.start >= 0 && s.next > s.start;
      equity += started ? share * (s.last / s.entry) : share;
    }
    return { time, equity };
  });
}

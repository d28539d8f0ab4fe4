import type { Candle } from '../candles';
import type { EquityPoint } from './metrics';

/**
 * An account's equity rebuilt from its closed trades, for accounts that did not record equity
 * snapshots (a ledger of live or replayed trading): at each time, the initial capital plus the
 * PnL (after fees) of every trade closed by then, plus, when the symbol's candles are given, each
 * trade still open marked at the last close (its fees are counted when it closes). Without
 * candles, only realized PnL: the curve steps at exits and hides drawdowns inside trades. Pure.
 */
export interface EquityTrade {
  symbol: string;
  qty: number;
  entryTime: number;
  entryPrice: number;
  exitTime: number;
  pnl: number;
}

export interface MarkSeries {
  symbol: string;
  candles: readonly Candle[];
  timeframeMs: number;
}

/** The last close at or before `t` (a candle counts once closed), by binary search; undefined before the first close. */
function closeAt(s: MarkSeries, t: number): number | undefined {
  let lo = 0;
  let hi = s.candles.length - 1;
  let found = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (s.candles[mid].timestamp + s.timeframeMs <= t) {
      found = mid;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  return found < 0 ? undefined : s.candles[found].close;
}

export function tradeEquityCurve(times: readonly number[], trades: readonly EquityTrade[], initialCapital: number, marks: readonly MarkSeries[] = []): EquityPoint[] {
  const bySymbol = new Map(marks.map((m) => [m.symbol, m]));
  const exits = [...trades].sort((a, b) => a.exitTime - b.exitTime);
  let realized = 0;
  let next = 0;
  return times.map((time) => {
    while (next < exits.length && exits[next].exitTime <= time) realized += exits[next++].pnl;
    let open = 0;
    for (const t of trades) {
      if (!(t.entryTime <= time && time < t.exitTime)) continue;
      const m = bySymbol.get(t.symbol);
      const close = m ? closeAt(m, time) : undefined;
      if (close !== undefined) open += (close - t.entryPrice) * t.qty;
    }
    return { time, equity: initialCapital + realized + open };
  });
}

/** Share of (symbol, time) pairs with a trade open, as lib/backtest's exposure. */
export function tradeExposure(times: readonly number[], trades: readonly EquityTrade[], symbols: readonly string[]): number {
  if (times.length === 0 || symbols.length === 0) return 0;
  let open = 0;
  for (const time of times) {
    const held = new Set(trades.filter((t) => t.entryTime <= time && time < t.exitTime).map((t) => t.symbol));
    open += held.size;
  }
  return open / (times.length * symbols.length);
}

/**
 * Average time in a trade (exit time - entry time, ms), for all trades, winners (PnL > 0) and
 * losers (PnL < 0); null for a group with no trade.
 */
export interface TradeDurations {
  averageMs: number | null;
  winnersAverageMs: number | null;
  losersAverageMs: number | null;
}

type Timed = { pnl: number; entryTime: number; exitTime: number };

const averageDuration = (ts: readonly Timed[]): number | null => (ts.length === 0 ? null : ts.reduce((a, t) => a + (t.exitTime - t.entryTime), 0) / ts.length);

export function tradeDurations(trades: readonly Timed[]): TradeDurations {
  return {
    averageMs: averageDuration(trades),
    winnersAverageMs: averageDuration(trades.filter((t) => t.pnl > 0)),
    losersAverageMs: averageDuration(trades.filter((t) => t.pnl < 0)),
  };
}

/**
 * Longest runs of winning and of losing trades, in the order given (exit order). A trade with a
 * PnL of exactly 0 is neither and ends both runs, as freqtrade counts draws.
 */
export interface TradeStreaks {
  maxConsecutiveWins: number;
  maxConsecutiveLosses: number;
}

export function tradeStreaks(trades: ReadonlyArray<{ pnl: number }>): TradeStreaks {
  let wins = 0;
  let losses = 0;
  let maxWins = 0;
  let maxLosses = 0;
  for (const t of trades) {
    wins = t.pnl > 0 ? wins + 1 : 0;
    losses = t.pnl < 0 ? losses + 1 : 0;
    maxWins = Math.max(maxWins, wins);
    maxLosses = Math.max(maxLosses, losses);
  }
  return { maxConsecutiveWins: maxWins, maxConsecutiveLosses: maxLosses };
}

import { tradeBreakdown, type BreakdownRow } from './breakdown';
import { cagr } from './cagr';
import type { EquityPoint } from './metrics';
import { dailySummary, periodReturns, type PeriodReturn } from './period-returns';
import { tradeStreaks } from './streaks';
import { tradeDurations } from './trade-durations';
import { bestAndWorstTrade, type TradeExtreme } from './trade-returns';

/**
 * The figures freqtrade users read in a backtest report, beyond lib/backtest/metrics: CAGR over
 * calendar time, streaks, trade durations of winners and losers, best and worst trade and day,
 * the market's own change, monthly returns, and the per-symbol and per-exit-reason tables. One
 * pure function over the closed trades (exit order) and the equity curve; each figure is its own
 * module with its own test.
 */
export interface BacktestStatistics {
  cagr: number | null;
  /** Equal-weight mean of each symbol's change over the backtest (freqtrade's "market change"). */
  marketChange: number | null;
  maxConsecutiveWins: number;
  maxConsecutiveLosses: number;
  averageDurationMs: number | null;
  winnersAverageDurationMs: number | null;
  losersAverageDurationMs: number | null;
  bestTrade: TradeExtreme | null;
  worstTrade: TradeExtreme | null;
  bestDay: { day: string; return: number } | null;
  worstDay: { day: string; return: number } | null;
  winningDays: number;
  losingDays: number;
  flatDays: number;
  monthlyReturns: PeriodReturn[];
  bySymbol: BreakdownRow[];
  byExitReason: BreakdownRow[];
}

export interface StatisticsInput {
  trades: ReadonlyArray<{ symbol: string; exitReason: string; qty: number; entryPrice: number; pnl: number; entryTime: number; exitTime: number }>;
  equity: readonly EquityPoint[];
  /** Each symbol's change from its first decision to its last mark (null when it made none). */
  symbolChanges: ReadonlyArray<number | null>;
}

const day = (d: PeriodReturn | null) => (d ? { day: d.period, return: d.return } : null);

export function backtestStatistics(input: StatisticsInput): BacktestStatistics {
  const { trades, equity } = input;
  const first = equity[0];
  const last = equity[equity.length - 1];
  const changes = input.symbolChanges.filter((c): c is number => c !== null);
  const streaks = tradeStreaks(trades);
  const durations = tradeDurations(trades);
  const extremes = bestAndWorstTrade(trades);
  const days = dailySummary(equity);
  return {
    cagr: first && last ? cagr(first.equity, last.equity, first.time, last.time) : null,
    marketChange: changes.length > 0 ? changes.reduce((a, b) => a + b, 0) / changes.length : null,
    ...streaks,
    averageDurationMs: durations.averageMs,
    winnersAverageDurationMs: durations.winnersAverageMs,
    losersAverageDurationMs: durations.losersAverageMs,
    bestTrade: extremes.best,
    worstTrade: extremes.worst,
    bestDay: day(days.bestDay),
    worstDay: day(days.worstDay),
    winningDays: days.winningDays,
    losingDays: days.losingDays,
    flatDays: days.flatDays,
    monthlyReturns: periodReturns(equity, 'month'),
    bySymbol: tradeBreakdown(trades, 'symbol'),
    byExitReason: tradeBreakdown(trades, 'exitReason'),
  };
}

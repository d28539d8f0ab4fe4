import { sleeveEquity } from './engine';
import type { PortfolioView, SymbolState } from './types';

/**
 * The account seen as the sum of its symbol sleeves, marked at each symbol's last close. The
 * backtester takes this view once per candle time, after every symbol has finished the previous
 * time and before any decides the current one, so no decision depends on the order in which
 * symbols closing together are processed.
 */

export interface Sleeve {
  state: SymbolState;
  sleeveCapital: number;
  /** Last close seen for the symbol (null before its first candle). */
  mark: number | null;
}

/** What the account remembers between marks: its peak and the equity the UTC day started with. */
export interface AccountMarks {
  equity: number;
  peakEquity: number;
  dayStartEquity: number;
  /** UTC day index (ms / 86,400,000) of the last mark. */
  day: number;
}

const DAY_MS = 86_400_000;

export function markAccount(sleeves: readonly Sleeve[], time: number, prev: AccountMarks | null): { view: PortfolioView; marks: AccountMarks } {
  let equity = 0;
  let totalExposure = 0;
  let openPositions = 0;
  for (const s of sleeves) {
    const p = s.state.position;
    const mark = s.mark ?? p?.entryPrice;
    equity += sleeveEquity(s.state, s, mark ?? undefined);
    if (p) {
      openPositions++;
      totalExposure += p.qty * (mark ?? p.entryPrice);
    }
  }
  const day = Math.floor(time / DAY_MS);
  // The day starts with the equity of the last mark before it (the previous day's close).
  const dayStartEquity = prev === null ? equity : day !== prev.day ? prev.equity : prev.dayStartEquity;
  const peakEquity = Math.max(prev?.peakEquity ?? equity, equity);
  return {
    view: { openPositions, totalExposure, equity, peakEquity, dayStartEquity, dailyPnl: equity - dayStartEquity },
    marks: { equity, peakEquity, dayStartEquity, day },
  };
}

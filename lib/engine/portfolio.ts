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

/**
 * AccountMarks made by a constructor, not an object literal: equity starts as a whole number (a
 * Smi to V8) and turns fractional at the first fee. Stored from a literal, V8's optimized
 * backtest loop kept assuming whole numbers and was thrown away and recompiled every few candles
 * in a long-lived research worker (a deopt loop: about 3 compiles of the loop a trial, a core's
 * worth of background compiling). A class's fields follow the change once.
 */
class Marks implements AccountMarks {
  constructor(
    readonly equity: number,
    readonly peakEquity: number,
    readonly dayStartEquity: number,
    readonly day: number,
  ) {}
}

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
    marks: new Marks(equity, peakEquity, dayStartEquity, day),
  };
}

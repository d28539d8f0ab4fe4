import type { EquityPoint } from './metrics';

/**
 * Returns of an equity curve per calendar day or month (UTC). A period's return is its last
 * equity over the equity at the end of the period before (for the first period: the curve's first
 * point) minus 1, so the periods compound to the whole curve's return. Pure.
 */
export type Period = 'day' | 'month';

export interface PeriodReturn {
  /** `2021-03-14` (day) or `2021-03` (month), UTC. */
  period: string;
  /** Epoch ms of the period's first equity point. */
  start: number;
  startEquity: number;
  endEquity: number;
  return: number;
}

const DAY_MS = 86_400_000;

export function periodKey(ms: number, period: Period): string {
  const iso = new Date(ms).toISOString();
  return period === 'day' ? iso.slice(0, 10) : iso.slice(0, 7);
}

export function periodReturns(equity: readonly EquityPoint[], period: Period): PeriodReturn[] {
  const out: PeriodReturn[] = [];
  if (equity.length === 0) return out;
  let base = equity[0].equity;
  let current: PeriodReturn | null = null;
  // A period changes only with the UTC day: format a date once per day, not once per point
  // (a backtest's curve has a point per candle; per point this was ~2 % of a backtest).
  let day = Number.NaN;
  let key = '';
  for (const p of equity) {
    const d = Math.floor(p.time / DAY_MS);
    if (d !== day) {
      day = d;
      key = periodKey(p.time, period);
    }
    if (current === null || current.period !== key) {
      if (current) base = current.endEquity;
      current = { period: key, start: p.time, startEquity: base, endEquity: p.equity, return: 0 };
      out.push(current);
    }
    current.endEquity = p.equity;
    current.return = base > 0 ? p.equity / base - 1 : 0;
  }
  return out;
}

export interface DailySummary {
  bestDay: PeriodReturn | null;
  worstDay: PeriodReturn | null;
  winningDays: number;
  losingDays: number;
  flatDays: number;
}

/** freqtrade's best / worst day and the count of winning, losing and flat days. */
export function dailySummary(equity: readonly EquityPoint[]): DailySummary {
  const days = periodReturns(equity, 'day');
  let best: PeriodReturn | null = null;
  let worst: PeriodReturn | null = null;
  let winning = 0;
  let losing = 0;
  for (const d of days) {
    if (best === null || d.return > best.return) best = d;
    if (worst === null || d.return < worst.return) worst = d;
    if (d.return > 0) winning++;
    else if (d.return < 0) losing++;
  }
  return { bestDay: best, worstDay: worst, winningDays: winning, losingDays: losing, flatDays: days.length - winning - losing };
}

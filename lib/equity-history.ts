/**
 * The account's equity over time, from the portfolio's equity snapshots (one per check, every
 * minute live): what `trader equity` prints. A day of snapshots is 1,440 rows, so the history is
 * shown one row per period (the period's last snapshot, the account as it stood then), while the
 * worst drawdown is taken over every snapshot, so a dip inside a period is not lost.
 */

export interface EquityPoint {
  /** Time of the check, epoch ms. */
  ts: number;
  equity: number;
  cash: number;
  /** Open positions' notional at mark. */
  exposure: number;
  /** The peak the kill switch measured from, when the snapshot has it. */
  peakEquity: number | null;
  /** (peak - equity) / peak at that check, when the snapshot has it. */
  drawdown: number | null;
}

export interface EquityHistory {
  snapshots: number;
  first: EquityPoint | null;
  last: EquityPoint | null;
  /** The last snapshot of each period that has one, in time order. */
  rows: EquityPoint[];
  /** The snapshot with the largest drawdown (null without drawdown figures, or when it never left its peak). */
  worstDrawdown: EquityPoint | null;
}

/** `points` in any order; `everyMs` the period length (periods are aligned to the epoch, so to UTC days for 1d). */
export function equityHistory(points: readonly EquityPoint[], everyMs: number): EquityHistory {
  if (!(Number.isFinite(everyMs) && everyMs > 0)) throw new RangeError(`equity history period must be a positive number of ms, got ${everyMs}`);
  const sorted = [...points].sort((a, b) => a.ts - b.ts);
  const rows: EquityPoint[] = [];
  let worst: EquityPoint | null = null;
  for (const p of sorted) {
    const period = Math.floor(p.ts / everyMs);
    const prev = rows[rows.length - 1];
    if (prev && Math.floor(prev.ts / everyMs) === period) rows[rows.length - 1] = p;
    else rows.push(p);
    if (p.drawdown !== null && p.drawdown > 0 && (worst === null || p.drawdown > (worst.drawdown as number))) worst = p;
  }
  return { snapshots: sorted.length, first: sorted[0] ?? null, last: sorted[sorted.length - 1] ?? null, rows, worstDrawdown: worst };
}

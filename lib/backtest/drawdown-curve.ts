import type { EquityPoint } from './metrics';

/** The fall below the running peak at every point of an equity curve, as a fraction (0.2 = 20 % below the peak). Its maximum is metrics.maxDrawdown. */
export function drawdownCurve(equity: readonly EquityPoint[]): Array<{ time: number; drawdown: number }> {
  let peak = -Infinity;
  return equity.map((p) => {
    peak = Math.max(peak, p.equity);
    return { time: p.time, drawdown: peak > 0 ? (peak - p.equity) / peak : 0 };
  });
}

import { tradeReturn } from './trade-returns';

/**
 * Closed trades grouped by a key (symbol, exit reason): what freqtrade prints as its per-pair and
 * per-exit-reason tables. Rows in first-seen order of the key.
 */
export interface BreakdownRow {
  key: string;
  trades: number;
  wins: number;
  losses: number;
  /** Wins / trades. */
  winRate: number;
  /** Quote currency, after fees. */
  totalPnl: number;
  /** Mean of tradeReturn over the group. */
  averageReturn: number;
  /** Sum of tradeReturn over the group (freqtrade's "Tot Profit %" of a pair is of the wallet instead). */
  sumOfReturns: number;
  averageDurationMs: number;
}

type Groupable = { symbol: string; exitReason: string; qty: number; entryPrice: number; pnl: number; entryTime: number; exitTime: number };

export function tradeBreakdown(trades: readonly Groupable[], by: 'symbol' | 'exitReason'): BreakdownRow[] {
  const groups = new Map<string, Groupable[]>();
  for (const t of trades) {
    const k = t[by];
    let g = groups.get(k);
    if (!g) groups.set(k, (g = []));
    g.push(t);
  }
  return [...groups].map(([key, ts]) => {
    const returns = ts.map(tradeReturn);
    const wins = ts.filter((t) => t.pnl > 0).length;
    const sum = returns.reduce((a, b) => a + b, 0);
    return {
      key,
      trades: ts.length,
      wins,
      losses: ts.filter((t) => t.pnl < 0).length,
      winRate: wins / ts.length,
      totalPnl: ts.reduce((a, t) => a + t.pnl, 0),
      averageReturn: sum / ts.length,
      sumOfReturns: sum,
      averageDurationMs: ts.reduce((a, t) => a + (t.exitTime - t.entryTime), 0) / ts.length,
    };
  });
}

/**
 * A trade's return on the money it put to work: PnL after both fees / entry notional
 * (entry price x quantity). This is freqtrade's "profit %" of a trade, and the unit the best and
 * worst trade are ranked in (a large position's PnL in quote currency would otherwise rank first).
 */
export interface ReturnTrade {
  symbol: string;
  qty: number;
  entryPrice: number;
  entryTime: number;
  exitTime: number;
  pnl: number;
}

export function tradeReturn(t: Pick<ReturnTrade, 'qty' | 'entryPrice' | 'pnl'>): number {
  const notional = t.qty * t.entryPrice;
  return notional > 0 ? t.pnl / notional : 0;
}

export interface TradeExtreme {
  symbol: string;
  entryTime: number;
  exitTime: number;
  pnl: number;
  /** tradeReturn: fraction of the entry notional. */
  return: number;
}

/** The best and the worst trade by return (the first one on ties); null without trades. */
export function bestAndWorstTrade(trades: readonly ReturnTrade[]): { best: TradeExtreme | null; worst: TradeExtreme | null } {
  let best: TradeExtreme | null = null;
  let worst: TradeExtreme | null = null;
  for (const t of trades) {
    const x: TradeExtreme = { symbol: t.symbol, entryTime: t.entryTime, exitTime: t.exitTime, pnl: t.pnl, return: tradeReturn(t) };
    if (best === null || x.return > best.return) best = x;
    if (worst === null || x.return < worst.return) worst = x;
  }
  return { best, worst };
}

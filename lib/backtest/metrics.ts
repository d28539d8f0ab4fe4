/**
 * Backtest metrics from an equity curve marked to market once per bar and the closed trades.
 * Pure. Conventions (stated once, here):
 * - returns are simple per-bar returns of the equity curve; risk-free rate 0;
 * - annualization assumes markets that never close (crypto): periodsPerYear = 365 days / timeframe;
 * - sharpe = mean / sample standard deviation * sqrt(periodsPerYear);
 * - sortino = mean / downside deviation * sqrt(periodsPerYear), downside deviation =
 *   sqrt(mean over ALL bars of min(r, 0)^2) (target 0);
 * - maxDrawdown = largest fall from a running peak, as a fraction of that peak (0.2 = 20 %);
 * - calmar = annualized return (CAGR) / maxDrawdown;
 * - profitFactor = gross profit / gross loss of closed trades; expectancy = mean PnL per trade
 *   (quote currency, after fees); winRate = trades with PnL > 0 / trades;
 * - a ratio with nothing to divide by (no trades, no losing trade, flat curve) is null, never
 *   Infinity or NaN, so the JSON stays valid and a reader cannot mistake it for a number.
 */

export interface EquityPoint {
  time: number;
  equity: number;
}

export interface TradeOutcome {
  pnl: number;
  fees: number;
}

export interface BacktestMetrics {
  initialEquity: number;
  finalEquity: number;
  totalReturn: number;
  annualizedReturn: number | null;
  sharpe: number | null;
  sortino: number | null;
  calmar: number | null;
  maxDrawdown: number;
  profitFactor: number | null;
  expectancy: number | null;
  winRate: number | null;
  trades: number;
  wins: number;
  losses: number;
  grossProfit: number;
  grossLoss: number;
  totalFees: number;
  /** Share of (symbol, bar) pairs with an open position. */
  exposure: number;
  /** Equal-weight buy and hold of the same symbols over the same bars, before fees. */
  buyAndHoldReturn: number | null;
  bars: number;
  periodsPerYear: number;
}

export const YEAR_MS = 365 * 86_400_000;

export function periodsPerYear(timeframeMs: number): number {
  if (!(timeframeMs > 0)) throw new RangeError(`timeframeMs must be positive, got ${timeframeMs}`);
  return YEAR_MS / timeframeMs;
}

export function barReturns(equity: readonly EquityPoint[]): number[] {
  const out: number[] = [];
  for (let i = 1; i < equity.length; i++) out.push(equity[i - 1].equity > 0 ? equity[i].equity / equity[i - 1].equity - 1 : 0);
  return out;
}

const mean = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

export function sharpeRatio(returns: ArrayLike<number>, ppy: number): number | null {
  const n = returns.length;
  if (n < 2) return null;
  let sum = 0;
  for (let i = 0; i < n; i++) sum += returns[i];
  const m = sum / n;
  let ss = 0;
  for (let i = 0; i < n; i++) ss += (returns[i] - m) ** 2;
  const sd = Math.sqrt(ss / (n - 1));
  return sd > 0 ? (m / sd) * Math.sqrt(ppy) : null;
}

export function sortinoRatio(returns: readonly number[], ppy: number): number | null {
  if (returns.length < 1) return null;
  const dd = Math.sqrt(returns.reduce((a, r) => a + Math.min(r, 0) ** 2, 0) / returns.length);
  return dd > 0 ? (mean(returns) / dd) * Math.sqrt(ppy) : null;
}

export function maxDrawdown(equity: readonly EquityPoint[]): number {
  let peak = -Infinity;
  let worst = 0;
  for (const p of equity) {
    peak = Math.max(peak, p.equity);
    if (peak > 0) worst = Math.max(worst, (peak - p.equity) / peak);
  }
  return worst;
}

/** Compound annual growth over `periods` bars. */
export function annualizedReturn(initial: number, final: number, periods: number, ppy: number): number | null {
  if (!(initial > 0) || periods <= 0 || final < 0) return null;
  return (final / initial) ** (ppy / periods) - 1;
}

export interface MetricsInput {
  equity: readonly EquityPoint[];
  trades: readonly TradeOutcome[];
  timeframeMs: number;
  exposure: number;
  buyAndHoldReturn: number | null;
}

export function computeMetrics(input: MetricsInput): BacktestMetrics {
  const { equity, trades } = input;
  if (equity.length === 0) throw new RangeError('an equity curve needs at least one point');
  const ppy = periodsPerYear(input.timeframeMs);
  const initialEquity = equity[0].equity;
  const finalEquity = equity[equity.length - 1].equity;
  const returns = barReturns(equity);
  const annual = annualizedReturn(initialEquity, finalEquity, returns.length, ppy);
  const dd = maxDrawdown(equity);
  const wins = trades.filter((t) => t.pnl > 0);
  const losses = trades.filter((t) => t.pnl < 0);
  const grossProfit = wins.reduce((a, t) => a + t.pnl, 0);
  const grossLoss = -losses.reduce((a, t) => a + t.pnl, 0);
  return {
    initialEquity,
    finalEquity,
    totalReturn: finalEquity / initialEquity - 1,
    annualizedReturn: annual,
    sharpe: sharpeRatio(returns, ppy),
    sortino: sortinoRatio(returns, ppy),
    calmar: annual !== null && dd > 0 ? annual / dd : null,
    maxDrawdown: dd,
    profitFactor: grossLoss > 0 ? grossProfit / grossLoss : null,
    expectancy: trades.length > 0 ? trades.reduce((a, t) => a + t.pnl, 0) / trades.length : null,
    winRate: trades.length > 0 ? wins.length / trades.length : null,
    trades: trades.length,
    wins: wins.length,
    losses: losses.length,
    grossProfit,
    grossLoss,
    totalFees: trades.reduce((a, t) => a + t.fees, 0),
    exposure: input.exposure,
    buyAndHoldReturn: input.buyAndHoldReturn,
    bars: returns.length,
    periodsPerYear: ppy,
  };
}

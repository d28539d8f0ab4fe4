import { monteCarlo, type BacktestResult, type MonteCarloResult } from '../lib/backtest';

/** lib/backtest's Monte Carlo over a backtest's closed trades, in the order they closed. */
export function backtestMonteCarlo(result: Pick<BacktestResult, 'trades' | 'metrics'>, runs: number, seed: number): MonteCarloResult {
  const trades = [...result.trades].sort((a, b) => a.exitTime - b.exitTime);
  return monteCarlo(trades, result.metrics.initialEquity, { runs, seed });
}

import { monteCarlo, type BacktestResult } from '../lib/backtest';
import { Prng } from '../models/ppo/prng';
import type { ReportMonteCarlo } from './report';

/**
 * lib/backtest's Monte Carlo over a backtest's closed trades (exit order), seeded with the
 * project's sfc32 generator: the same trades, runs and seed give the same bands on any machine.
 */
export function backtestMonteCarlo(result: Pick<BacktestResult, 'trades' | 'metrics'>, runs: number, seed: number): ReportMonteCarlo {
  const trades = [...result.trades].sort((a, b) => a.exitTime - b.exitTime);
  return { seed, ...monteCarlo(trades, result.metrics.initialEquity, { runs, random: new Prng(seed) }) };
}

import { CandleCsvError } from '../lib/candle-csv';
import { inferTimeframeMs } from '../lib/candle-hygiene';
import { msToTimeframe } from '../lib/candles';
import { ExchangeError } from '../lib/exchange/errors';
import { BacktestInputError, simulateBacktest, type BacktestResult, type BacktestSeries, type SimulateOptions } from '../lib/backtest';
import { readCandleCsv, type ReplayFile } from '../infra/candle-files';

/**
 * The backtester application: candles from files (the candle store comes with `trader data`),
 * then lib/backtest's simulation, the very candle step the SymbolTraderWorkflow runs.
 */

export interface BacktestOptions extends Omit<SimulateOptions, 'series'> {
  files: Array<string | ReplayFile>;
}

export async function runBacktest(options: BacktestOptions): Promise<BacktestResult> {
  const { files, ...rest } = options;
  if (!Array.isArray(files) || files.length === 0) throw new BacktestInputError('backtest options: files: at least one candle file');
  return simulateBacktest({ ...rest, series: files.map(loadFile) });
}

/** One candle file as a series; a bad file is a BacktestInputError naming it. */
export function loadFile(f: string | ReplayFile): BacktestSeries {
  const spec = typeof f === 'string' ? { path: f } : f;
  let file;
  try {
    file = readCandleCsv(spec.path, spec);
  } catch (err) {
    if (err instanceof CandleCsvError) throw new BacktestInputError(err.missing ? `${err.message} (give --${err.missing})` : err.message);
    throw err;
  }
  const spacing = inferTimeframeMs(file.candles);
  if (spacing !== undefined && spacing !== file.timeframeMs) {
    throw new BacktestInputError(`${file.path}: candles are mostly ${msToTimeframe(spacing)} apart but the timeframe is ${file.timeframe}`);
  }
  return { source: file.path, exchange: file.exchange, symbol: file.symbol, timeframe: file.timeframe, timeframeMs: file.timeframeMs, candles: file.candles };
}

/** Errors a caller should show as bad input (exit 2) rather than as a failure. */
export function isBacktestInputError(err: unknown): boolean {
  return err instanceof BacktestInputError || (err instanceof ExchangeError && err.name === 'BadSymbolError');
}

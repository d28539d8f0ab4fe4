import { ExchangeError } from '../lib/exchange/errors';
import { BacktestInputError, simulateBacktest, type BacktestResult, type BacktestSeries, type SimulateOptions } from '../lib/backtest';
import { loadSeriesFile, type ReplayFile } from '../infra/candle-files';
import { loadStoreSeries } from '../ledger/candle-store';

// The series loaders live below the backtester (the research activities read candles too); re-exported for its callers.
export { loadSeriesFile as loadFile, loadStoreSeries };

/**
 * The backtester application: candles from files or from the candle store (`trader data
 * download` fills it), then lib/backtest's simulation, the very candle step the
 * SymbolTraderWorkflow runs.
 */

export interface BacktestOptions extends Omit<SimulateOptions, 'series'> {
  /** Candle files, one series each... */
  files?: Array<string | ReplayFile>;
  /** ...or series already loaded (loadStoreSeries). */
  series?: BacktestSeries[];
}

export async function runBacktest(options: BacktestOptions): Promise<BacktestResult> {
  return (await runBacktestWithSeries(options)).result;
}

/** The backtest and the candle series it ran over (a report draws them). */
export async function runBacktestWithSeries(options: BacktestOptions): Promise<{ result: BacktestResult; series: BacktestSeries[] }> {
  const { files, series, ...rest } = options;
  if ((files?.length ?? 0) > 0 === (series?.length ?? 0) > 0) throw new BacktestInputError('backtest options: candle files or candle store series (one of the two)');
  const loaded = series ?? files!.map(loadSeriesFile);
  return { result: await simulateBacktest({ ...rest, series: loaded }), series: loaded };
}

/** Errors a caller should show as bad input (exit 2) rather than as a failure. */
export function isBacktestInputError(err: unknown): boolean {
  return err instanceof BacktestInputError || (err instanceof ExchangeError && err.name === 'BadSymbolError');
}

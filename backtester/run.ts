import { CandleCsvError } from '../lib/candle-csv';
import { inferTimeframeMs } from '../lib/candle-hygiene';
import { msToTimeframe, timeframeToMs } from '../lib/candles';
import type { CandleSelection, CandleStore } from '../ledger/candle-store';
import { ExchangeError } from '../lib/exchange/errors';
import { BacktestInputError, simulateBacktest, type BacktestResult, type BacktestSeries, type SimulateOptions } from '../lib/backtest';
import { readCandleCsv, type ReplayFile } from '../infra/candle-files';

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
  const loaded = series ?? files!.map(loadFile);
  return { result: await simulateBacktest({ ...rest, series: loaded }), series: loaded };
}

/**
 * The series of a candle store selection; a symbol with no candles in the range is a
 * BacktestInputError saying how to download them.
 */
export async function loadStoreSeries(store: CandleStore, sel: CandleSelection): Promise<BacktestSeries[]> {
  const timeframeMs = timeframeToMs(sel.timeframe);
  const out: BacktestSeries[] = [];
  for (const { symbol, candles } of await store.select(sel)) {
    if (candles.length === 0) {
      const day = (ms: number) => new Date(ms).toISOString().slice(0, 16).replace('T00:00', '');
      throw new BacktestInputError(
        `the candle store has no ${sel.exchange} ${symbol} ${sel.timeframe} candles from ${day(sel.since)} to ${day(sel.until)}; ` +
          `download them: trader data download --exchange ${sel.exchange} --symbols ${symbol} --timeframe ${sel.timeframe} --since ${day(sel.since)} --until ${day(sel.until)}`,
      );
    }
    out.push({ source: `store:${sel.exchange}`, exchange: sel.exchange, symbol, timeframe: sel.timeframe, timeframeMs, candles });
  }
  return out;
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

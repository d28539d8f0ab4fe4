import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CandleCsvError, candleFileFromText, parseCandleFileName, type CandleFile, type CandleFileOverrides } from '../lib/candle-csv';
import { ReplayMarketData, type ReplayOptions } from '../lib/exchange/replay-market-data';
import { inferTimeframeMs } from '../lib/candle-hygiene';
import { msToTimeframe } from '../lib/candles';
import { BacktestInputError, type BacktestSeries } from '../lib/backtest/simulate';

/**
 * Recorded candle files on disk (`<exchange>_<BASE>-<QUOTE>_<timeframe>.csv`, header
 * `timestamp,open,high,low,close,volume`): reading them, and replay market data over them.
 * Parsing is lib/candle-csv.ts's; this file only touches the disk.
 */

export interface ReplayFile extends CandleFileOverrides {
  path: string;
}

/** Reads and parses one candle file; an unreadable file is a CandleCsvError naming it. */
export function readCandleCsv(path: string, overrides: CandleFileOverrides = {}): CandleFile {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory' : code === 'EACCES' ? 'permission denied' : (err as Error).message;
    throw new CandleCsvError(`${path}: cannot read candle file: ${why}`, path);
  }
  return candleFileFromText(path, text, overrides);
}

/** Replay market data over files named by the convention, or with symbol/timeframe given; each is read on first use. */
export function replayFromFiles(files: Array<string | ReplayFile>, opts: ReplayOptions = {}): ReplayMarketData {
  const r = new ReplayMarketData(opts);
  for (const f of files) addFile(r, typeof f === 'string' ? { path: f } : f, 'throw');
  return r;
}

/**
 * Every conventionally named CSV in `dir`; with `exchange`, only that venue's files. Without it,
 * a symbol and timeframe recorded by two venues is ambiguous and refused when asked for.
 */
export function replayFromDirectory(dir: string, opts: ReplayOptions & { exchange?: string } = {}): ReplayMarketData {
  const r = new ReplayMarketData(opts);
  for (const name of readdirSync(dir).sort()) {
    const parsed = parseCandleFileName(name);
    if (!parsed || (opts.exchange && parsed.exchange !== opts.exchange)) continue;
    addFile(r, { path: join(dir, name) }, 'mark');
  }
  return r;
}

function addFile(r: ReplayMarketData, file: ReplayFile, onDuplicate: 'throw' | 'mark'): void {
  const fromName = parseCandleFileName(file.path);
  r.addSource(
    { symbol: file.symbol ?? fromName?.symbol, timeframe: file.timeframe ?? fromName?.timeframe, label: file.path, load: () => readCandleCsv(file.path, file).candles },
    onDuplicate,
  );
}

/** One candle file as a series; a bad file is a BacktestInputError naming it. */
export function loadSeriesFile(f: string | ReplayFile): BacktestSeries {
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

import path from 'node:path';
import fs from 'node:fs';
import { CandleCsvError } from '../lib/candle-csv';
import { checkCandles } from '../lib/candle-hygiene';
import type { Candle } from '../lib/candles';
import type { BacktestSeries } from '../lib/backtest';
import { readCandleCsv, type ReplayFile } from '../infra/candle-files';
import { sha256Hex } from './registry';

/**
 * The candles a model version is trained and evaluated on, and the one place they are read:
 * today from candle CSV files; a candle store adds a loader here that returns the same
 * TrainingSeries. Each series is one symbol on one timeframe, passed through candle hygiene
 * (gaps stay gaps; what cannot be repaired without inventing a price is dropped).
 */

export class TrainingInputError extends Error {
  override name = 'TrainingInputError';
}

/** What a version records about each series it was trained on (manifest, report, registry). */
export interface SourceFile {
  /** The file (absolute path while training; reports keep the file name only), or `<name> (<note>)` for a series cut in memory. */
  path: string;
  symbol: string;
  exchange: string;
  timeframe: string;
  candles: number;
  from: string;
  to: string;
  /** Of the file's bytes, or of the candles for a series cut in memory. */
  sha256: string;
}

export interface TrainingSeries {
  spec: ReplayFile;
  source: SourceFile;
  candles: Candle[];
  timeframeMs: number;
}

const iso = (ms: number) => new Date(ms).toISOString();

/** Candle CSV files as training series (one symbol per file, one timeframe for all). */
export function loadTrainingFiles(files: ReadonlyArray<string | ReplayFile>): TrainingSeries[] {
  if (!Array.isArray(files) || files.length === 0) throw new TrainingInputError('no data: give at least one candle CSV file');
  const out: TrainingSeries[] = [];
  for (const f of files) {
    const spec = typeof f === 'string' ? { path: f } : f;
    let file;
    try {
      file = readCandleCsv(spec.path, spec);
    } catch (err) {
      if (err instanceof CandleCsvError) throw new TrainingInputError(err.message);
      throw err;
    }
    const candles = checkCandles(file.candles, file.timeframeMs).candles;
    if (candles.length === 0) throw new TrainingInputError(`${spec.path}: no usable candles`);
    out.push({
      spec: { path: path.resolve(spec.path), symbol: file.symbol, timeframe: file.timeframe, exchange: file.exchange },
      candles,
      timeframeMs: file.timeframeMs,
      source: {
        path: path.resolve(spec.path),
        symbol: file.symbol,
        exchange: file.exchange,
        timeframe: file.timeframe,
        candles: candles.length,
        from: iso(candles[0].timestamp),
        to: iso(candles[candles.length - 1].timestamp),
        sha256: sha256Hex(fs.readFileSync(spec.path)),
      },
    });
  }
  return checkTrainingSeries(out);
}

/** One symbol per series, one timeframe, candles in every series. */
export function checkTrainingSeries(series: readonly TrainingSeries[]): TrainingSeries[] {
  if (series.length === 0) throw new TrainingInputError('no data: give at least one candle series');
  const tfs = new Set(series.map((f) => f.source.timeframe));
  if (tfs.size > 1) throw new TrainingInputError(`all files must share one timeframe; got ${[...tfs].join(', ')}`);
  const symbols = new Set<string>();
  for (const f of series) {
    if (f.candles.length === 0) throw new TrainingInputError(`${f.source.path}: no usable candles`);
    if (symbols.has(f.source.symbol)) throw new TrainingInputError(`${f.source.symbol} is given twice; one file per symbol`);
    symbols.add(f.source.symbol);
  }
  return [...series];
}

/** The candles of a series opening before `end` (ms), as a series of its own (walk-forward folds). */
export function seriesBefore(s: TrainingSeries, end: number): TrainingSeries | undefined {
  const candles = s.candles.filter((c) => c.timestamp < end);
  if (candles.length === 0) return undefined;
  if (candles.length === s.candles.length) return s;
  const text = candles.map((c) => `${c.timestamp},${c.open},${c.high},${c.low},${c.close},${c.volume}`).join('\n');
  return {
    spec: s.spec,
    candles,
    timeframeMs: s.timeframeMs,
    source: { ...s.source, path: `${path.basename(s.source.path)} (before ${iso(end).slice(0, 16)})`, candles: candles.length, to: iso(candles[candles.length - 1].timestamp), sha256: sha256Hex(Buffer.from(text)) },
  };
}

/** Training series as the backtester reads them. */
export function backtestSeries(series: readonly TrainingSeries[]): BacktestSeries[] {
  return series.map((f) => ({ source: f.source.path, exchange: f.source.exchange, symbol: f.source.symbol, timeframe: f.source.timeframe, timeframeMs: f.timeframeMs, candles: f.candles }));
}

import { writeAtomically } from '../../infra/files';
import { resolve } from 'node:path';
import { z } from 'zod';
import { CandleCsvError, type CandleFile } from '../../lib/candle-csv';
import { checkCandles, closedCandles, countIssues, inferTimeframeMs, type CandleIssue } from '../../lib/candle-hygiene';
import { MarketSymbol, msToTimeframe, Timeframe, timeframeToMs, type Candle } from '../../lib/candles';
import type postgres from 'postgres';
import type { AppConfig } from '../../infra/config';
import { loadConfig } from '../../infra/config';
import { openDatabase } from '../../infra/postgres';
import { createLogger } from '../../infra/logger';
import { CandleStore } from '../../ledger/candle-store';
import { storeSelection } from '../candle-args';
import { computeFeatureMatrix } from '../../lib/features';
import { classifyRegime } from '../../lib/regime';
import { UsageError } from '../../infra/errors';
import { readCandleCsv } from '../../infra/candle-files';

/**
 * `trader features --data FILE --out OUT.csv` (or `--symbol S --since WHEN [--until WHEN]` for a
 * candle store series): the feature matrix of recorded candles, as
 * a backtest or training run would compute it, one row per candle after warm-up, with the
 * regime. The file must be clean: rows the maths or a decision cannot trust (bad values,
 * conflicting duplicates, off-grid times) stop the command with their file:line; safe repairs
 * (sorting, exact duplicates) and gaps are reported and the features run across gaps as
 * consecutive bars, as they would live.
 */

export const FeaturesCommandOptions = z.object({
  data: z.string().min(1, '--data needs a candle CSV file').optional(),
  out: z.string().min(1, '--out needs an output file'),
  symbol: MarketSymbol.optional(),
  timeframe: Timeframe.optional(),
  exchange: z.string().regex(/^[a-z0-9]+$/, 'an exchange is a ccxt id such as binance').optional(),
  since: z.string().optional(),
  until: z.string().optional(),
});
export type FeaturesCommandOptions = z.infer<typeof FeaturesCommandOptions>;

export interface FeaturesCommandResult {
  out: string;
  candles: number;
  rows: number;
  warmup: number;
  issues: Partial<Record<CandleIssue['kind'], number>>;
}

export interface FeaturesCommandIo {
  info(line: string): void;
  warn(line: string): void;
  nowMs(): number;
}

const consoleIo: FeaturesCommandIo = { info: (l) => console.log(l), warn: (l) => console.error(l), nowMs: () => Date.now() };

export interface FeaturesCommandDeps {
  /** Default: loadConfig(); read only for candle store series (defaults and the database). */
  config?: () => Pick<AppConfig, 'exchange' | 'symbols' | 'timeframe' | 'databaseUrl' | 'home' | 'postgresPort'>;
  /** The ledger database holding the candle store (default: opened from the configuration). */
  sql?: postgres.Sql;
}

/** A series to compute features over, from a file or from the candle store; `where` names a candle for messages. */
interface FeatureSource {
  label: string;
  exchange: string;
  symbol: string;
  timeframe: string;
  timeframeMs: number;
  candles: Candle[];
  where(issue: CandleIssue): string;
}

/** Issues reported but tolerated: the data are usable, the operator should know. */
const TOLERATED = new Set<CandleIssue['kind']>(['gap']);
const MAX_LISTED = 10;

export async function runFeaturesCommand(raw: unknown, io: FeaturesCommandIo = consoleIo, deps: FeaturesCommandDeps = {}): Promise<FeaturesCommandResult> {
  const parsed = FeaturesCommandOptions.safeParse(raw);
  if (!parsed.success) {
    throw new UsageError(parsed.error.issues.map((i) => `--${i.path.join('.')}: ${i.message}`).join('; '));
  }
  const opts = parsed.data;
  const fromStore = opts.since !== undefined || opts.until !== undefined;
  if (opts.data !== undefined && fromStore) throw new UsageError('--data reads a candle file; --since and --until read the candle store: give one or the other');
  if (opts.data === undefined && !fromStore) throw new UsageError('give a candle file (--data FILE) or a candle store series (--symbol S --since WHEN, with --timeframe and --exchange defaulting to TIMEFRAME and EXCHANGE)');
  if (opts.data !== undefined && resolve(opts.out) === resolve(opts.data)) throw new UsageError('--out is the input file; refusing to overwrite the candles');

  const source = opts.data !== undefined ? fileSource(opts.data, opts) : await storeSource(opts, io, deps);
  const { timeframe, timeframeMs } = source;
  const label = `${source.exchange} ${source.symbol} ${timeframe}`;

  const spacing = inferTimeframeMs(source.candles);
  if (spacing !== undefined && spacing !== timeframeMs) {
    throw new UsageError(`${source.label}: candles are mostly ${msToTimeframe(spacing)} apart but the timeframe is ${timeframe}; pass --timeframe ${msToTimeframe(spacing)} if the file is ${msToTimeframe(spacing)} data`);
  }

  // A file recorded live can end with the candle that was still forming.
  const closed = closedCandles(source.candles, io.nowMs(), timeframeMs);
  if (closed.length < source.candles.length) io.warn(`note: dropped ${source.candles.length - closed.length} candle(s) not closed yet`);
  const check = checkCandles(closed, timeframeMs);

  const fatal = check.issues.filter((i) => !i.repaired && !TOLERATED.has(i.kind));
  if (fatal.length > 0) {
    const listed = fatal.slice(0, MAX_LISTED).map((i) => `${source.where(i)}: ${i.kind}: ${i.message}`);
    if (fatal.length > MAX_LISTED) listed.push(`... and ${fatal.length - MAX_LISTED} more`);
    throw new UsageError(`${source.label}: ${fatal.length} problem(s) make candles unusable for features:\n${listed.join('\n')}`);
  }
  const counts = countIssues(check.issues);
  const notes = [
    counts.out_of_order && `sorted ${counts.out_of_order} out-of-order row(s)`,
    counts.duplicate && `dropped ${counts.duplicate} exact duplicate row(s)`,
    counts.gap && `${counts.gap} gap(s), ${check.issues.reduce((n, i) => n + (i.missingCandles ?? 0), 0)} missing candle(s) (not filled; features run across them)`,
  ].filter(Boolean);
  if (notes.length > 0) io.warn(`note: ${label}: ${notes.join('; ')}`);

  const matrix = computeFeatureMatrix(check.candles);
  if (matrix.rowCount === 0) {
    throw new UsageError(`${source.label}: ${check.candles.length} candle(s); the features need ${matrix.warmup + 1} to produce a first row`);
  }

  const { schema, width } = matrix;
  const chunks: string[] = [['timestamp', ...schema.names, 'regime', 'regime_confidence'].join(',')];
  const cells = new Array<string>(width + 3);
  for (let k = 0; k < matrix.rowCount; k++) {
    const row = matrix.values.subarray(k * width, (k + 1) * width);
    const regime = classifyRegime(row);
    cells[0] = String(matrix.timestamps[k]);
    for (let j = 0; j < width; j++) cells[j + 1] = String(row[j]);
    cells[width + 1] = regime.label;
    cells[width + 2] = String(regime.confidence);
    chunks.push(cells.join(','));
  }
  chunks.push('');
  writeAtomically(opts.out, chunks.join('\n'));

  io.info(
    `wrote ${matrix.rowCount} rows x ${width} features (schema v${schema.version} ${schema.hash.slice(0, 12)}) + regime for ${label} to ${opts.out}` +
      ` (${check.candles.length} candles, the first ${matrix.warmup} are warm-up)`,
  );
  return { out: opts.out, candles: check.candles.length, rows: matrix.rowCount, warmup: matrix.warmup, issues: counts };
}


function fileSource(path: string, opts: FeaturesCommandOptions): FeatureSource {
  let file: CandleFile;
  try {
    file = readCandleCsv(path, { symbol: opts.symbol, timeframe: opts.timeframe, exchange: opts.exchange });
  } catch (err) {
    if (err instanceof CandleCsvError) throw new UsageError(err.missing ? `${err.message} with --${err.missing}` : err.message);
    throw err;
  }
  return { ...file, label: file.path, where: (issue) => `${file.path}:${file.lines[issue.inputIndex] ?? '?'}` };
}

/** One series of the candle store: --symbol (default: the first of SYMBOLS), --timeframe, --exchange, --since, --until. */
async function storeSource(opts: FeaturesCommandOptions, io: FeaturesCommandIo, deps: FeaturesCommandDeps): Promise<FeatureSource> {
  const cfg = (deps.config ?? loadConfig)();
  const sel = storeSelection(
    { exchange: opts.exchange, symbols: opts.symbol, timeframe: opts.timeframe, since: opts.since, until: opts.until },
    { exchange: cfg.exchange.id, symbols: cfg.symbols.slice(0, 1), timeframe: cfg.timeframe },
    io.nowMs(),
  );
  const symbol = sel.symbols[0];
  const read = (sql: postgres.Sql) => new CandleStore(sql).candles(sel.exchange, symbol, sel.timeframe, { since: sel.since, until: sel.until });
  let candles: Candle[];
  if (deps.sql) candles = await read(deps.sql);
  else {
    const db = await openDatabase({ databaseUrl: cfg.databaseUrl, home: cfg.home, port: cfg.postgresPort, log: createLogger({ level: 'warn', name: 'features' }) });
    try {
      candles = await read(db.sql);
    } finally {
      await db.close();
    }
  }
  const label = `candle store ${sel.exchange} ${symbol} ${sel.timeframe}`;
  if (candles.length === 0) {
    throw new UsageError(`the ${label} has no candles in the range; download them: trader data download --exchange ${sel.exchange} --symbols ${symbol} --timeframe ${sel.timeframe} --since ${opts.since}${opts.until ? ` --until ${opts.until}` : ''}`);
  }
  const iso = (ms: number) => new Date(ms).toISOString();
  return { label, exchange: sel.exchange, symbol, timeframe: sel.timeframe, timeframeMs: timeframeToMs(sel.timeframe), candles, where: (issue) => `${label} ${iso(issue.timestamp)}` };
}

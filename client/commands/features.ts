import { writeAtomically } from '../../infra/files';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { z } from 'zod';
import { CandleCsvError, type CandleFile } from '../../lib/candle-csv';
import { checkCandles, closedCandles, countIssues, inferTimeframeMs, type CandleIssue } from '../../lib/candle-hygiene';
import { MarketSymbol, msToTimeframe, Timeframe } from '../../lib/candles';
import { computeFeatureMatrix } from '../../lib/features';
import { classifyRegime } from '../../lib/regime';
import { UsageError } from '../../infra/errors';
import { readCandleCsv } from '../../infra/candle-files';

/**
 * `trader features --data FILE --out OUT.csv`: the feature matrix of a recorded candle file, as
 * a backtest or training run would compute it, one row per candle after warm-up, with the
 * regime. The file must be clean: rows the maths or a decision cannot trust (bad values,
 * conflicting duplicates, off-grid times) stop the command with their file:line; safe repairs
 * (sorting, exact duplicates) and gaps are reported and the features run across gaps as
 * consecutive bars, as they would live.
 */

export const FeaturesCommandOptions = z.object({
  data: z.string().min(1, '--data needs a candle CSV file'),
  out: z.string().min(1, '--out needs an output file'),
  symbol: MarketSymbol.optional(),
  timeframe: Timeframe.optional(),
  exchange: z.string().regex(/^[a-z0-9]+$/, 'an exchange is a ccxt id such as binance').optional(),
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

/** Issues reported but tolerated: the data are usable, the operator should know. */
const TOLERATED = new Set<CandleIssue['kind']>(['gap']);
const MAX_LISTED = 10;

export async function runFeaturesCommand(raw: unknown, io: FeaturesCommandIo = consoleIo): Promise<FeaturesCommandResult> {
  const parsed = FeaturesCommandOptions.safeParse(raw);
  if (!parsed.success) {
    throw new UsageError(parsed.error.issues.map((i) => `--${i.path.join('.')}: ${i.message}`).join('; '));
  }
  const opts = parsed.data;
  if (resolve(opts.out) === resolve(opts.data)) throw new UsageError('--out is the input file; refusing to overwrite the candles');

  let file: CandleFile;
  try {
    file = readCandleCsv(opts.data, { symbol: opts.symbol, timeframe: opts.timeframe, exchange: opts.exchange });
  } catch (err) {
    if (err instanceof CandleCsvError) throw new UsageError(err.missing ? `${err.message} with --${err.missing}` : err.message);
    throw err;
  }
  const { timeframe, timeframeMs } = file;
  const label = `${file.exchange} ${file.symbol} ${timeframe}`;

  const spacing = inferTimeframeMs(file.candles);
  if (spacing !== undefined && spacing !== timeframeMs) {
    throw new UsageError(`${file.path}: candles are mostly ${msToTimeframe(spacing)} apart but the timeframe is ${timeframe}; pass --timeframe ${msToTimeframe(spacing)} if the file is ${msToTimeframe(spacing)} data`);
  }

  // A file recorded live can end with the candle that was still forming.
  const closed = closedCandles(file.candles, io.nowMs(), timeframeMs);
  if (closed.length < file.candles.length) io.warn(`note: dropped ${file.candles.length - closed.length} candle(s) not closed yet`);
  const check = checkCandles(closed, timeframeMs);
  const lineOf = (issue: CandleIssue) => file.lines[issue.inputIndex] ?? '?';

  const fatal = check.issues.filter((i) => !i.repaired && !TOLERATED.has(i.kind));
  if (fatal.length > 0) {
    const listed = fatal.slice(0, MAX_LISTED).map((i) => `${file.path}:${lineOf(i)}: ${i.kind}: ${i.message}`);
    if (fatal.length > MAX_LISTED) listed.push(`... and ${fatal.length - MAX_LISTED} more`);
    throw new UsageError(`${file.path}: ${fatal.length} problem(s) make candles unusable for features:\n${listed.join('\n')}`);
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
    throw new UsageError(`${file.path}: ${check.candles.length} candle(s); the features need ${matrix.warmup + 1} to produce a first row`);
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


export function registerFeaturesCommand(program: Command): void {
  program
    .command('features')
    .description('compute the feature matrix and regime of a candle CSV (timestamp,open,high,low,close,volume) into a CSV')
    .requiredOption('--data <file>', 'candle CSV, named <exchange>_<BASE>-<QUOTE>_<timeframe>.csv unless --symbol/--timeframe are given')
    .requiredOption('--out <file>', 'output CSV: timestamp, one column per feature, regime, regime_confidence')
    .option('--symbol <symbol>', "market symbol, e.g. 'BTC/USDT' (default: from the file name)")
    .option('--timeframe <tf>', "candle timeframe, e.g. '1h' (default: from the file name)")
    .option('--exchange <id>', 'ccxt exchange id (default: from the file name)')
    .action(async (opts: FeaturesCommandOptions) => {
      await runFeaturesCommand(opts);
    });
}

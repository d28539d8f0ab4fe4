import { type Candle, MarketSymbol, timeframeToMs, TimeframeError } from './candles';

/**
 * Reads the shared candle CSV format: header `timestamp,open,high,low,close,volume` (any column
 * order, extra columns ignored), timestamp = candle open time in epoch ms, file named
 * `<exchange>_<BASE>-<QUOTE>_<timeframe>.csv`. Rows are parsed, not judged: out-of-order,
 * duplicate or inconsistent candles come back as they are, for candle-hygiene to report.
 */

export const CANDLE_COLUMNS = ['timestamp', 'open', 'high', 'low', 'close', 'volume'] as const;

/** A file or row we cannot read as candles; `message` names the file and line. */
export class CandleCsvError extends Error {
  override name = 'CandleCsvError';
  constructor(
    message: string,
    readonly file: string,
    readonly line?: number,
    /** Set when the file name did not say it: the caller should ask for it explicitly. */
    readonly missing?: 'timeframe' | 'symbol',
  ) {
    super(message);
  }
}

export interface CandleFileName {
  exchange: string;
  symbol: string;
  timeframe: string;
}

export interface CandleFile extends CandleFileName {
  path: string;
  timeframeMs: number;
  candles: Candle[];
  /** 1-based line in the file of each candle, for messages ("file:line"). */
  lines: number[];
}

export interface CandleFileOverrides {
  exchange?: string;
  symbol?: string;
  timeframe?: string;
}

// ccxt exchange ids are lower-case alphanumerics; assets may contain digits and dots (1000SHIB, BTC.D).
const FILE_NAME = /^([a-z0-9]+)_([A-Za-z0-9.]+)-([A-Za-z0-9.]+)_([1-9]\d*[smhdwMy])\.csv$/;

// Exchanges whose every market is a perpetual swap: ccxt adds the settlement currency to the
// symbol ('BTC/USDT:USDT'), and a symbol without it would not resolve there.
const SETTLES_IN: Record<string, 'quote' | 'base'> = { binanceusdm: 'quote', binancecoinm: 'base' };

/**
 * `binance_BTC-USDT_1h.csv` -> { exchange: 'binance', symbol: 'BTC/USDT', timeframe: '1h' };
 * `binanceusdm_BTC-USDT_1h.csv` -> symbol 'BTC/USDT:USDT', as ccxt names that market.
 */
export function parseCandleFileName(fileName: string): CandleFileName | undefined {
  const m = FILE_NAME.exec(fileName.slice(Math.max(fileName.lastIndexOf('/'), fileName.lastIndexOf('\\')) + 1));
  if (!m) return undefined;
  const [, exchange, base, quote, timeframe] = m;
  const settle = SETTLES_IN[exchange];
  const symbol = `${base}/${quote}${settle ? `:${settle === 'quote' ? quote : base}` : ''}`;
  return { exchange, symbol, timeframe };
}

const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;
// Epoch ms below this (1973-03-03) are almost certainly epoch seconds written by another tool.
const MIN_PLAUSIBLE_MS = 1e11;
const MAX_LISTED_ERRORS = 10;

/** Parses CSV text; `file` only labels messages. Throws CandleCsvError listing every bad row (up to 10). */
export function parseCandleCsv(text: string, file = '<input>'): { candles: Candle[]; lines: number[] } {
  const rows = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  const headerIdx = rows.findIndex((r) => r.trim() !== '');
  if (headerIdx < 0) throw new CandleCsvError(`${file}: empty file, expected a header ${CANDLE_COLUMNS.join(',')}`, file);
  const header = rows[headerIdx].split(',').map((h) => h.trim().toLowerCase());
  const col = CANDLE_COLUMNS.map((name) => header.indexOf(name));
  const missing = CANDLE_COLUMNS.filter((_, i) => col[i] < 0);
  if (missing.length > 0) {
    throw new CandleCsvError(
      `${file}:${headerIdx + 1}: header '${rows[headerIdx].trim()}' lacks column(s) ${missing.join(', ')}; expected ${CANDLE_COLUMNS.join(',')}`,
      file,
      headerIdx + 1,
    );
  }

  const candles: Candle[] = [];
  const lines: number[] = [];
  const errors: string[] = [];
  let errorCount = 0;
  let firstErrorLine: number | undefined;
  const fail = (line: number, why: string) => {
    errorCount++;
    firstErrorLine ??= line;
    if (errors.length < MAX_LISTED_ERRORS) errors.push(`${file}:${line}: ${why}`);
  };

  for (let i = headerIdx + 1; i < rows.length; i++) {
    const raw = rows[i];
    if (raw.trim() === '') continue;
    const line = i + 1;
    const fields = raw.split(',');
    if (fields.length !== header.length) {
      fail(line, `expected ${header.length} fields, found ${fields.length}: '${raw.slice(0, 80)}'`);
      continue;
    }
    const v = new Array<number>(6);
    let bad = '';
    for (let c = 0; c < 6; c++) {
      const text = fields[col[c]].trim();
      const n = DECIMAL.test(text) ? Number(text) : NaN;
      if (!Number.isFinite(n)) {
        bad = `${CANDLE_COLUMNS[c]} '${text}' is not a finite number`;
        break;
      }
      v[c] = n;
    }
    if (!bad && !Number.isSafeInteger(v[0])) bad = `timestamp '${fields[col[0]].trim()}' is not an integer of epoch milliseconds`;
    if (!bad && v[0] < MIN_PLAUSIBLE_MS) bad = `timestamp ${v[0]} looks like epoch seconds; the format wants epoch milliseconds`;
    if (bad) {
      fail(line, bad);
      continue;
    }
    candles.push({ timestamp: v[0], open: v[1], high: v[2], low: v[3], close: v[4], volume: v[5] });
    lines.push(line);
  }
  if (errorCount > 0) {
    const more = errorCount > errors.length ? `\n... and ${errorCount - errors.length} more bad row(s)` : '';
    throw new CandleCsvError(`${errorCount} bad row(s):\n${errors.join('\n')}${more}`, file, firstErrorLine);
  }
  if (candles.length === 0) throw new CandleCsvError(`${file}: no candle rows after the header`, file);
  return { candles, lines };
}

/**
 * A candle file's text as a CandleFile. Exchange, symbol and timeframe come from the file name
 * unless given; a file whose name does not follow the convention needs symbol and timeframe
 * explicitly. Reading the file is infra/candle-files.ts's job.
 */
export function candleFileFromText(path: string, text: string, overrides: CandleFileOverrides = {}): CandleFile {
  const fromName = parseCandleFileName(path);
  const timeframe = overrides.timeframe ?? fromName?.timeframe;
  const symbol = overrides.symbol ?? fromName?.symbol;
  const exchange = overrides.exchange ?? fromName?.exchange ?? 'unknown';
  const convention = '<exchange>_<BASE>-<QUOTE>_<timeframe>.csv';
  if (!timeframe) throw new CandleCsvError(`${path}: cannot tell the timeframe from the file name (expected ${convention}); give it explicitly`, path, undefined, 'timeframe');
  if (!symbol) throw new CandleCsvError(`${path}: cannot tell the symbol from the file name (expected ${convention}); give it explicitly`, path, undefined, 'symbol');
  const sym = MarketSymbol.safeParse(symbol);
  if (!sym.success) throw new CandleCsvError(`${path}: symbol '${symbol}': ${sym.error.issues[0]?.message}`, path);
  let timeframeMs: number;
  try {
    timeframeMs = timeframeToMs(timeframe);
  } catch (err) {
    if (err instanceof TimeframeError) throw new CandleCsvError(`${path}: ${err.message}`, path);
    throw err;
  }

  const { candles, lines } = parseCandleCsv(text, path);
  return { path, exchange, symbol, timeframe, timeframeMs, candles, lines };
}

/**
 * The conventional file name of a series: ('binance', 'BTC/USDT', '1h') -> `binance_BTC-USDT_1h.csv`.
 * A settlement currency (`BTC/USDT:USDT`) is left out, as parseCandleFileName puts it back for
 * the venues that only list perpetuals.
 */
export function candleFileName(exchange: string, symbol: string, timeframe: string): string {
  const [base, rest] = symbol.split('/');
  const quote = (rest ?? '').split(':')[0];
  return `${exchange}_${base}-${quote}_${timeframe}.csv`;
}

/** Candles as the shared CSV format (header, one row per candle, numbers in their shortest exact form). */
export function formatCandleCsv(candles: readonly Candle[]): string {
  const rows = [CANDLE_COLUMNS.join(',')];
  for (const c of candles) rows.push(`${c.timestamp},${c.open},${c.high},${c.low},${c.close},${c.volume}`);
  return rows.join('\n') + '\n';
}

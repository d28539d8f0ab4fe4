import { UsageError } from '../infra/errors';
import { MarketSymbol, timeframeToMs } from '../lib/candles';
import { alignDown, alignUp } from '../lib/candle-ranges';
import type { CandleSelection } from '../ledger/candle-store';

/**
 * The options that name candle store series, shared by `trader data`, `backtest`, `features`
 * and `up --replay`: `--exchange ID --symbols A,B --timeframe TF --since WHEN [--until WHEN]`,
 * the exchange, symbols and timeframe defaulting to EXCHANGE, SYMBOLS and TIMEFRAME.
 *
 * WHEN is a date (`2024-01-31`, midnight UTC), a date and time (`2024-01-31T12:00`, UTC unless it
 * carries an offset such as `Z` or `+02:00`), epoch milliseconds, a duration back from now
 * (`90d`, `12h`, `2w`, `30m`), or `now`.
 */

export interface StoreSeriesArgs {
  exchange?: string;
  symbols?: string | string[];
  timeframe?: string;
  since?: string;
  until?: string;
}

export interface SeriesDefaults {
  exchange: string;
  symbols: string[];
  timeframe: string;
}

const DATE = /^\d{4}-\d{2}-\d{2}$/;
const DATE_TIME = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,3})?)?(Z|[+-]\d{2}:?\d{2})?$/i;
const AGO = /^(\d+)(m|h|d|w)$/;
const AGO_MS: Record<string, number> = { m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };
const EXAMPLES = "e.g. 2024-01-31, 2024-01-31T12:00, 1706659200000, 90d (90 days ago) or now";

/** A WHEN argument as epoch ms; a UsageError naming the flag otherwise. */
export function parseWhen(flag: string, text: string, nowMs: number): number {
  const t = text.trim();
  let ms = Number.NaN;
  if (t.toLowerCase() === 'now') ms = nowMs;
  else if (/^\d{12,14}$/.test(t)) ms = Number(t);
  else if (AGO.test(t)) {
    const [, n, unit] = AGO.exec(t)!;
    ms = nowMs - Number(n) * AGO_MS[unit];
  } else if (DATE.test(t)) ms = Date.parse(`${t}T00:00:00Z`);
  else if (DATE_TIME.test(t)) {
    const iso = t.replace(' ', 'T');
    ms = Date.parse(/(Z|[+-]\d{2}:?\d{2})$/i.test(iso) ? iso : `${iso}Z`);
  }
  if (!Number.isFinite(ms)) throw new UsageError(`${flag} '${text}': expected a date, a date and time (UTC), epoch ms or a duration back from now; ${EXAMPLES}`);
  return ms;
}

/** Comma-separated (or repeated) symbols, upper-cased as the configuration does. */
export function parseSymbols(flag: string, raw: string | string[]): string[] {
  const list = (Array.isArray(raw) ? raw : [raw]).flatMap((s) => s.split(',')).map((s) => s.trim().toUpperCase()).filter((s) => s !== '');
  if (list.length === 0) throw new UsageError(`${flag}: give at least one symbol, e.g. BTC/USDT,ETH/USDT`);
  const bad = list.filter((s) => !MarketSymbol.safeParse(s).success);
  if (bad.length > 0) throw new UsageError(`${flag}: ${bad.join(', ')}: a market symbol looks like BTC/USDT (or BTC/USDT:USDT)`);
  const dupes = list.filter((s, i) => list.indexOf(s) !== i);
  if (dupes.length > 0) throw new UsageError(`${flag}: ${[...new Set(dupes)].join(', ')} listed twice`);
  return list;
}

/**
 * Store series from the options: since is required; until defaults to now. Both are aligned to
 * the timeframe's grid (since up, until down), so `--since 2024-01-01 --until 2024-02-01`
 * means every candle that opens in January.
 */
export function storeSelection(args: StoreSeriesArgs, defaults: SeriesDefaults, nowMs: number): CandleSelection {
  const { exchange, symbols, timeframe, tfMs } = storeSeries(args, defaults);
  if (args.since === undefined) throw new UsageError('--since: say from when, e.g. --since 2024-01-01 (or --since 90d)');
  const since = alignUp(parseWhen('--since', args.since, nowMs), tfMs);
  const until = alignDown(args.until === undefined ? nowMs : parseWhen('--until', args.until, nowMs), tfMs);
  if (since >= until) throw new UsageError(`--since ${args.since} is not before --until ${args.until ?? 'now'}: no ${timeframe} candle opens in between`);
  return { exchange, symbols, timeframe, since, until };
}

/** The exchange, symbols and timeframe of the options (defaults filled in), checked. */
export function storeSeries(args: Omit<StoreSeriesArgs, 'since' | 'until'>, defaults: SeriesDefaults): SeriesDefaults & { tfMs: number } {
  const exchange = (args.exchange ?? defaults.exchange).trim().toLowerCase();
  if (!/^[a-z0-9]+$/.test(exchange)) throw new UsageError(`--exchange '${args.exchange}': expected a ccxt exchange id such as binance`);
  const symbols = args.symbols === undefined ? defaults.symbols : parseSymbols('--symbols', args.symbols);
  if (symbols.length === 0) throw new UsageError('--symbols: give at least one symbol, e.g. BTC/USDT (or set SYMBOLS)');
  const timeframe = (args.timeframe ?? defaults.timeframe).trim();
  let tfMs: number;
  try {
    tfMs = timeframeToMs(timeframe);
  } catch (err) {
    throw new UsageError(`--timeframe: ${(err as Error).message}`);
  }
  if (tfMs > 86_400_000) throw new UsageError(`--timeframe ${timeframe}: the candle store holds timeframes up to 1d`);
  return { exchange, symbols, timeframe, tfMs };
}

/** `--window 365d` or `52w`: whole days of the most recent candles (1 to 3650). */
export function parseWindowDays(flag: string, text: string): number {
  const m = /^([1-9]\d{0,4})([dw])$/.exec(String(text).trim());
  const days = m ? Number(m[1]) * (m[2] === 'w' ? 7 : 1) : NaN;
  if (!(days >= 1 && days <= 3650)) throw new UsageError(`${flag} '${text}': expected a number of days or weeks, e.g. 365d or 52w (1d to 3650d)`);
  return days;
}

/** True when any of the store options was given. */
export function anyStoreOption(args: StoreSeriesArgs): boolean {
  return args.exchange !== undefined || args.symbols !== undefined || args.timeframe !== undefined || args.since !== undefined || args.until !== undefined;
}

import { mkdirSync } from 'node:fs';
import path from 'node:path';
import type postgres from 'postgres';
import { MultiBar, Presets, type SingleBar } from 'cli-progress';
import type { AppConfig } from '../../infra/config';
import { loadConfig } from '../../infra/config';
import { Interrupted, UsageError } from '../../infra/errors';
import { writeAtomically } from '../../infra/files';
import { createLogger } from '../../infra/logger';
import { openDatabase, type Database } from '../../infra/postgres';
import { CandleStore, type SeriesCoverage } from '../../ledger/candle-store';
import { checkMarkets, marketDataExchangeFor, downloadCandles, DownloadInterrupted, pageSizeOf, type DownloadProgress, type DownloadReport } from '../../activities/market-data';
import type { ExchangeResilience, ResilienceOptions } from '../../activities/exchange/resilience';
import type { CcxtExchangeAdapter } from '../../activities/exchange/ccxt-adapter';
import { ExchangeError } from '../../lib/exchange/errors';
import { candleFileName, formatCandleCsv } from '../../lib/candle-csv';
import { candleSlots } from '../../lib/candle-ranges';
import { timeframeToMs } from '../../lib/candles';
import { parseSymbols, storeSelection, type StoreSeriesArgs } from '../candle-args';

/**
 * `trader data download --exchange ID --symbols A,B --timeframe TF --since WHEN [--until WHEN] [--out DIR]`
 * fills the candle store (ledger/candle-store.ts) from the exchange, resumably: a second run asks
 * only for what the first did not store. `--out DIR` also writes each series in the requested
 * range as `<exchange>_<BASE>-<QUOTE>_<tf>.csv`.
 *
 * `trader data list [--exchange ID] [--symbols A,B] [--timeframe TF] [--gaps] [--json]` shows
 * what the store holds per series: candles, first and last, and the gaps, each marked as the
 * exchange's own (downloaded, nothing there) or never downloaded.
 *
 * The store is the ledger database: DATABASE_URL, or the embedded PostgreSQL under TRADER_HOME
 * (shared with a running `trader up`).
 */

export interface DataCommandIo {
  info(line: string): void;
  warn(line: string): void;
  /** Progress bars on stderr; default: when stderr is a terminal. */
  bars?: boolean;
}

type DataConfig = Pick<AppConfig, 'exchange' | 'symbols' | 'timeframe' | 'databaseUrl' | 'home' | 'postgresPort'>;

export interface DataCommandDeps {
  config?: () => DataConfig;
  /** The ledger database (default: opened from the configuration). */
  sql?: postgres.Sql;
  /** Overrides for the exchange client (tests: shorter timeouts and backoff). */
  exchange?: { timeoutMs?: number; resilience?: ExchangeResilience | ResilienceOptions };
  /** Candles per request (default: the exchange's maximum). */
  pageSize?: number;
  now?: () => number;
  /** Aborting it stops the download after the page in flight (default: Ctrl-C). */
  signal?: AbortSignal;
}

export interface DataDownloadArgs extends StoreSeriesArgs {
  out?: string;
}

const consoleIo: DataCommandIo = { info: (l) => console.log(l), warn: (l) => console.error(l) };
const quietLog = createLogger({ level: 'warn', name: 'data' });

async function withStore<T>(cfg: DataConfig, deps: DataCommandDeps, fn: (store: CandleStore) => Promise<T>): Promise<T> {
  if (deps.sql) return fn(new CandleStore(deps.sql));
  const db: Database = await openDatabase({ databaseUrl: cfg.databaseUrl, home: cfg.home, port: cfg.postgresPort, log: quietLog });
  try {
    return await fn(new CandleStore(db.sql));
  } finally {
    await db.close();
  }
}

export async function runDataDownload(args: DataDownloadArgs, io: DataCommandIo = consoleIo, deps: DataCommandDeps = {}): Promise<DownloadReport[]> {
  const cfg = (deps.config ?? loadConfig)();
  const now = deps.now ?? Date.now;
  const sel = storeSelection(args, { exchange: cfg.exchange.id, symbols: cfg.symbols, timeframe: cfg.timeframe }, now());
  if (args.out !== undefined && args.out.trim() === '') throw new UsageError('--out needs a directory');

  const own = sel.exchange === cfg.exchange.id;
  let adapter: CcxtExchangeAdapter;
  try {
    adapter = marketDataExchangeFor(cfg.exchange, sel.exchange, { ...deps.exchange, now, log: quietLog });
    await checkMarkets(adapter, sel.symbols, sel.timeframe);
  } catch (err) {
    if (err instanceof ExchangeError && !err.retryable) throw new UsageError(err.message);
    throw new Error(`cannot load ${sel.exchange}'s markets${own && cfg.exchange.apiUrl ? ` (EXCHANGE_API_URL ${cfg.exchange.apiUrl})` : ''}: ${(err as Error).message}`, { cause: err });
  }

  const interrupt = deps.signal ? undefined : ctrlC();
  const signal = deps.signal ?? interrupt!.signal;
  const bars = progressBars(io, sel.symbols);
  let reports: DownloadReport[];
  try {
    reports = await withStore(cfg, deps, async (store) => {
      const settled = await Promise.allSettled(
        sel.symbols.map((symbol) =>
          downloadCandles(
            // No log: conflicts and rejected candles are in the summary printed below.
            { store, source: adapter, now },
            { exchange: sel.exchange, symbol, timeframe: sel.timeframe, since: sel.since, until: sel.until },
            { pageSize: deps.pageSize ?? pageSizeOf(adapter, symbol), signal, onProgress: (p) => bars.update(p) },
          ),
        ),
      );
      bars.stop();
      const failed = settled.filter((s): s is PromiseRejectedResult => s.status === 'rejected').map((s) => s.reason as unknown);
      const done = settled.filter((s): s is PromiseFulfilledResult<DownloadReport> => s.status === 'fulfilled').map((s) => s.value);
      for (const r of done) for (const line of reportLines(r)) io.info(line);
      const interrupted = failed.filter((e): e is DownloadInterrupted => e instanceof DownloadInterrupted);
      for (const e of interrupted) for (const line of reportLines(e.report)) io.info(line);
      const other = failed.find((e) => !(e instanceof DownloadInterrupted));
      if (other) throw other instanceof ExchangeError ? new Error(`${(other as Error).message}; what was stored stays stored: run the same command again to resume`, { cause: other }) : other;
      if (interrupted.length > 0) throw new Interrupted('interrupted: every page stored so far is kept; run the same command again to resume');
      if (args.out !== undefined) await writeCsvFiles(store, sel, args.out, io);
      return done;
    });
  } finally {
    bars.stop();
    interrupt?.dispose();
  }
  return reports;
}

async function writeCsvFiles(store: CandleStore, sel: { exchange: string; symbols: string[]; timeframe: string; since: number; until: number }, dir: string, io: DataCommandIo): Promise<void> {
  try {
    mkdirSync(dir, { recursive: true });
  } catch (err) {
    throw new UsageError(`--out ${dir}: cannot create the directory: ${(err as Error).message}`);
  }
  for (const symbol of sel.symbols) {
    const candles = await store.candles(sel.exchange, symbol, sel.timeframe, { since: sel.since, until: sel.until });
    const file = path.join(dir, candleFileName(sel.exchange, symbol, sel.timeframe));
    writeAtomically(file, formatCandleCsv(candles));
    io.info(`wrote ${candles.length} candles to ${file}`);
  }
}

const day = (ms: number) => new Date(ms).toISOString().slice(0, 16).replace('T', ' ');

function reportLines(r: DownloadReport): string[] {
  const tfMs = timeframeToMs(r.timeframe);
  const out = [
    `${r.exchange} ${r.symbol} ${r.timeframe} ${day(r.since)} .. ${day(r.until)} UTC: ${r.inserted} new candle(s) in ${r.requests} request(s)` +
      (r.missingBefore === 0 ? ' (already complete)' : `; ${r.missingBefore} were missing`) +
      (r.unchanged > 0 ? `; ${r.unchanged} already stored` : ''),
  ];
  if (r.conflicts.length > 0) {
    const c = r.conflicts[0];
    out.push(`  ${r.conflicts.length} candle(s) reported differently than stored; the stored ones are kept (first: ${day(c.timestamp)} stored close ${c.stored.close}, now ${c.offered.close})`);
  }
  if (r.rejected.length > 0) out.push(`  ${r.rejected.length} candle(s) kept out by hygiene (first: ${r.rejected[0].kind}: ${r.rejected[0].message}); they are asked for again next time`);
  const still = r.stillMissing.reduce((n, m) => n + candleSlots(m, tfMs), 0);
  if (still > 0 && r.rejected.length === 0) out.push(`  ${still} candle(s) still missing`);
  return out;
}

/** One bar per symbol on stderr when it is a terminal; otherwise nothing until the summary. */
function progressBars(io: DataCommandIo, symbols: string[]): { update(p: DownloadProgress): void; stop(): void } {
  if (!(io.bars ?? process.stderr.isTTY)) return { update: () => undefined, stop: () => undefined };
  const width = Math.max(...symbols.map((s) => s.length));
  const multi = new MultiBar(
    { format: ' {symbol} [{bar}] {percentage}% {value}/{total} candles, {inserted} new', hideCursor: true, clearOnComplete: false, stopOnComplete: false, stream: process.stderr, barsize: 30 },
    Presets.shades_classic,
  );
  const bars = new Map<string, SingleBar>();
  let stopped = false;
  return {
    update(p) {
      if (stopped) return;
      let bar = bars.get(p.symbol);
      if (!bar) {
        bar = multi.create(Math.max(1, p.total), 0, { symbol: p.symbol.padEnd(width), inserted: 0 });
        bars.set(p.symbol, bar);
      }
      bar.setTotal(Math.max(1, p.total));
      bar.update(p.total === 0 ? 1 : p.done, { symbol: p.symbol.padEnd(width), inserted: p.inserted });
    },
    stop() {
      if (stopped) return;
      stopped = true;
      multi.stop();
    },
  };
}

/** Ctrl-C stops the download after the page in flight; a second Ctrl-C exits at once. */
function ctrlC(): { signal: AbortSignal; dispose(): void } {
  const controller = new AbortController();
  const handler = () => {
    if (controller.signal.aborted) process.exit(130);
    console.error('\nstopping after the pages in flight (Ctrl-C again to quit at once)');
    controller.abort();
  };
  process.on('SIGINT', handler);
  return { signal: controller.signal, dispose: () => process.removeListener('SIGINT', handler) };
}

export interface DataListArgs {
  exchange?: string;
  symbols?: string | string[];
  timeframe?: string;
  gaps?: boolean;
  json?: boolean;
}

const LISTED_GAPS = 5;

export async function runDataList(args: DataListArgs, io: DataCommandIo = consoleIo, deps: DataCommandDeps = {}): Promise<SeriesCoverage[]> {
  const exchange = args.exchange?.trim().toLowerCase();
  if (exchange !== undefined && !/^[a-z0-9]+$/.test(exchange)) throw new UsageError(`--exchange '${args.exchange}': expected a ccxt exchange id such as binance`);
  const symbols = args.symbols === undefined ? undefined : parseSymbols('--symbols', args.symbols);
  if (args.timeframe !== undefined) {
    try {
      timeframeToMs(args.timeframe);
    } catch (err) {
      throw new UsageError(`--timeframe: ${(err as Error).message}`);
    }
  }
  const cfg = (deps.config ?? loadConfig)();
  const series = await withStore(cfg, deps, (store) => store.coverage({ exchange, symbols, timeframe: args.timeframe }));
  if (args.json) {
    io.info(JSON.stringify(series, null, 2));
    return series;
  }
  if (series.length === 0) {
    io.info(`the candle store has no candles${exchange || symbols || args.timeframe ? ' matching these options' : ''}; fill it with e.g. trader data download --symbols ${cfg.symbols.join(',')} --timeframe ${cfg.timeframe} --since 90d`);
    return series;
  }
  const rows = [['exchange', 'symbol', 'tf', 'candles', 'first (UTC)', 'last (UTC)', 'gaps', 'missing', 'exchange gaps']];
  for (const s of series) {
    const own = s.gaps.filter((g) => g.exchangeHasNone);
    const open = s.gaps.filter((g) => !g.exchangeHasNone);
    rows.push([
      s.exchange, s.symbol, s.timeframe, String(s.candles), s.first === null ? '-' : day(s.first), s.last === null ? '-' : day(s.last),
      String(open.length), String(open.reduce((n, g) => n + g.missing, 0)), own.length === 0 ? '0' : `${own.length} (${own.reduce((n, g) => n + g.missing, 0)} candles)`,
    ]);
  }
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  for (const r of rows) io.info(r.map((cell, c) => (c < 3 || c === 4 || c === 5 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join('  ').trimEnd());
  for (const s of series) {
    if (s.gaps.length === 0) continue;
    const shown = args.gaps ? s.gaps : s.gaps.slice(0, LISTED_GAPS);
    io.info('');
    io.info(`${s.exchange} ${s.symbol} ${s.timeframe} gaps:`);
    for (const g of shown) io.info(`  ${day(g.from)} .. ${day(g.to)}  ${g.missing} candle(s)  ${g.exchangeHasNone ? 'the exchange has none' : 'not downloaded'}`);
    if (shown.length < s.gaps.length) io.info(`  ... and ${s.gaps.length - shown.length} more (--gaps lists all)`);
  }
  if (series.some((s) => s.gaps.some((g) => !g.exchangeHasNone))) io.info('\n"missing" candles were never downloaded: trader data download over their range fetches them.');
  return series;
}

import fs from 'node:fs';
import path from 'node:path';
import type { Logger } from '../../infra/logger';
import type { CandleStore } from '../../ledger/candle-store';
import type { CcxtExchangeAdapter } from '../exchange/ccxt-adapter';
import { candleFileName, formatCandleCsv } from '../../lib/candle-csv';
import { alignDown } from '../../lib/candle-ranges';
import { MarketSymbol, timeframeToMs } from '../../lib/candles';
import { ExchangeError } from '../../lib/exchange/errors';
import { DEFAULT_TRAINING_WINDOW_DAYS, type GatheredData, type StoreTrainingSource, type StoreTrainingWindow } from '../../lib/contracts/retrain';
import { sha256Hex } from '../../models/registry';
import { TrainingInputError } from '../../models/train';
import { checkMarkets, pageSizeOf } from './exchange';
import { closedUntil, downloadCandles, type DownloadProgress } from './download';

/**
 * The candle store's most recent window as a retrain's data: [last closed candle - N days, last
 * closed candle), the part the store lacks downloaded first (the resumable download of
 * `trader data download`), then each series written into the run's snapshot directory as
 * `<exchange>_<BASE>-<QUOTE>_<tf>.csv`, so training and scoring read files exactly as they do
 * for a file-sourced retrain, and a retried activity trains on the same bytes.
 */

const DAY_MS = 86_400_000;
const MAX_WINDOW_DAYS = 3650;

export interface TrainingWindowDeps {
  store: CandleStore;
  /** The exchange to download from, by ccxt id (absent: a window that needs a download fails). */
  openExchange?: (exchangeId: string) => CcxtExchangeAdapter;
  now: () => number;
  log?: Logger;
  /** Called with the fixed window and each download page's progress (the activity's heartbeat). */
  onProgress?: (window: { since: number; until: number }, p: DownloadProgress) => void;
  signal?: AbortSignal;
}

/** A store source as stated (exchange id, symbols, timeframe, window): a TrainingInputError naming what is wrong. */
export function checkStoreSource(src: StoreTrainingSource): { tfMs: number; windowDays: number; download: boolean } {
  const problems: string[] = [];
  if (typeof src.exchange !== 'string' || !/^[a-z0-9]+$/.test(src.exchange)) problems.push(`exchange '${String(src.exchange)}': expected a ccxt exchange id such as binance`);
  if (!Array.isArray(src.symbols) || src.symbols.length === 0) problems.push('symbols: at least one, e.g. BTC/USDT');
  else {
    const bad = src.symbols.filter((s) => !MarketSymbol.safeParse(s).success);
    if (bad.length > 0) problems.push(`symbols ${bad.join(', ')}: a market symbol looks like BTC/USDT`);
    if (new Set(src.symbols).size !== src.symbols.length) problems.push('symbols: one listed twice');
  }
  let tfMs = NaN;
  try {
    tfMs = timeframeToMs(src.timeframe);
    if (tfMs > DAY_MS) problems.push(`timeframe ${src.timeframe}: the candle store holds timeframes up to 1d`);
  } catch (err) {
    problems.push(`timeframe: ${(err as Error).message}`);
  }
  const windowDays = src.windowDays ?? DEFAULT_TRAINING_WINDOW_DAYS;
  if (!(Number.isInteger(windowDays) && windowDays >= 1 && windowDays <= MAX_WINDOW_DAYS)) problems.push(`window of ${String(windowDays)} days: expected whole days from 1 to ${MAX_WINDOW_DAYS}`);
  if (src.download !== undefined && typeof src.download !== 'boolean') problems.push(`download: expected true or false, got ${JSON.stringify(src.download)}`);
  if (problems.length > 0) throw new TrainingInputError(`candle store source: ${problems.join('; ')}`);
  return { tfMs, windowDays, download: src.download ?? true };
}

/**
 * Downloads what is missing in the window (unless told not to), then snapshots it into `dir`.
 * `fixed` is the window an earlier attempt of the same activity chose: a retry downloads and
 * trains on that window, not on one a few minutes later.
 */
export async function snapshotTrainingWindow(deps: TrainingWindowDeps, src: StoreTrainingSource, dir: string, fixed?: { since: number; until: number }): Promise<GatheredData> {
  const { tfMs, windowDays, download } = checkStoreSource(src);
  const { exchange, symbols, timeframe } = src;
  const until = fixed?.until ?? closedUntil(deps.now(), tfMs);
  const since = fixed?.since ?? alignDown(until - windowDays * DAY_MS, tfMs);
  const window: StoreTrainingWindow = { exchange, timeframe, windowDays, since: new Date(since).toISOString(), until: new Date(until).toISOString(), downloaded: [] };

  if (download) {
    if (!deps.openExchange) throw new TrainingInputError(`cannot download ${exchange} candles: this training worker has no exchange configured (store.download false trains on what is stored)`);
    const adapter = deps.openExchange(exchange);
    try {
      await checkMarkets(adapter, symbols, timeframe);
    } catch (err) {
      // A symbol or timeframe the exchange does not have will not appear on a retry; an outage may pass.
      if (err instanceof ExchangeError && !err.retryable) throw new TrainingInputError(err.message);
      throw err;
    }
    // One symbol after another: they share the exchange's rate limit, so nothing is gained in parallel.
    for (const symbol of symbols) {
      const r = await downloadCandles(
        { store: deps.store, source: adapter, now: deps.now, log: deps.log },
        { exchange, symbol, timeframe, since, until },
        { pageSize: pageSizeOf(adapter, symbol), signal: deps.signal, onProgress: (p) => deps.onProgress?.({ since, until }, p) },
      );
      window.downloaded.push({ symbol, missingBefore: r.missingBefore, requests: r.requests, inserted: r.inserted });
    }
  }

  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  const files: GatheredData['files'] = [];
  for (const symbol of symbols) {
    const candles = await deps.store.candles(exchange, symbol, timeframe, { since, until });
    if (candles.length === 0) {
      const day = (ms: number) => new Date(ms).toISOString().slice(0, 10);
      throw new TrainingInputError(
        `the candle store has no ${exchange} ${symbol} ${timeframe} candles from ${day(since)} to ${day(until)}` +
          (download ? ' and the exchange returned none' : `; download them: trader data download --exchange ${exchange} --symbols ${symbol} --timeframe ${timeframe} --since ${day(since)}`),
      );
    }
    const bytes = Buffer.from(formatCandleCsv(candles), 'utf8');
    const file = path.join(dir, candleFileName(exchange, symbol, timeframe));
    fs.writeFileSync(file, bytes);
    files.push({
      source: `store:${exchange}`,
      path: file,
      sha256: sha256Hex(bytes),
      exchange,
      symbol,
      timeframe,
      candles: candles.length,
      from: new Date(candles[0].timestamp).toISOString(),
      to: new Date(candles[candles.length - 1].timestamp).toISOString(),
    });
  }
  return { files, window };
}

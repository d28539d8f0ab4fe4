import type { Logger } from '../../infra/logger';
import type { CandleConflict, CandleStore } from '../../ledger/candle-store';
import { alignDown, candleSlots, subtractRanges, type TimeRange } from '../../lib/candle-ranges';
import { storableCandles, type CandleIssue } from '../../lib/candle-hygiene';
import { timeframeToMs, type Candle } from '../../lib/candles';
import type { MarketDataSource } from '../../lib/exchange/types';

/**
 * Downloads candles into the candle store, resumably: only the spans the store has neither as
 * candles nor as downloaded spans are asked for, page by page (ccxt fetchOHLCV with `since` and
 * `limit`), and each page is stored together with the span it covers in one transaction. An
 * interruption (Ctrl-C, a crash, an exchange that stays down past the retries) loses at most the
 * page in flight, and the next run starts where this one stopped.
 *
 * ccxt can paginate by itself (`paginate: true`), but only as one call that returns everything
 * at the end: no progress, nothing stored until the last page, nothing to resume from.
 *
 * Every request goes through the source's own rate limiter and resilience (the ccxt adapter:
 * the retry and circuit-breaker policy of trading), and every page through candle hygiene: the
 * candle still forming is never stored, nor one with broken values (reported in `rejected`;
 * its slot is not marked downloaded, so a later run asks for it again).
 */

export interface DownloadRequest {
  exchange: string;
  symbol: string;
  timeframe: string;
  /** Open time, inclusive. */
  since: number;
  /** Open time, exclusive; clipped to the last candle closed at now. Default: now. */
  until?: number;
}

export interface DownloadProgress {
  symbol: string;
  /** Candle slots handled so far (stored, or known to be absent at the exchange). */
  done: number;
  /** Candle slots that were missing when the download started. */
  total: number;
  inserted: number;
}

export interface DownloadReport {
  exchange: string;
  symbol: string;
  timeframe: string;
  since: number;
  /** After clipping to now. */
  until: number;
  /** Candle slots that were neither stored nor downloaded before. */
  missingBefore: number;
  requests: number;
  received: number;
  inserted: number;
  unchanged: number;
  /** Candles the exchange now reports differently from the stored ones (the stored ones were kept). */
  conflicts: CandleConflict[];
  /** Candles hygiene kept out of the store. */
  rejected: CandleIssue[];
  /** What is still neither stored nor downloaded (rejected candles' slots). */
  stillMissing: TimeRange[];
}

export interface DownloadDeps {
  store: CandleStore;
  /** Closed candles from `since`, at most `limit` (the ccxt adapter). */
  source: MarketDataSource;
  now?: () => number;
  log?: Logger;
}

export interface DownloadOptions {
  /** Candles asked per request: the exchange's maximum (see pageSizeOf). */
  pageSize: number;
  onProgress?(p: DownloadProgress): void;
  /** Checked between pages: an aborted download stops after storing the page in flight. */
  signal?: AbortSignal;
}

/** The download was asked to stop (Ctrl-C); what it stored stays stored. */
export class DownloadInterrupted extends Error {
  override name = 'DownloadInterrupted';
  constructor(readonly report: DownloadReport) {
    super(`download of ${report.exchange} ${report.symbol} ${report.timeframe} interrupted after ${report.inserted} new candle(s)`);
  }
}

/** The end of the last candle closed at `nowMs`: candles opening before it have closed. */
export function closedUntil(nowMs: number, timeframeMs: number): number {
  return alignDown(nowMs, timeframeMs);
}

export async function downloadCandles(deps: DownloadDeps, req: DownloadRequest, opts: DownloadOptions): Promise<DownloadReport> {
  const { store, source } = deps;
  const { exchange, symbol, timeframe } = req;
  const tfMs = timeframeToMs(timeframe);
  const now = (deps.now ?? Date.now)();
  const until = Math.min(req.until ?? Infinity, closedUntil(now, tfMs));
  const since = req.since;
  const report: DownloadReport = {
    exchange, symbol, timeframe, since, until, missingBefore: 0, requests: 0, received: 0, inserted: 0, unchanged: 0, conflicts: [], rejected: [], stillMissing: [],
  };
  if (!(Number.isInteger(opts.pageSize) && opts.pageSize > 0)) throw new RangeError(`page size must be a positive integer, got ${opts.pageSize}`);
  if (since >= until) return report;

  const missing = await store.missing(exchange, symbol, timeframe, { since, until });
  const progress: DownloadProgress = { symbol, done: 0, total: missing.reduce((n, r) => n + candleSlots(r, tfMs), 0), inserted: 0 };
  report.missingBefore = progress.total;
  opts.onProgress?.({ ...progress });

  const ask = async (from: number | undefined, limit: number): Promise<Candle[]> => {
    report.requests++;
    return source.fetchCandles(symbol, timeframe, from, limit);
  };
  const advance = (from: number, to: number) => {
    progress.done += candleSlots({ from, to }, tfMs);
    progress.inserted = report.inserted;
    opts.onProgress?.({ ...progress });
  };

  for (const range of missing) {
    let cursor = range.from;
    while (cursor < range.to) {
      if (opts.signal?.aborted) throw new DownloadInterrupted(report);
      const want = Math.max(1, Math.min(opts.pageSize, candleSlots({ from: cursor, to: range.to }, tfMs)));
      const page = (await ask(cursor, want)).filter((c) => c.timestamp >= cursor && c.timestamp < range.to);
      report.received += page.length;
      if (page.length === 0) {
        // Nothing from the cursor on. Either the market has no later candle at all (delisted,
        // or we reached now), or the venue answers by time window (from + limit candles) and
        // this window is an outage: the newest candle tells which.
        const [newest] = await ask(undefined, 1);
        const end = newest && newest.timestamp >= cursor ? Math.min(range.to, cursor + want * tfMs) : range.to;
        await store.upsert(exchange, symbol, timeframe, [], { fetched: [{ from: cursor, to: end }] });
        advance(cursor, end);
        cursor = end;
        continue;
      }
      const { candles, rejected } = storableCandles(page, tfMs, now);
      const end = page[page.length - 1].timestamp + tfMs;
      // The page answered for [cursor, end), except the slots of candles kept out: those are asked for again next time.
      const fetched = subtractRanges([{ from: cursor, to: end }], rejected.map((i) => ({ from: i.timestamp, to: i.timestamp + tfMs })));
      const r = await store.upsert(exchange, symbol, timeframe, candles, { fetched });
      report.inserted += r.inserted;
      report.unchanged += r.unchanged;
      report.conflicts.push(...r.conflicts);
      report.rejected.push(...rejected);
      for (const c of r.conflicts) {
        deps.log?.warn({ exchange, symbol, timeframe, openTime: new Date(c.timestamp).toISOString(), stored: c.stored, offered: c.offered }, 'the exchange reports a stored candle differently; the stored one is kept');
      }
      if (rejected.length > 0) deps.log?.warn({ exchange, symbol, timeframe, rejected: rejected.map((i) => `${i.kind}: ${i.message}`) }, 'candles kept out of the store');
      advance(cursor, end);
      cursor = end;
    }
  }
  report.stillMissing = await store.missing(exchange, symbol, timeframe, { since, until });
  return report;
}

/**
 * Candles of [since, until) from the store, after downloading what it lacks: what training and
 * a scheduled retrain read, so they always train on the latest closed candles.
 */
export async function candlesWithDownload(deps: DownloadDeps, req: DownloadRequest, opts: DownloadOptions): Promise<{ candles: Candle[]; report: DownloadReport }> {
  const report = await downloadCandles(deps, req, opts);
  const candles = await deps.store.candles(req.exchange, req.symbol, req.timeframe, { since: report.since, until: report.until });
  return { candles, report };
}

/** The most recent `days` of closed candles, downloading what is missing first. */
export async function recentCandles(
  deps: DownloadDeps,
  req: { exchange: string; symbol: string; timeframe: string; days: number },
  opts: DownloadOptions,
): Promise<{ candles: Candle[]; report: DownloadReport }> {
  if (!(req.days > 0)) throw new RangeError(`a window of ${req.days} days`);
  const tfMs = timeframeToMs(req.timeframe);
  const until = closedUntil((deps.now ?? Date.now)(), tfMs);
  const since = alignDown(until - req.days * 86_400_000, tfMs);
  return candlesWithDownload(deps, { ...req, since, until }, opts);
}

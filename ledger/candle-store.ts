import type postgres from 'postgres';
import { z } from 'zod';
import { transaction } from '../infra/transaction';
import { MarketSymbol, timeframeToMs, type Candle } from '../lib/candles';
import { candleSlots, mergeRanges, subtractRanges, type TimeRange } from '../lib/candle-ranges';
import { BacktestInputError, type BacktestSeries } from '../lib/backtest/simulate';

/**
 * The candle store: closed candles per exchange, symbol and timeframe in the ledger database
 * (tables `candles` and `candle_coverage`), written by `trader data download` and by the live
 * trading loop, read by backtests, replays, features and training.
 *
 * A stored candle is final. Writing a candle that is already there with the same values changes
 * nothing; with different values, the stored one is kept and the difference is returned as a
 * conflict for the caller to report. A closed candle does not change on a sound exchange, and
 * decisions and backtests were made on the stored values: replacing them silently would make
 * yesterday's backtest unreproducible. (Only closed candles may be written; the caller drops the
 * forming one, see activities/market-data/download.ts.)
 *
 * Besides candles, the store keeps the spans it has downloaded (`fetched`): inside such a span,
 * a missing candle is the exchange's own gap and is not asked for again. Times are epoch ms of
 * candle OPEN times; ranges are [since, until).
 */

export interface CandleConflict {
  timestamp: number;
  stored: Candle;
  offered: Candle;
}

export interface CandleUpsertResult {
  inserted: number;
  /** Already stored with the same values. */
  unchanged: number;
  /** Already stored with other values: the stored candle was kept. */
  conflicts: CandleConflict[];
}

export interface CandleRange {
  /** Open time, inclusive. */
  since?: number;
  /** Open time, exclusive. */
  until?: number;
}

export interface CandleGap extends TimeRange {
  /** Candles missing in the gap. */
  missing: number;
  /** True when the whole gap was downloaded and the exchange had nothing there (an outage); false when never asked. */
  exchangeHasNone: boolean;
}

export interface SeriesCoverage {
  exchange: string;
  symbol: string;
  timeframe: string;
  candles: number;
  /** Open time of the first and last stored candle (null when only empty spans were fetched). */
  first: number | null;
  last: number | null;
  /** Holes between the first and the last candle. */
  gaps: CandleGap[];
  /** Spans downloaded from the exchange. */
  fetched: TimeRange[];
}

/** Series of the store chosen together: the same range of one timeframe for several symbols. */
export const CandleSelection = z.object({
  exchange: z.string().regex(/^[a-z0-9]+$/),
  symbols: z.array(z.string().min(1)).min(1),
  timeframe: z.string().min(1),
  /** Open times: since inclusive, until exclusive. */
  since: z.number().int(),
  until: z.number().int(),
});
export type CandleSelection = z.infer<typeof CandleSelection>;

export class CandleStoreError extends Error {
  override name = 'CandleStoreError';
}

/** Timeframes whose grid is the multiples of their length since the epoch (see lib/candle-ranges.ts). */
const MAX_TIMEFRAME_MS = 86_400_000;
const EXCHANGE_ID = /^[a-z0-9]+$/;
/** Rows per statement: 6 arrays of this many values stay far below PostgreSQL's parameter limits. */
const CHUNK = 5_000;
/** First key of pg_advisory_xact_lock(int, int): per-series serialization of coverage merges. */
const COVERAGE_LOCK_NS = 7_361_003;

type Row = Record<string, unknown>;

export class CandleStore {
  constructor(readonly sql: postgres.Sql) {}

  /**
   * Writes closed candles, and with `fetched` the spans they were downloaded for, in one
   * transaction: a download interrupted at any point leaves either a whole page or nothing.
   */
  async upsert(exchange: string, symbol: string, timeframe: string, candles: readonly Candle[], opts: { fetched?: readonly TimeRange[] } = {}): Promise<CandleUpsertResult> {
    const tfMs = checkSeries(exchange, symbol, timeframe);
    const sorted = [...candles].sort((a, b) => a.timestamp - b.timestamp);
    for (let i = 0; i < sorted.length; i++) {
      checkCandle(sorted[i], tfMs, `${exchange} ${symbol} ${timeframe}`);
      if (i > 0 && sorted[i].timestamp === sorted[i - 1].timestamp) {
        throw new CandleStoreError(`${exchange} ${symbol} ${timeframe}: candle ${iso(sorted[i].timestamp)} given twice in one write`);
      }
    }
    const result: CandleUpsertResult = { inserted: 0, unchanged: 0, conflicts: [] };
    await transaction(this.sql, async (tx) => {
      for (let i = 0; i < sorted.length; i += CHUNK) {
        const part = await insertChunk(tx, exchange, symbol, timeframe, sorted.slice(i, i + CHUNK));
        result.inserted += part.inserted;
        result.unchanged += part.unchanged;
        result.conflicts.push(...part.conflicts);
      }
      if (opts.fetched && opts.fetched.length > 0) await addFetched(tx, exchange, symbol, timeframe, opts.fetched);
    });
    return result;
  }

  /** Stored candles of a series in [since, until), ascending. */
  async candles(exchange: string, symbol: string, timeframe: string, range: CandleRange = {}): Promise<Candle[]> {
    checkSeries(exchange, symbol, timeframe);
    const rows = await this.sql<Row[]>`
      select open_time, open::float8 as open, high::float8 as high, low::float8 as low, close::float8 as close, volume::float8 as volume
      from candles
      where exchange = ${exchange} and symbol = ${symbol} and timeframe = ${timeframe}
        ${range.since !== undefined ? this.sql`and open_time >= ${new Date(range.since)}` : this.sql``}
        ${range.until !== undefined ? this.sql`and open_time < ${new Date(range.until)}` : this.sql``}
      order by open_time`;
    return rows.map((r) => ({
      timestamp: (r.open_time as Date).getTime(),
      open: r.open as number,
      high: r.high as number,
      low: r.low as number,
      close: r.close as number,
      volume: r.volume as number,
    }));
  }

  /** The candles of each symbol of a selection, in the selection's order. */
  async select(sel: CandleSelection): Promise<Array<{ symbol: string; candles: Candle[] }>> {
    const out: Array<{ symbol: string; candles: Candle[] }> = [];
    for (const symbol of sel.symbols) out.push({ symbol, candles: await this.candles(sel.exchange, symbol, sel.timeframe, { since: sel.since, until: sel.until }) });
    return out;
  }

  /** Runs of consecutive stored candles in [since, until), as spans [first open, last open + timeframe). */
  async runs(exchange: string, symbol: string, timeframe: string, range: CandleRange = {}): Promise<TimeRange[]> {
    const tfMs = checkSeries(exchange, symbol, timeframe);
    // Gaps and islands: on a series without holes, open time minus rank * timeframe is constant.
    const rows = await this.sql<{ first: Date; last: Date }[]>`
      select min(open_time) as first, max(open_time) as last
      from (
        select open_time, (extract(epoch from open_time) * 1000)::bigint - (row_number() over (order by open_time)) * ${tfMs}::bigint as run
        from candles
        where exchange = ${exchange} and symbol = ${symbol} and timeframe = ${timeframe}
          ${range.since !== undefined ? this.sql`and open_time >= ${new Date(range.since)}` : this.sql``}
          ${range.until !== undefined ? this.sql`and open_time < ${new Date(range.until)}` : this.sql``}
      ) t
      group by run
      order by first`;
    return rows.map((r) => ({ from: r.first.getTime(), to: r.last.getTime() + tfMs }));
  }

  /** Spans downloaded from the exchange that meet [since, until), clipped to it. */
  async fetched(exchange: string, symbol: string, timeframe: string, range: CandleRange = {}): Promise<TimeRange[]> {
    checkSeries(exchange, symbol, timeframe);
    const rows = await this.sql<{ from_time: Date; to_time: Date }[]>`
      select from_time, to_time from candle_coverage
      where exchange = ${exchange} and symbol = ${symbol} and timeframe = ${timeframe}
        ${range.until !== undefined ? this.sql`and from_time < ${new Date(range.until)}` : this.sql``}
        ${range.since !== undefined ? this.sql`and to_time > ${new Date(range.since)}` : this.sql``}
      order by from_time`;
    return rows.map((r) => ({
      from: Math.max(r.from_time.getTime(), range.since ?? -Infinity),
      to: Math.min(r.to_time.getTime(), range.until ?? Infinity),
    }));
  }

  /** The parts of [since, until) holding neither a stored candle nor a downloaded span: what a download still has to ask for. */
  async missing(exchange: string, symbol: string, timeframe: string, range: Required<CandleRange>): Promise<TimeRange[]> {
    const [runs, fetched] = await Promise.all([this.runs(exchange, symbol, timeframe, range), this.fetched(exchange, symbol, timeframe, range)]);
    return subtractRanges([{ from: range.since, to: range.until }], [...runs, ...fetched]);
  }

  /** Every stored series (or those matching the filter), with its extent, gaps and downloaded spans. */
  async coverage(filter: { exchange?: string; symbols?: string[]; timeframe?: string } = {}): Promise<SeriesCoverage[]> {
    const where = this.sql`
      where true
        ${filter.exchange ? this.sql`and exchange = ${filter.exchange}` : this.sql``}
        ${filter.symbols && filter.symbols.length > 0 ? this.sql`and symbol = any(${filter.symbols})` : this.sql``}
        ${filter.timeframe ? this.sql`and timeframe = ${filter.timeframe}` : this.sql``}`;
    const series = await this.sql<{ exchange: string; symbol: string; timeframe: string; candles: number; first: Date | null; last: Date | null }[]>`
      select s.exchange, s.symbol, s.timeframe, coalesce(c.n, 0)::int as candles, c.first, c.last
      from (select exchange, symbol, timeframe from candles ${where} group by 1, 2, 3
            union select exchange, symbol, timeframe from candle_coverage ${where}) s
      left join lateral (
        select count(*) as n, min(open_time) as first, max(open_time) as last from candles c
        where (c.exchange, c.symbol, c.timeframe) = (s.exchange, s.symbol, s.timeframe)
      ) c on true
      order by s.exchange, s.symbol, s.timeframe`;
    const out: SeriesCoverage[] = [];
    for (const s of series) {
      const tfMs = timeframeToMs(s.timeframe);
      const [runs, fetched] = await Promise.all([this.runs(s.exchange, s.symbol, s.timeframe), this.fetched(s.exchange, s.symbol, s.timeframe)]);
      const gaps: CandleGap[] = [];
      for (let i = 1; i < runs.length; i++) {
        const hole = { from: runs[i - 1].to, to: runs[i].from };
        gaps.push({ ...hole, missing: candleSlots(hole, tfMs), exchangeHasNone: subtractRanges([hole], fetched).length === 0 });
      }
      out.push({
        exchange: s.exchange,
        symbol: s.symbol,
        timeframe: s.timeframe,
        candles: s.candles,
        first: s.first ? s.first.getTime() : null,
        last: s.last ? s.last.getTime() : null,
        gaps,
        fetched: mergeRanges(fetched),
      });
    }
    return out;
  }
}

/** The timeframe's length; throws CandleStoreError for a series the store cannot hold. */
function checkSeries(exchange: string, symbol: string, timeframe: string): number {
  if (!EXCHANGE_ID.test(exchange)) throw new CandleStoreError(`exchange '${exchange}': expected a ccxt exchange id (lowercase letters and digits)`);
  const sym = MarketSymbol.safeParse(symbol);
  if (!sym.success) throw new CandleStoreError(`symbol '${symbol}': ${sym.error.issues[0]?.message}`);
  let tfMs: number;
  try {
    tfMs = timeframeToMs(timeframe);
  } catch (err) {
    throw new CandleStoreError((err as Error).message);
  }
  if (tfMs > MAX_TIMEFRAME_MS) throw new CandleStoreError(`timeframe ${timeframe}: the store holds timeframes up to 1d (longer candles do not open on a fixed grid)`);
  return tfMs;
}

function checkCandle(c: Candle, tfMs: number, series: string): void {
  const at = `${series}: candle ${iso(c.timestamp)}`;
  if (!Number.isSafeInteger(c.timestamp) || c.timestamp % tfMs !== 0) throw new CandleStoreError(`${at}: open time ${c.timestamp} is not on the timeframe's grid`);
  if (![c.open, c.high, c.low, c.close, c.volume].every(Number.isFinite)) throw new CandleStoreError(`${at}: a value is not finite`);
  if (c.open <= 0 || c.low <= 0 || c.close <= 0 || c.volume < 0) throw new CandleStoreError(`${at}: a price <= 0 or a negative volume`);
  if (c.high < Math.max(c.open, c.close, c.low) || c.low > Math.min(c.open, c.close)) throw new CandleStoreError(`${at}: high/low do not contain open and close`);
}

async function insertChunk(tx: postgres.TransactionSql, exchange: string, symbol: string, timeframe: string, candles: Candle[]): Promise<CandleUpsertResult> {
  const col = (f: (c: Candle) => number) => candles.map((c) => String(f(c)));
  // The main query reads the snapshot from before the insert: `stored` is what was there already.
  const rows = await tx<Row[]>`
    with input as (
      select * from unnest(${candles.map((c) => new Date(c.timestamp).toISOString())}::timestamptz[],
                           ${col((c) => c.open)}::numeric[], ${col((c) => c.high)}::numeric[], ${col((c) => c.low)}::numeric[],
                           ${col((c) => c.close)}::numeric[], ${col((c) => c.volume)}::numeric[])
        as i(open_time, open, high, low, close, volume)
    ), inserted as (
      insert into candles (exchange, symbol, timeframe, open_time, open, high, low, close, volume)
      select ${exchange}, ${symbol}, ${timeframe}, open_time, open, high, low, close, volume from input
      on conflict (exchange, symbol, timeframe, open_time) do nothing
      returning open_time
    )
    select i.open_time, s.open_time is not null as was_stored,
           (s.open, s.high, s.low, s.close, s.volume) = (i.open, i.high, i.low, i.close, i.volume) as same,
           s.open::float8 as open, s.high::float8 as high, s.low::float8 as low, s.close::float8 as close, s.volume::float8 as volume,
           (select count(*) from inserted)::int as inserted
    from input i
    left join candles s on (s.exchange, s.symbol, s.timeframe, s.open_time) = (${exchange}, ${symbol}, ${timeframe}, i.open_time)
    order by i.open_time`;
  const result: CandleUpsertResult = { inserted: rows.length > 0 ? (rows[0].inserted as number) : 0, unchanged: 0, conflicts: [] };
  rows.forEach((r, i) => {
    if (!r.was_stored) return;
    if (r.same) {
      result.unchanged++;
      return;
    }
    const stored = { timestamp: candles[i].timestamp, open: r.open as number, high: r.high as number, low: r.low as number, close: r.close as number, volume: r.volume as number };
    result.conflicts.push({ timestamp: candles[i].timestamp, stored, offered: candles[i] });
  });
  return result;
}

async function addFetched(tx: postgres.TransactionSql, exchange: string, symbol: string, timeframe: string, spans: readonly TimeRange[]): Promise<void> {
  const added = mergeRanges(spans);
  if (added.length === 0) return;
  await tx`select pg_advisory_xact_lock(${COVERAGE_LOCK_NS}, hashtext(${`${exchange} ${symbol} ${timeframe}`}))`;
  const lo = new Date(added[0].from);
  const hi = new Date(added[added.length - 1].to);
  // Every stored span meeting [lo, hi] (touching counts) is replaced by the union.
  const old = await tx<{ from_time: Date; to_time: Date }[]>`
    delete from candle_coverage
    where exchange = ${exchange} and symbol = ${symbol} and timeframe = ${timeframe} and from_time <= ${hi} and to_time >= ${lo}
    returning from_time, to_time`;
  const merged = mergeRanges([...added, ...old.map((r) => ({ from: r.from_time.getTime(), to: r.to_time.getTime() }))]);
  for (const m of merged) {
    await tx`insert into candle_coverage (exchange, symbol, timeframe, from_time, to_time) values (${exchange}, ${symbol}, ${timeframe}, ${new Date(m.from)}, ${new Date(m.to)})`;
  }
}

const iso = (ms: number) => (Number.isFinite(ms) ? new Date(ms).toISOString() : String(ms));

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

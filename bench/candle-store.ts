import fs from 'node:fs';
import path from 'node:path';
import { readCandleCsv } from '../infra/candle-files';
import { createLogger } from '../infra/logger';
import { CandleStore } from '../ledger/candle-store';
import { downloadCandles } from '../activities/market-data';
import { createMarketDataExchange } from '../activities/market-data/exchange';
import { ExchangeResilience } from '../activities/exchange/resilience';
import { alignDown } from '../lib/candle-ranges';
import type { Candle } from '../lib/candles';
import { freshDatabase, stopTestServer } from '../testkit/db';
import { ExchangeStandin } from '../testkit/exchange-standin';
import { sampledMarketCandles } from '../testkit/candles';

/**
 * The candle store on a real embedded PostgreSQL: writing a long series page by page as a
 * download does (1,000 candles per transaction, with the downloaded span), reading it back
 * whole, the "what is missing" query over its whole range, and a whole download through the
 * real ccxt client from the local exchange stand-in (HTTP on loopback: the store and ccxt's
 * parsing, not a network). No speed goal was set; the figures say what training and replays
 * can expect when they read years of candles.
 *
 *   npm run bench -- candle-store [file.csv]     (default: binance BTC/USDT 5m from ../shared/data, 65,742 candles; else 50,000 generated hours)
 */

const DATA = process.env.SHARED_DATA_DIR ?? path.join(__dirname, '..', '..', 'shared', 'data');
const file = process.argv[2] ?? path.join(DATA, 'ohlcv', 'binance_BTC-USDT_5m.csv');
const H = 3_600_000;
const PAGE = 1000;

const msSince = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e6;

async function main(): Promise<void> {
  let candles: Candle[];
  let label: string;
  let series = { exchange: 'binance', symbol: 'BTC/USDT', timeframe: '1h', tfMs: H };
  if (fs.existsSync(file)) {
    const f = readCandleCsv(file);
    candles = f.candles.filter((c, i, a) => i === 0 || c.timestamp > a[i - 1].timestamp);
    label = path.basename(file);
    series = { exchange: f.exchange, symbol: f.symbol, timeframe: f.timeframe, tfMs: f.timeframeMs };
  } else {
    candles = sampledMarketCandles('BTC/USDT', H, Date.UTC(2018, 0, 1), 50_000);
    label = '50,000 generated hourly candles';
  }
  const n = candles.length;
  const db = await freshDatabase();
  try {
    const store = new CandleStore(db.sql);
    let t = process.hrtime.bigint();
    for (let i = 0; i < n; i += PAGE) {
      const page = candles.slice(i, i + PAGE);
      await store.upsert(series.exchange, series.symbol, series.timeframe, page, { fetched: [{ from: page[0].timestamp, to: page[page.length - 1].timestamp + series.tfMs }] });
    }
    const writeMs = msSince(t);

    t = process.hrtime.bigint();
    const back = await store.candles(series.exchange, series.symbol, series.timeframe);
    const readMs = msSince(t);
    if (back.length !== n) throw new Error(`read ${back.length} of ${n}`);

    t = process.hrtime.bigint();
    const missing = await store.missing(series.exchange, series.symbol, series.timeframe, { since: candles[0].timestamp, until: candles[n - 1].timestamp + series.tfMs });
    const missingMs = msSince(t);

    // A download of 20,000 hours from the stand-in, pages of 1,000.
    const end = alignDown(Date.now(), H);
    const served = sampledMarketCandles('ETH/USDT', H, end - 20_000 * H, 20_001);
    const standin = await ExchangeStandin.start({ markets: [{ candles: served, symbol: 'ETH/USDT', timeframe: '1h' }], now: Date.now() });
    const silent = createLogger({ level: 'silent' });
    const adapter = createMarketDataExchange({ id: 'binance', apiUrl: standin.url }, { resilience: new ExchangeResilience('bench', {}, silent), log: silent });
    t = process.hrtime.bigint();
    const report = await downloadCandles({ store, source: adapter }, { exchange: 'binance', symbol: 'ETH/USDT', timeframe: '1h', since: end - 20_000 * H, until: end }, { pageSize: 1000 });
    const downloadMs = msSince(t);
    await standin.close();
    if (report.inserted !== 20_000) throw new Error(`downloaded ${report.inserted}`);

    const figures = {
      candles: n,
      write_candles_per_s: Math.round(n / (writeMs / 1000)),
      read_all_ms: Math.round(readMs),
      missing_query_ms: Math.round(missingMs * 10) / 10,
      download_candles_per_s: Math.round(20_000 / (downloadMs / 1000)),
      download_requests: report.requests,
    };
    console.log(`candle store over ${label} (${n} candles), embedded PostgreSQL, ${PAGE} candles per transaction`);
    console.log(`  write:    ${(writeMs / 1000).toFixed(2)} s, ${figures.write_candles_per_s} candles/s`);
    console.log(`  read all: ${figures.read_all_ms} ms`);
    console.log(`  missing:  ${figures.missing_query_ms} ms over the whole range, ${missing.length} missing span(s)`);
    console.log(`  download: 20,000 hourly candles from the local stand-in through ccxt in ${report.requests} requests, ${(downloadMs / 1000).toFixed(2)} s, ${figures.download_candles_per_s} candles/s`);
    console.log(`reproduce: npm run bench -- candle-store ${process.argv[2] ?? ''}`.trimEnd());
    console.log(JSON.stringify(figures));
  } finally {
    await db.drop();
    await stopTestServer();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});

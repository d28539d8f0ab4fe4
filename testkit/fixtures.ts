import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Prng } from '../lib/random';
import type { Candle } from '../lib/candles';
import { randomWalkCandles, writeCandleFile, type RandomWalkOptions } from './candles';

/**
 * The one place tests get candle files from, so `npm test` needs nothing outside the repository
 * (test/fixtures/ohlcv/README.md says where each series comes from):
 *
 * - `binanceusdm_BTC-USDT_1h.csv`: real hourly BTC (all of 2020, unchanged rows of an Apache-2.0
 *   source), committed under test/fixtures/ohlcv.
 * - `fixture_BTC-USDT_1h.csv`: the same rows under the exchange label `fixture`, so that a file
 *   name gives the plain symbol `BTC/USDT` (a `binanceusdm` name gives the perpetual's
 *   `BTC/USDT:USDT`) for the tests that trade BTC/USDT on a spot-like replay venue.
 * - `synthetic_*`: seeded random walks (randomWalkCandles, testkit/candles.ts), generated on first
 *   ask into one temporary directory per test process: the second symbols of multi-symbol tests
 *   (aligned with the BTC hours), 5m and 1m series, small-priced pairs, a series with a gap and an
 *   illiquid one with flat zero-volume candles. The recorded files those tests once read come
 *   from GPL-3.0 repositories and cannot ship in this MIT repository.
 */

export const FIXTURE_OHLCV_DIR = path.resolve(__dirname, '..', 'test', 'fixtures', 'ohlcv');

const BTC_FILE = 'binanceusdm_BTC-USDT_1h.csv';
/** First candle of the committed BTC slice (2020-01-01T00:00Z): synthetic 1h series start there too. */
export const FIXTURE_BTC_START = Date.UTC(2020, 0, 1);
const JAN_2018 = Date.UTC(2018, 0, 10);

interface Generated {
  symbol: string;
  walk: RandomWalkOptions;
  /** Candle indexes [from, to) left out: a gap as an exchange outage leaves one. */
  gap?: [number, number];
  /** Share of candles replaced by a flat, zero-volume candle at the previous close (an illiquid market). */
  idleShare?: number;
}

const GENERATED: Record<string, Generated> = {
  'synthetic_ETH-USDT_1h.csv': { symbol: 'ETH/USDT', walk: { timeframe: '1h', count: 3000, seed: 2, start: FIXTURE_BTC_START, startPrice: 130 } },
  'synthetic_XRP-USDT_1h.csv': { symbol: 'XRP/USDT', walk: { timeframe: '1h', count: 1000, seed: 3, start: FIXTURE_BTC_START, startPrice: 0.19 } },
  // Wilder swings: 3 % per hour and steeper trends, as a meme coin moves.
  'synthetic_DOGE-USDT_1h.csv': { symbol: 'DOGE/USDT', walk: { timeframe: '1h', count: 3000, seed: 4, start: FIXTURE_BTC_START, startPrice: 0.002, volatility: 0.03, drift: 0.008 } },
  'synthetic_BTC-USDT_5m.csv': { symbol: 'BTC/USDT', walk: { timeframe: '5m', count: 6000, seed: 5, start: FIXTURE_BTC_START, startPrice: 7200, volatility: 0.003, drift: 0.001 } },
  'synthetic_ETH-USDT_5m.csv': { symbol: 'ETH/USDT', walk: { timeframe: '5m', count: 6000, seed: 6, start: FIXTURE_BTC_START, startPrice: 130, volatility: 0.004, drift: 0.001 } },
  'synthetic_ETH-BTC_5m.csv': { symbol: 'ETH/BTC', walk: { timeframe: '5m', count: 5760, seed: 7, start: JAN_2018, startPrice: 0.09, volatility: 0.003, drift: 0.001 } },
  'synthetic_LTC-BTC_5m.csv': { symbol: 'LTC/BTC', walk: { timeframe: '5m', count: 5760, seed: 8, start: JAN_2018, startPrice: 0.016, volatility: 0.003, drift: 0.001 } },
  // Prices around 5e-5 (float round-off territory) and 40 missing candles in one window.
  'synthetic_ADA-BTC_5m.csv': { symbol: 'ADA/BTC', walk: { timeframe: '5m', count: 5760, seed: 9, start: JAN_2018, startPrice: 0.00005, volatility: 0.004, drift: 0.001 }, gap: [1500, 1540] },
  'synthetic_XRP-ETH_5m.csv': { symbol: 'XRP/ETH', walk: { timeframe: '5m', count: 712, seed: 10, start: Date.UTC(2019, 9, 11), startPrice: 0.0015, volatility: 0.002, drift: 0.001 }, idleShare: 0.05 },
  'synthetic_XRP-ETH_1m.csv': { symbol: 'XRP/ETH', walk: { timeframe: '1m', count: 3560, seed: 11, start: Date.UTC(2019, 9, 11), startPrice: 0.0015, volatility: 0.001, drift: 0.0003 }, idleShare: 0.35 },
};

export type FixtureCandleFile = typeof BTC_FILE | 'fixture_BTC-USDT_1h.csv' | keyof typeof GENERATED;

export const FIXTURE_CANDLE_FILES: readonly string[] = [BTC_FILE, 'fixture_BTC-USDT_1h.csv', ...Object.keys(GENERATED)];

let generatedDir: string | undefined;

function generate(g: Generated): Candle[] {
  let candles = randomWalkCandles(g.walk);
  if (g.idleShare) {
    // A separate stream, so the walk itself stays the one randomWalkCandles gives for the seed.
    const rng = new Prng(g.walk.seed + 1_000_003);
    candles = candles.map((c, i) => {
      if (i === 0 || rng.next() >= g.idleShare!) return c;
      const p = candles[i - 1].close;
      return { timestamp: c.timestamp, open: p, high: p, low: p, close: p, volume: 0 };
    });
    // Each idle candle sits at the previous original close; the next candle opens from there.
    for (let i = 1; i < candles.length; i++) {
      if (candles[i].volume === 0 && candles[i - 1].volume === 0) {
        const p = candles[i - 1].close;
        candles[i] = { ...candles[i], open: p, high: p, low: p, close: p };
      }
    }
  }
  if (g.gap) candles = candles.filter((_, i) => i < g.gap![0] || i >= g.gap![1]);
  return candles;
}

/** The path of a fixture candle file (generated on first ask); an unknown name is an error listing the known ones. */
export function fixtureCandleFile(name: FixtureCandleFile | string): string {
  if (name === BTC_FILE) return path.join(FIXTURE_OHLCV_DIR, BTC_FILE);
  if (name !== 'fixture_BTC-USDT_1h.csv' && !(name in GENERATED)) {
    throw new Error(`no fixture candle file ${name}; known: ${FIXTURE_CANDLE_FILES.join(', ')}`);
  }
  if (!generatedDir) {
    generatedDir = fs.mkdtempSync(path.join(os.tmpdir(), 'dt-fixture-ohlcv-'));
    // Readable by the embedded PostgreSQL's user when tests run as root.
    fs.chmodSync(generatedDir, 0o755);
    const dir = generatedDir;
    process.once('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  }
  const file = path.join(generatedDir, name);
  if (fs.existsSync(file)) return file;
  if (name === 'fixture_BTC-USDT_1h.csv') {
    fs.copyFileSync(path.join(FIXTURE_OHLCV_DIR, BTC_FILE), file);
    fs.chmodSync(file, 0o644);
    return file;
  }
  const g = GENERATED[name];
  const written = writeCandleFile(generatedDir, { exchange: 'synthetic', symbol: g.symbol, timeframe: g.walk.timeframe }, generate(g));
  if (written !== file) throw new Error(`fixture ${name}: its symbol and timeframe name the file ${path.basename(written)}`);
  return file;
}

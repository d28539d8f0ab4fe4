import fs from 'node:fs';
import path from 'node:path';
import { candleFileName, formatCandleCsv } from '../lib/candle-csv';
import { timeframeToMs, type Candle } from '../lib/candles';
import { BadSymbolError } from '../lib/exchange/errors';
import type { MarketDataSource } from '../lib/exchange/types';
import { Prng } from '../lib/random';

/**
 * Every candle series the tests and benchmarks generate, so they need no recorded data; the same
 * inputs give the same candles on any machine. Tests pin trade counts and PnL computed from these
 * series, and the fixture files are generated from seeds (the GENERATED table of
 * testkit/fixtures.ts, test/fixtures/ohlcv/README.md): a change to any generator below changes
 * those figures.
 *
 * - randomWalkCandles: a seeded log-price walk whose drift is redrawn every 72 candles by default
 *   (the `synthetic_*` fixture files, the metrics replay).
 * - regimeCandles: seeded regimes of hundreds of candles (up, down, flat) with momentum and
 *   volatility clusters, enough for models and walk-forward folds (the CLI's backtest, eval and
 *   report tests).
 * - flippingTrendCandles: a steady trend that reverses every 150-300 candles (a trend a PPO policy
 *   can learn to ride).
 * - SyntheticMarket: N made-up symbols of 1m candles on the wall clock, each candle a pure
 *   function of (symbol index, open time) (stand-ins, paper and live runs, load benchmarks);
 *   syntheticMarketCandles aggregates it to a longer timeframe, sampledMarketCandles samples one
 *   of its markets on a timeframe's grid.
 * - SineWaveMarket: one smooth price path on any timeframe down to seconds, on the wall clock.
 * - writeCandleFile: the one writer of the candle files tests and benchmarks generate.
 */

/** Rounds as a recorded file prints prices: 8 significant digits. */
const r = (x: number) => Number(x.toPrecision(8));

export interface RandomWalkOptions {
  seed: number;
  count: number;
  /** e.g. 1h */
  timeframe: string;
  /** Open time of the first candle (default 2024-01-01T00:00Z). */
  start?: number;
  startPrice?: number;
  /** Per-candle volatility of the log price (default 0.01). */
  volatility?: number;
  /** Scale of the drift drawn for each stretch (default 0.004). */
  drift?: number;
  /** Candles between drift redraws (default 72). */
  regimeEvery?: number;
}

/** A log-price walk with a drift redrawn every `regimeEvery` candles (trends up and down), so the rules and the bootstrap model both find entries and exits. */
export function randomWalkCandles(o: RandomWalkOptions): Candle[] {
  const tf = timeframeToMs(o.timeframe);
  const rng = new Prng(o.seed);
  const vol = o.volatility ?? 0.01;
  const driftScale = o.drift ?? 0.004;
  const every = o.regimeEvery ?? 72;
  const start = o.start ?? Date.UTC(2024, 0, 1);
  let price = o.startPrice ?? 100;
  let mu = 0;
  const out: Candle[] = [];
  for (let i = 0; i < o.count; i++) {
    if (i % every === 0) mu = (rng.next() - 0.4) * driftScale;
    const open = price;
    const close = open * Math.exp(mu + vol * rng.gaussian());
    const high = Math.max(open, close) * (1 + Math.abs(vol * rng.gaussian()) / 2);
    const low = Math.min(open, close) * (1 - Math.abs(vol * rng.gaussian()) / 2);
    out.push({ timestamp: start + i * tf, open: r(open), high: r(high), low: r(low), close: r(close), volume: r(1000 * (1 + rng.next())) });
    price = close;
  }
  return out;
}

export interface RegimeOptions {
  seed: number;
  count: number;
  /** Default 1h. */
  timeframe?: string;
  /** Open time of the first candle (default 2021-01-01T00:00Z). */
  start?: number;
  /** Default: drawn from the seed, 100 to 1000. */
  startPrice?: number;
  /** Per-candle volatility of the log price (default 0.008: hourly crypto). */
  volatility?: number;
}

/**
 * A log price whose drift switches between up, down and flat stretches (150-500 candles each),
 * with momentum in the returns and volatility clusters: trend-following rules enter and leave,
 * stops and targets fill, and a model finds something to fit.
 */
export function regimeCandles(o: RegimeOptions): Candle[] {
  const rng = new Prng(o.seed);
  const tf = timeframeToMs(o.timeframe ?? '1h');
  const start = o.start ?? Date.UTC(2021, 0, 1);
  const baseVol = o.volatility ?? 0.008;
  let price = o.startPrice ?? 100 * (1 + rng.next() * 9);
  let drift = 0;
  let left = 0;
  let prev = 0;
  let vol = baseVol;
  const out: Candle[] = [];
  for (let i = 0; i < o.count; i++) {
    if (left-- <= 0) {
      const u = rng.next();
      drift = u < 0.4 ? 0.0012 : u < 0.7 ? -0.0012 : 0;
      left = 150 + rng.int(0, 350);
    }
    vol = 0.97 * vol + 0.03 * baseVol * (0.5 + 1.5 * rng.next());
    const ret = drift + 0.15 * prev + vol * rng.gaussian();
    prev = ret;
    const open = price;
    const close = price * Math.exp(ret);
    const high = Math.max(open, close) * (1 + Math.abs(rng.gaussian()) * vol * 0.5);
    const low = Math.min(open, close) * (1 - Math.abs(rng.gaussian()) * vol * 0.5);
    out.push({ timestamp: start + i * tf, open: r(open), high: r(high), low: r(low), close: r(close), volume: r(1000 * Math.exp(rng.gaussian() * 0.5)) });
    price = close;
  }
  return out;
}

/** Hourly candles from 2020-09-13 whose drift (0.3 % per candle) flips sign every 150-300 candles: a trend a policy can learn to ride. Unrounded prices. */
export function flippingTrendCandles(count: number, seed: number): Candle[] {
  const rng = new Prng(seed);
  const out: Candle[] = [];
  let close = 100;
  let drift = 0.003;
  let left = 200;
  for (let i = 0; i < count; i++) {
    if (--left <= 0) {
      drift = -drift;
      left = rng.int(150, 300);
    }
    const open = close;
    close = open * Math.exp(drift + 0.004 * rng.gaussian());
    const high = Math.max(open, close) * (1 + 0.001 * rng.next());
    const low = Math.min(open, close) * (1 - 0.001 * rng.next());
    out.push({ timestamp: 1_600_000_000_000 + i * 3_600_000, open, high, low, close, volume: 100 + 10 * rng.next() });
  }
  return out;
}

const MINUTE = 60_000;

/** `SYN0001/USDT` ... : names for the SyntheticMarket's symbols. */
export function syntheticSymbols(n: number): string[] {
  if (!Number.isInteger(n) || n < 1 || n > 99_999) throw new RangeError(`synthetic symbols: 1..99999, got ${n}`);
  return Array.from({ length: n }, (_, i) => `SYN${String(i + 1).padStart(4, '0')}/USDT`);
}

/** murmur3's finaliser over two 32-bit words: a uniform number in [0, 1). */
function hash01(a: number, b: number, salt: number): number {
  let h = Math.imul(a ^ salt, 0x9e3779b1) ^ Math.imul(b + 0x7f4a7c15, 0x85ebca6b);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return (h >>> 0) / 4294967296;
}

interface Shape {
  index: number;
  base: number;
  p1: number;
  p2: number;
  f1: number;
  f2: number;
}

/**
 * Deterministic 1m candles for made-up symbols on the wall clock, for load tests where no recorded
 * data has enough symbols. Each candle is a pure function of (the symbol's index in `symbols`,
 * open time), so any window can be asked in any order and every process sees the same market;
 * open = the previous close, so series have no gaps or jumps.
 *
 * The log price is two slow waves (hours, then tens of minutes; period and phase per symbol) plus
 * bounded per-minute noise: trends that the rules strategy sometimes enters and leaves, so a run
 * places orders, fills stops and targets, and exercises the whole decision path.
 */
export class SyntheticMarket implements MarketDataSource {
  private readonly shapes = new Map<string, Shape>();

  constructor(
    readonly symbols: readonly string[],
    private readonly now: () => number = Date.now,
  ) {
    symbols.forEach((s, i) => {
      const u = (k: number) => hash01(i, k, 0x5eed);
      this.shapes.set(s, { index: i, base: 10 * Math.exp(6 * u(1)), p1: 240 + 240 * u(2), p2: 30 + 60 * u(3), f1: 2 * Math.PI * u(4), f2: 2 * Math.PI * u(5) });
    });
  }

  /** Price at the start of minute `m` (epoch minutes). */
  private price(shape: Shape, index: number, m: number): number {
    const wave = 0.03 * Math.sin((2 * Math.PI * m) / shape.p1 + shape.f1) + 0.008 * Math.sin((2 * Math.PI * m) / shape.p2 + shape.f2);
    const noise = 0.0015 * (2 * hash01(index, m, 0xa11ce) - 1);
    return shape.base * Math.exp(wave + noise);
  }

  /** The 1m candle that opens in the minute of `openMs`. */
  candle(symbol: string, openMs: number): Candle {
    const shape = this.shapes.get(symbol);
    if (!shape) throw new BadSymbolError(`synthetic market has no ${symbol}`, { exchangeId: 'synthetic', operation: 'fetchCandles', symbol });
    const index = shape.index;
    const m = Math.floor(openMs / MINUTE);
    const open = this.price(shape, index, m);
    const close = this.price(shape, index, m + 1);
    const high = Math.max(open, close) * (1 + 0.001 * hash01(index, m, 0x4167));
    const low = Math.min(open, close) * (1 - 0.001 * hash01(index, m, 0x10e));
    return { timestamp: m * MINUTE, open: r(open), high: r(high), low: r(low), close: r(close), volume: r(100 + 900 * hash01(index, m, 0x7011)) };
  }

  async fetchCandles(symbol: string, timeframe: string, since?: number, limit?: number): Promise<Candle[]> {
    if (timeframe !== '1m') throw new BadSymbolError(`synthetic market: only 1m candles, asked ${timeframe}`, { exchangeId: 'synthetic', operation: 'fetchCandles', symbol });
    if (!this.shapes.has(symbol)) throw new BadSymbolError(`synthetic market has no ${symbol}`, { exchangeId: 'synthetic', operation: 'fetchCandles', symbol });
    // Closed only: open + 1m <= now.
    const lastOpen = Math.floor(this.now() / MINUTE) * MINUTE - MINUTE;
    const n = limit ?? (since === undefined ? 500 : 1000);
    const first = since === undefined ? lastOpen - (n - 1) * MINUTE : Math.ceil(since / MINUTE) * MINUTE;
    const out: Candle[] = [];
    for (let t = first; t <= lastOpen && out.length < n; t += MINUTE) out.push(this.candle(symbol, t));
    return out;
  }
}

/**
 * `count` candles of `timeframeMs` (a whole number of minutes) from `fromMs` (rounded down to the
 * timeframe), each aggregated from the market's 1m candles (open of the first, highest high,
 * lowest low, close of the last, summed volume): the same series whatever timeframe it is asked in.
 */
export function syntheticMarketCandles(market: SyntheticMarket, symbol: string, timeframeMs: number, fromMs: number, count: number): Candle[] {
  if (!Number.isInteger(timeframeMs / MINUTE) || timeframeMs < MINUTE) throw new RangeError(`synthetic candles: the timeframe must be whole minutes, got ${timeframeMs} ms`);
  const out: Candle[] = [];
  const start = Math.floor(fromMs / timeframeMs) * timeframeMs;
  for (let i = 0; i < count; i++) {
    const open = start + i * timeframeMs;
    const minutes = Array.from({ length: timeframeMs / MINUTE }, (_, k) => market.candle(symbol, open + k * MINUTE));
    out.push({
      timestamp: open,
      open: minutes[0].open,
      high: Math.max(...minutes.map((c) => c.high)),
      low: Math.min(...minutes.map((c) => c.low)),
      close: minutes[minutes.length - 1].close,
      volume: r(minutes.reduce((a, c) => a + c.volume, 0)),
    });
  }
  return out;
}

/**
 * `count` candles of market number `variant` of a SyntheticMarket under the name `symbol`, one
 * every `timeframeMs` from `firstOpen`: each is the 1m candle that opens then (not an aggregate).
 * On 1m the series is continuous (open = previous close) and trends enough for the rules strategy
 * to trade; on longer timeframes it samples the same prices. Different variants are different
 * markets.
 */
export function sampledMarketCandles(symbol: string, timeframeMs: number, firstOpen: number, count: number, variant = 0): Candle[] {
  const names = Array.from({ length: variant + 1 }, (_, i) => (i === variant ? symbol : `FILLER${i}/USDT`));
  const market = new SyntheticMarket(names);
  return Array.from({ length: count }, (_, i) => ({ ...market.candle(symbol, firstOpen + i * timeframeMs), timestamp: firstOpen + i * timeframeMs }));
}

/**
 * Market data that follows the clock on any timeframe, down to seconds (the SyntheticMarket only
 * has 1m): one price path for every symbol, two sine waves (so trends and turns happen), one
 * candle per timeframe slot, published once it has closed. Prices are not rounded.
 */
export class SineWaveMarket implements MarketDataSource {
  constructor(private readonly now: () => number) {}

  private candle(k: number, tf: number): Candle {
    const p = (i: number) => 100 * Math.exp(0.08 * Math.sin((2 * Math.PI * i) / 240) + 0.03 * Math.sin((2 * Math.PI * i) / 37));
    const open = p(k);
    const close = p(k + 1);
    return { timestamp: k * tf, open, close, high: Math.max(open, close) * 1.002, low: Math.min(open, close) * 0.998, volume: 10 + 5 * Math.sin(k) };
  }

  async fetchCandles(_symbol: string, timeframe: string, since?: number, limit = 1000): Promise<Candle[]> {
    const tf = timeframeToMs(timeframe);
    const last = Math.floor(this.now() / tf) - 1; // slot of the newest closed candle
    const first = since === undefined ? last - limit + 1 : Math.ceil(since / tf);
    const out: Candle[] = [];
    for (let k = first; k <= last && out.length < limit; k++) out.push(this.candle(k, tf));
    return out;
  }
}

/**
 * Writes `candles` as the shared CSV format to `<dir>/<exchange>_<BASE>-<QUOTE>_<timeframe>.csv`
 * (the name the CLI and the replay read the exchange, symbol and timeframe from), creating `dir`;
 * returns the file's path.
 */
export function writeCandleFile(dir: string, series: { exchange: string; symbol: string; timeframe: string }, candles: readonly Candle[]): string {
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, candleFileName(series.exchange, series.symbol, series.timeframe));
  // Readable by the embedded PostgreSQL's user when tests run as root.
  fs.writeFileSync(file, formatCandleCsv(candles), { mode: 0o644 });
  return file;
}

/**
 * Candle files of a SyntheticMarket of `symbols`, `count` candles of `timeframe` each from
 * `fromMs` (default 2024-01-01 UTC), named `synth_SYN0001-USDT_1h.csv` (or with the `exchange`
 * label given): replays and backtests read them like recorded files. Returns their paths, in the
 * order of `symbols`.
 */
export function writeSyntheticCandleFiles(dir: string, symbols: readonly string[], opts: { timeframe: string; count: number; fromMs?: number; exchange?: string }): string[] {
  const market = new SyntheticMarket(symbols);
  return symbols.map((symbol) =>
    writeCandleFile(dir, { exchange: opts.exchange ?? 'synth', symbol, timeframe: opts.timeframe }, syntheticMarketCandles(market, symbol, timeframeToMs(opts.timeframe), opts.fromMs ?? Date.UTC(2024, 0, 1), opts.count)),
  );
}

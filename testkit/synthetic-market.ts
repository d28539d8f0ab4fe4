import fs from 'node:fs';
import path from 'node:path';
import { timeframeToMs, type Candle } from '../lib/candles';
import type { MarketDataSource } from '../lib/exchange/types';
import { BadSymbolError } from '../lib/exchange/errors';

/**
 * Deterministic 1m candles for N made-up symbols on the wall clock, for load tests where no
 * recorded data has enough symbols: `SYN0001/USDT` ... Each candle is a pure function of
 * (symbol, open time), so any window can be asked in any order and every process sees the same
 * market; open = the previous close, so series have no gaps or jumps.
 *
 * The log price is two slow waves (hours, then tens of minutes; period and phase per symbol) plus
 * bounded per-minute noise: trends that the rules strategy sometimes enters and leaves, so a run
 * places orders, fills stops and targets, and exercises the whole decision path.
 */

const TF_MS = 60_000;

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

  candle(symbol: string, openMs: number): Candle {
    const shape = this.shapes.get(symbol);
    if (!shape) throw new BadSymbolError(`synthetic market has no ${symbol}`, { exchangeId: 'synthetic', operation: 'fetchCandles', symbol });
    const index = shape.index;
    const m = Math.floor(openMs / TF_MS);
    const open = this.price(shape, index, m);
    const close = this.price(shape, index, m + 1);
    const high = Math.max(open, close) * (1 + 0.001 * hash01(index, m, 0x4167));
    const low = Math.min(open, close) * (1 - 0.001 * hash01(index, m, 0x10e));
    const r = (x: number) => Number(x.toPrecision(8));
    return { timestamp: m * TF_MS, open: r(open), high: r(high), low: r(low), close: r(close), volume: r(100 + 900 * hash01(index, m, 0x7011)) };
  }

  async fetchCandles(symbol: string, timeframe: string, since?: number, limit?: number): Promise<Candle[]> {
    if (timeframe !== '1m') throw new BadSymbolError(`synthetic market: only 1m candles, asked ${timeframe}`, { exchangeId: 'synthetic', operation: 'fetchCandles', symbol });
    if (!this.shapes.has(symbol)) throw new BadSymbolError(`synthetic market has no ${symbol}`, { exchangeId: 'synthetic', operation: 'fetchCandles', symbol });
    // Closed only: open + 1m <= now.
    const lastOpen = Math.floor(this.now() / TF_MS) * TF_MS - TF_MS;
    const n = limit ?? (since === undefined ? 500 : 1000);
    const first = since === undefined ? lastOpen - (n - 1) * TF_MS : Math.ceil(since / TF_MS) * TF_MS;
    const out: Candle[] = [];
    for (let t = first; t <= lastOpen && out.length < n; t += TF_MS) out.push(this.candle(symbol, t));
    return out;
  }
}

/**
 * `count` candles of `timeframe` (a whole number of minutes) from `fromMs`, each aggregated from
 * the market's 1m candles (open of the first, highest high, lowest low, close of the last, summed
 * volume): the same series whatever timeframe it is asked in.
 */
export function syntheticCandles(market: SyntheticMarket, symbol: string, timeframeMs: number, fromMs: number, count: number): Candle[] {
  if (!Number.isInteger(timeframeMs / TF_MS) || timeframeMs < TF_MS) throw new RangeError(`synthetic candles: the timeframe must be whole minutes, got ${timeframeMs} ms`);
  const out: Candle[] = [];
  const start = Math.floor(fromMs / timeframeMs) * timeframeMs;
  for (let i = 0; i < count; i++) {
    const open = start + i * timeframeMs;
    const minutes = Array.from({ length: timeframeMs / TF_MS }, (_, k) => market.candle(symbol, open + k * TF_MS));
    const r = (x: number) => Number(x.toPrecision(8));
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
 * Candle files of `symbols` in the recorded-data format and naming (`synth_SYN0001-USDT_1h.csv`),
 * `count` candles each from 2024-01-01 UTC, under `dir`: replays and backtests read them like
 * recorded files. Returns their paths, in the order of `symbols`.
 */
export function writeSyntheticCandleFiles(dir: string, symbols: readonly string[], opts: { timeframe: string; count: number; fromMs?: number }): string[] {
  const market = new SyntheticMarket(symbols);
  fs.mkdirSync(dir, { recursive: true });
  return symbols.map((symbol) => {
    const rows = syntheticCandles(market, symbol, timeframeToMs(opts.timeframe), opts.fromMs ?? Date.UTC(2024, 0, 1), opts.count).map((c) => `${c.timestamp},${c.open},${c.high},${c.low},${c.close},${c.volume}`);
    const file = path.join(dir, `synth_${symbol.replace('/', '-')}_${opts.timeframe}.csv`);
    fs.writeFileSync(file, ['timestamp,open,high,low,close,volume', ...rows].join('\n') + '\n');
    return file;
  });
}

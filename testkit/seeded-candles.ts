import fs from 'node:fs';
import path from 'node:path';
import type { Candle } from '../lib/candles';
import { Prng } from '../lib/random';

/**
 * Seeded candles with regimes, for tests that need nothing outside the repository: a log price whose drift
 * switches between up, down and flat stretches (a few hundred candles each) with momentum in the
 * returns and volatility clusters, so trend-following rules enter and leave, stops and targets
 * fill, and a model finds something to fit. Same seed, same candles, on any machine.
 */
export interface SeededCandleOptions {
  seed: number;
  count: number;
  /** Open time of the first candle (default 2021-01-01T00:00Z). */
  start?: number;
  timeframeMs?: number;
  startPrice?: number;
  /** Per-candle volatility of the log price (default 0.008: hourly crypto). */
  volatility?: number;
}

export function seededCandles(o: SeededCandleOptions): Candle[] {
  const rng = new Prng(o.seed);
  const tf = o.timeframeMs ?? 3_600_000;
  const start = o.start ?? Date.UTC(2021, 0, 1);
  const baseVol = o.volatility ?? 0.008;
  let price = o.startPrice ?? 100 * (1 + rng.next() * 9);
  let drift = 0;
  let left = 0;
  let prev = 0;
  let vol = baseVol;
  const out: Candle[] = [];
  const r = (x: number) => Number(x.toPrecision(8));
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

/** Writes candles as `<dir>/<exchange>_<BASE>-<QUOTE>_<timeframe>.csv`, the name the CLI reads a symbol from. */
export function writeCandleFile(dir: string, symbol: string, candles: readonly Candle[], timeframe = '1h', exchange = 'binance'): string {
  const file = path.join(dir, `${exchange}_${symbol.replace('/', '-')}_${timeframe}.csv`);
  const lines = ['timestamp,open,high,low,close,volume', ...candles.map((c) => `${c.timestamp},${c.open},${c.high},${c.low},${c.close},${c.volume}`)];
  fs.writeFileSync(file, `${lines.join('\n')}\n`);
  return file;
}

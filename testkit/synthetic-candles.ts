import fs from 'node:fs';
import path from 'node:path';
import { Prng } from '../lib/random';
import type { Candle } from '../lib/candles';

/**
 * Seeded random-walk candles written as the shared CSV format, for tests that replay through the
 * real workflows with nothing outside the repository: a log-price walk with about 1 % per candle of volatility and a
 * drift redrawn every `regimeEvery` candles (trends up and down), so the rules and the bootstrap
 * model both find entries and exits. Same seed, same file.
 */

export interface SyntheticSeries {
  symbol: string;
  /** e.g. 1h */
  timeframe: string;
  rows: number;
  seed: number;
  start?: number;
  startPrice?: number;
  volatility?: number;
  drift?: number;
  regimeEvery?: number;
}

const TF_MS: Record<string, number> = { '1m': 60_000, '5m': 300_000, '15m': 900_000, '1h': 3_600_000, '4h': 14_400_000, '1d': 86_400_000 };

export function syntheticCandles(s: SyntheticSeries): Candle[] {
  const tf = TF_MS[s.timeframe];
  if (!tf) throw new Error(`synthetic candles: timeframe ${s.timeframe} not supported`);
  const rng = new Prng(s.seed);
  const vol = s.volatility ?? 0.01;
  const driftScale = s.drift ?? 0.004;
  const every = s.regimeEvery ?? 72;
  const start = s.start ?? Date.UTC(2024, 0, 1);
  const r = (x: number) => Number(x.toPrecision(8));
  let price = s.startPrice ?? 100;
  let mu = 0;
  const out: Candle[] = [];
  for (let i = 0; i < s.rows; i++) {
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

/** Writes `<dir>/synthetic_<BASE>-<QUOTE>_<tf>.csv` (the name tells the replay its symbol and timeframe). */
export function writeSyntheticCsv(dir: string, s: SyntheticSeries): string {
  const [base, quote] = s.symbol.split('/');
  const file = path.join(dir, `synthetic_${base}-${quote}_${s.timeframe}.csv`);
  const lines = ['timestamp,open,high,low,close,volume', ...syntheticCandles(s).map((c) => [c.timestamp, c.open, c.high, c.low, c.close, c.volume].join(','))];
  fs.writeFileSync(file, lines.join('\n') + '\n');
  return file;
}

import { z } from 'zod';

/**
 * One OHLCV candle. `timestamp` is the candle OPEN time in epoch milliseconds (UTC), as ccxt
 * and the recorded CSVs give it; `volume` is in the base asset. The schema checks shape only
 * (finite numbers, integer time): whether the values make sense as a candle (high >= low,
 * positive prices, no gaps) is candle-hygiene's job, so that bad rows are reported, not thrown.
 */
export const Candle = z.object({
  timestamp: z.number().int().nonnegative(),
  open: z.number(),
  high: z.number(),
  low: z.number(),
  close: z.number(),
  volume: z.number(),
});
export type Candle = z.infer<typeof Candle>;

/** A ccxt timeframe string: a positive count and a unit (s, m, h, d, w), e.g. '1m', '4h', '1d'. */
export const Timeframe = z
  .string()
  .regex(/^[1-9]\d*[smhdw]$/, "a timeframe is a count and a unit s, m, h, d or w, e.g. '1m', '5m', '1h', '4h', '1d', '1w'");
export type Timeframe = z.infer<typeof Timeframe>;

const UNIT_MS: Record<string, number> = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

export class TimeframeError extends Error {
  override name = 'TimeframeError';
}

/**
 * '5m' -> 300000. Months ('1M') and years are refused on purpose: they have no fixed length,
 * so gap detection and the closed-candle rule (open + tf <= now) would be wrong for them.
 */
export function timeframeToMs(timeframe: string): number {
  // Every candle step asks: a valid timeframe is parsed once (there are a handful), a bad one every time.
  const known = timeframes.get(timeframe);
  if (known !== undefined) return known;
  const parsed = Timeframe.safeParse(timeframe);
  if (!parsed.success) {
    const hint = /^\d+[My]$/.test(timeframe) ? ' (months and years have no fixed length and are not supported)' : '';
    throw new TimeframeError(`invalid timeframe '${timeframe}': ${parsed.error.issues[0]?.message ?? 'bad format'}${hint}`);
  }
  const ms = Number(timeframe.slice(0, -1)) * UNIT_MS[timeframe.slice(-1)];
  if (!Number.isSafeInteger(ms)) throw new TimeframeError(`invalid timeframe '${timeframe}': too long`);
  if (timeframes.size < 1_000) timeframes.set(timeframe, ms);
  return ms;
}

const timeframes = new Map<string, number>();

/** 300000 -> '5m' (the largest unit that divides evenly), for messages and file names. */
export function msToTimeframe(ms: number): string {
  for (const unit of ['w', 'd', 'h', 'm', 's']) {
    if (ms >= UNIT_MS[unit] && ms % UNIT_MS[unit] === 0) return `${ms / UNIT_MS[unit]}${unit}`;
  }
  return `${ms}ms`;
}

/** Unified market symbol as ccxt writes it: 'BTC/USDT', or 'BTC/USDT:USDT' for a linear perpetual. */
export const MarketSymbol = z
  .string()
  .regex(/^[A-Za-z0-9.]+\/[A-Za-z0-9.]+(:[A-Za-z0-9.]+)?$/, "a market symbol looks like 'BTC/USDT' (or 'BTC/USDT:USDT')");
export type MarketSymbol = z.infer<typeof MarketSymbol>;

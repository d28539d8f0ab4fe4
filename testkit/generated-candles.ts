import type { Candle } from '../lib/candles';
import { SyntheticMarket } from './synthetic-market';

/**
 * Generated candles for tests that must not need recorded data: deterministic (each candle is a
 * pure function of the variant and the open time, testkit/synthetic-market.ts), valid
 * OHLCV, on the timeframe's grid. On 1m the series is continuous (open = previous close) and
 * trends enough for the rules strategy to trade; on longer timeframes it samples the same prices.
 * Different `variant`s are different markets.
 */
export function generatedCandles(symbol: string, timeframeMs: number, firstOpen: number, count: number, variant = 0): Candle[] {
  const names = Array.from({ length: variant + 1 }, (_, i) => (i === variant ? symbol : `FILLER${i}/USDT`));
  const market = new SyntheticMarket(names);
  return Array.from({ length: count }, (_, i) => ({ ...market.candle(symbol, firstOpen + i * timeframeMs), timestamp: firstOpen + i * timeframeMs }));
}

import assert from 'node:assert/strict';
import { buyAndHoldCurve } from '../../../lib/backtest/buy-and-hold';

const H = 3_600_000;
const candle = (i: number, close: number) => ({ timestamp: i * H, open: close, high: close, low: close, close, volume: 1 });

describe('lib/backtest/buy-and-hold', () => {
  it('each share buys at its first decision close and rides its symbol; a late symbol is cash until it starts', () => {
    const a = { candles: [candle(0, 100), candle(1, 110), candle(2, 121), candle(3, 99)], timeframeMs: H, startTime: 0 };
    const b = { candles: [candle(2, 50), candle(3, 75)], timeframeMs: H, startTime: 2 * H };
    const curve = buyAndHoldCurve([H, 2 * H, 3 * H, 4 * H], [a, b], 1000);
    // 1h: A's first candle closed at 100 (its entry): 500, B is cash 500.
    // 2h: A at 110 -> 550. 3h: A at 121 -> 605; B's first candle (open 2h) closed at 50, its entry: 500.
    // 4h: A at 99 -> 495, B at 75 -> 750.
    assert.deepEqual(curve.map((p) => +p.equity.toFixed(9)), [1000, 1050, 1105, 1245]);
  });

  it('a symbol that never started stays cash; no symbols: flat', () => {
    const a = { candles: [candle(0, 100), candle(1, 200)], timeframeMs: H, startTime: null };
    assert.deepEqual(buyAndHoldCurve([H, 2 * H], [a], 1000).map((p) => p.equity), [1000, 1000]);
    assert.deepEqual(buyAndHoldCurve([5], [], 10), [{ time: 5, equity: 10 }]);
  });
});

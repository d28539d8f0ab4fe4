import assert from 'node:assert/strict';
import { tradeEquityCurve, tradeExposure } from '../../../lib/backtest/trade-equity';

const H = 3_600_000;
const candle = (i: number, close: number) => ({ timestamp: i * H, open: close, high: close, low: close, close, volume: 1 });

describe('lib/backtest/trade-equity', () => {
  const trades = [
    { symbol: 'A/USDT', qty: 2, entryTime: 1 * H, entryPrice: 100, exitTime: 3 * H, pnl: 18 },
    { symbol: 'B/USDT', qty: 1, entryTime: 2 * H, entryPrice: 50, exitTime: 4 * H, pnl: -5 },
  ];
  const times = [1 * H, 2 * H, 3 * H, 4 * H];

  it('realized PnL only without candles: steps at the exits', () => {
    assert.deepEqual(tradeEquityCurve(times, trades, 1000).map((p) => p.equity), [1000, 1000, 1018, 1013]);
  });

  it('with candles, open trades are marked at the last closed candle', () => {
    const a = { symbol: 'A/USDT', timeframeMs: H, candles: [candle(0, 100), candle(1, 105), candle(2, 110)] };
    const b = { symbol: 'B/USDT', timeframeMs: H, candles: [candle(1, 50), candle(2, 47)] };
    // 2h: A open, last closed candle (open 1h) at 105 -> +10; B opens at 2h, its last close (open 1h) 50 -> 0.
    // 3h: A closed (+18); B marked at 47 -> -3.
    assert.deepEqual(tradeEquityCurve(times, trades, 1000, [a, b]).map((p) => p.equity), [1000, 1010, 1015, 1013]);
  });

  it('exposure: share of symbol-times with a trade open', () => {
    // 1h: A; 2h: A, B; 3h: B; 4h: none -> 4 of 8
    assert.equal(tradeExposure(times, trades, ['A/USDT', 'B/USDT']), 0.5);
    assert.equal(tradeExposure([], trades, ['A/USDT']), 0);
  });
});

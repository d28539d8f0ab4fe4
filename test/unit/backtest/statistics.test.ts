import assert from 'node:assert/strict';
import { backtestStatistics } from '../../../lib/backtest/statistics';
import { YEAR_MS } from '../../../lib/backtest/metrics';

describe('lib/backtest/statistics', () => {
  it('puts every figure together from trades and the equity curve', () => {
    const D = 86_400_000;
    const t0 = Date.parse('2021-01-01T00:00:00Z');
    const trades = [
      { symbol: 'A/USDT', exitReason: 'take_profit', qty: 1, entryPrice: 100, pnl: 10, entryTime: t0, exitTime: t0 + D },
      { symbol: 'B/USDT', exitReason: 'stop_loss', qty: 1, entryPrice: 100, pnl: -5, entryTime: t0 + D, exitTime: t0 + 1.5 * D },
    ];
    const equity = [
      { time: t0, equity: 1000 },
      { time: t0 + D, equity: 1010 },
      { time: t0 + 2 * D, equity: 1005 },
      { time: t0 + YEAR_MS, equity: 1100 },
    ];
    const s = backtestStatistics({ trades, equity, symbolChanges: [0.2, null, 0.4] });
    assert.ok(Math.abs((s.cagr as number) - 0.1) < 1e-12);
    assert.ok(Math.abs((s.marketChange as number) - 0.3) < 1e-12, 'mean over the symbols that decided');
    assert.deepEqual([s.maxConsecutiveWins, s.maxConsecutiveLosses], [1, 1]);
    assert.equal(s.winnersAverageDurationMs, D);
    assert.equal(s.losersAverageDurationMs, D / 2);
    assert.equal(s.bestTrade?.symbol, 'A/USDT');
    assert.equal(s.worstTrade?.return, -0.05);
    assert.equal(s.bestDay?.day, '2022-01-01');
    assert.equal(s.worstDay?.day, '2021-01-03');
    assert.deepEqual(s.monthlyReturns.map((m) => m.period), ['2021-01', '2022-01']);
    assert.deepEqual(s.bySymbol.map((r) => r.key), ['A/USDT', 'B/USDT']);
    assert.deepEqual(s.byExitReason.map((r) => r.key), ['take_profit', 'stop_loss']);
  });

  it('an empty backtest gives nulls and empty tables, not a throw', () => {
    const s = backtestStatistics({ trades: [], equity: [{ time: 0, equity: 1000 }], symbolChanges: [] });
    assert.equal(s.cagr, null);
    assert.equal(s.bestTrade, null);
    assert.deepEqual(s.bySymbol, []);
  });
});

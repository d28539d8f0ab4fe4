import assert from 'node:assert/strict';
import { tradeBreakdown } from '../../../lib/backtest/breakdown';

describe('lib/backtest/breakdown', () => {
  const H = 3_600_000;
  const t = (symbol: string, exitReason: string, pnl: number, hours: number) => ({ symbol, exitReason, qty: 1, entryPrice: 100, pnl, entryTime: 0, exitTime: hours * H });
  const trades = [t('BTC/USDT', 'stop_loss', -2, 1), t('ETH/USDT', 'take_profit', 4, 3), t('BTC/USDT', 'take_profit', 4, 5), t('BTC/USDT', 'signal', 0, 3)];

  it('groups by symbol in first-seen order', () => {
    const rows = tradeBreakdown(trades, 'symbol');
    assert.deepEqual(rows.map((r) => r.key), ['BTC/USDT', 'ETH/USDT']);
    const btc = rows[0];
    assert.deepEqual([btc.trades, btc.wins, btc.losses, btc.totalPnl], [3, 1, 1, 2]);
    assert.ok(Math.abs(btc.winRate - 1 / 3) < 1e-12);
    assert.ok(Math.abs(btc.averageReturn - 0.02 / 3) < 1e-12);
    assert.ok(Math.abs(btc.sumOfReturns - 0.02) < 1e-12);
    assert.equal(btc.averageDurationMs, 3 * H);
  });

  it('groups by exit reason', () => {
    const rows = tradeBreakdown(trades, 'exitReason');
    assert.deepEqual(rows.map((r) => [r.key, r.trades, r.totalPnl]), [['stop_loss', 1, -2], ['take_profit', 2, 8], ['signal', 1, 0]]);
    assert.deepEqual(tradeBreakdown([], 'symbol'), []);
  });
});

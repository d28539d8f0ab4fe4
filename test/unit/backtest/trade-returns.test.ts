import assert from 'node:assert/strict';
import { bestAndWorstTrade, tradeReturn } from '../../../lib/backtest/trade-returns';

describe('lib/backtest/trade-returns', () => {
  const t = (symbol: string, qty: number, entryPrice: number, pnl: number) => ({ symbol, qty, entryPrice, pnl, entryTime: 1, exitTime: 2 });

  it('a return is PnL over the entry notional', () => {
    assert.equal(tradeReturn(t('A', 2, 50, 5)), 0.05);
    assert.equal(tradeReturn(t('A', 0, 50, 5)), 0, 'no notional, no return');
  });

  it('best and worst by return, not by PnL', () => {
    const big = t('BIG', 10, 1000, 50); // +0.5 %
    const small = t('SMALL', 1, 100, 10); // +10 %
    const loser = t('LOSER', 1, 100, -3); // -3 %
    const largeLoss = t('LARGE', 100, 100, -100); // -1 %
    const r = bestAndWorstTrade([big, small, loser, largeLoss]);
    assert.equal(r.best?.symbol, 'SMALL');
    assert.equal(r.best?.return, 0.1);
    assert.equal(r.worst?.symbol, 'LOSER');
    assert.deepEqual(bestAndWorstTrade([]), { best: null, worst: null });
  });
});

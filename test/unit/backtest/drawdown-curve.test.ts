import assert from 'node:assert/strict';
import { drawdownCurve } from '../../../lib/backtest/drawdown-curve';
import { maxDrawdown } from '../../../lib/backtest/metrics';

describe('lib/backtest/drawdown-curve', () => {
  it('is the fall below the running peak; its maximum is the max drawdown', () => {
    const eq = [100, 120, 90, 130, 117].map((equity, time) => ({ time, equity }));
    const dd = drawdownCurve(eq);
    assert.deepEqual(dd.map((p) => +p.drawdown.toFixed(12)), [0, 0, 0.25, 0, 0.1]);
    assert.equal(Math.max(...dd.map((p) => p.drawdown)), maxDrawdown(eq));
  });
});

import assert from 'node:assert/strict';
import { tradeDurations } from '../../../lib/backtest/trade-durations';

describe('lib/backtest/trade-durations', () => {
  it('averages exit - entry for all trades, winners and losers', () => {
    const t = (pnl: number, hours: number) => ({ pnl, entryTime: 1_000, exitTime: 1_000 + hours * 3_600_000 });
    const d = tradeDurations([t(5, 2), t(1, 4), t(-3, 1), t(0, 9)]);
    assert.equal(d.averageMs, 4 * 3_600_000);
    assert.equal(d.winnersAverageMs, 3 * 3_600_000);
    assert.equal(d.losersAverageMs, 3_600_000);
    assert.deepEqual(tradeDurations([t(1, 1)]).losersAverageMs, null);
    assert.deepEqual(tradeDurations([]), { averageMs: null, winnersAverageMs: null, losersAverageMs: null });
  });
});

import assert from 'node:assert/strict';
import { tradeStreaks } from '../../../lib/backtest/streaks';

describe('lib/backtest/streaks', () => {
  it('longest runs of wins and losses; a draw ends both', () => {
    const pnl = [1, 2, -1, 3, 4, 5, 0, 6, -1, -2, -3, 0, -4];
    assert.deepEqual(tradeStreaks(pnl.map((p) => ({ pnl: p }))), { maxConsecutiveWins: 3, maxConsecutiveLosses: 3 });
    assert.deepEqual(tradeStreaks([]), { maxConsecutiveWins: 0, maxConsecutiveLosses: 0 });
    assert.deepEqual(tradeStreaks([{ pnl: -1 }, { pnl: -1 }]), { maxConsecutiveWins: 0, maxConsecutiveLosses: 2 });
  });
});

import assert from 'node:assert/strict';
import { quantiles, quantileSorted } from '../../../lib/backtest/percentile';

describe('lib/backtest/percentile', () => {
  it('type 7: interpolates between order statistics like numpy.percentile', () => {
    // numpy.percentile([1, 2, 3, 4], [0, 25, 50, 90, 100]) = [1, 1.75, 2.5, 3.7, 4]
    const q = quantiles([4, 1, 3, 2], [0, 0.25, 0.5, 0.9, 1]);
    assert.deepEqual(q.map((x) => +x.toFixed(12)), [1, 1.75, 2.5, 3.7, 4]);
    assert.equal(quantileSorted([5], 0.3), 5);
  });

  it('refuses no values and quantiles outside [0, 1]', () => {
    assert.throws(() => quantileSorted([], 0.5), /no values/);
    assert.throws(() => quantileSorted([1], 1.5), /must be in \[0, 1\]/);
  });
});

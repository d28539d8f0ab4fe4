import assert from 'node:assert/strict';
import { cagr } from '../../../lib/backtest/cagr';
import { YEAR_MS } from '../../../lib/backtest/metrics';

describe('lib/backtest/cagr', () => {
  it('compounds over calendar years', () => {
    assert.ok(Math.abs((cagr(100, 121, 0, 2 * YEAR_MS) as number) - 0.1) < 1e-12, 'two years to +21 % is 10 % a year');
    assert.ok(Math.abs((cagr(100, 110, 0, YEAR_MS / 2) as number) - 0.21) < 1e-12, 'half a year at +10 % is 21 % a year');
    assert.equal(cagr(100, 50, 0, YEAR_MS), -0.5);
  });

  it('null where it means nothing', () => {
    assert.equal(cagr(100, 110, 5, 5), null, 'no time');
    assert.equal(cagr(0, 110, 0, YEAR_MS), null, 'no capital');
    assert.equal(cagr(100, -1, 0, YEAR_MS), null, 'below zero');
  });
});

import assert from 'node:assert/strict';
import { dailySummary, periodKey, periodReturns } from '../../../lib/backtest/period-returns';

const at = (iso: string) => Date.parse(iso);

describe('lib/backtest/period-returns', () => {
  const curve = [
    { time: at('2021-01-30T00:00:00Z'), equity: 100 },
    { time: at('2021-01-30T12:00:00Z'), equity: 110 },
    { time: at('2021-01-31T06:00:00Z'), equity: 99 },
    { time: at('2021-02-01T00:00:00Z'), equity: 99 },
    { time: at('2021-02-02T23:00:00Z'), equity: 108.9 },
  ];

  it('months and days in UTC; each period against the end of the one before', () => {
    const months = periodReturns(curve, 'month');
    assert.deepEqual(months.map((m) => m.period), ['2021-01', '2021-02']);
    assert.ok(Math.abs(months[0].return - -0.01) < 1e-12, 'January: 100 -> 99');
    assert.ok(Math.abs(months[1].return - 0.1) < 1e-12, 'February: 99 -> 108.9');
    const total = months.reduce((a, m) => a * (1 + m.return), 1) - 1;
    assert.ok(Math.abs(total - 0.089) < 1e-12, 'the periods compound to the whole curve');
    const days = periodReturns(curve, 'day');
    assert.deepEqual(days.map((d) => d.period), ['2021-01-30', '2021-01-31', '2021-02-01', '2021-02-02']);
    assert.ok(Math.abs(days[1].return - -0.1) < 1e-12, '110 -> 99');
    assert.equal(periodKey(at('2021-12-31T23:59:59Z'), 'month'), '2021-12');
    assert.deepEqual(periodReturns([], 'day'), []);
  });

  it('best and worst day, winning, losing and flat days', () => {
    const s = dailySummary(curve);
    assert.equal(s.bestDay?.period, '2021-01-30');
    assert.equal(s.worstDay?.period, '2021-01-31');
    assert.deepEqual([s.winningDays, s.losingDays, s.flatDays], [2, 1, 1]);
  });
});

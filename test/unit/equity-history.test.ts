import assert from 'node:assert/strict';
import { equityHistory, type EquityPoint } from '../../lib/equity-history';

/** lib/equity-history.ts: what `trader equity` prints from the portfolio's equity snapshots. */

const M = 60_000;
const H = 60 * M;
const T0 = Date.UTC(2025, 0, 1);
const point = (minute: number, equity: number, drawdown: number | null, peakEquity: number | null = null): EquityPoint => ({ ts: T0 + minute * M, equity, cash: equity, exposure: 0, peakEquity, drawdown });

describe('equity history (trader equity)', () => {
  it('one row per period, its last snapshot; the worst drawdown over every snapshot, also one inside a period', () => {
    const points = [point(0, 10_000, 0, 10_000), point(30, 9_700, 0.03, 10_000), point(59, 9_950, 0.005, 10_000), point(60, 10_100, 0, 10_100), point(185, 10_050, 0.00495, 10_100)];
    const h = equityHistory([...points].reverse(), H);
    assert.equal(h.snapshots, 5);
    assert.deepEqual(h.rows.map((p) => p.ts), [T0 + 59 * M, T0 + 60 * M, T0 + 185 * M], 'hours 0, 1 and 3; hour 2 had no snapshot');
    assert.equal(h.first?.ts, T0);
    assert.equal(h.last?.ts, T0 + 185 * M);
    assert.equal(h.worstDrawdown?.ts, T0 + 30 * M, 'the dip at minute 30 is not hidden by its hour\'s row');
  });

  it('no snapshots, no drawdown figures, and a bad period', () => {
    assert.deepEqual(equityHistory([], H), { snapshots: 0, first: null, last: null, rows: [], worstDrawdown: null });
    assert.equal(equityHistory([point(0, 10_000, null), point(1, 9_000, null)], M).worstDrawdown, null, 'old snapshots without drawdown');
    assert.equal(equityHistory([point(0, 10_000, 0)], M).worstDrawdown, null, 'never below its peak');
    assert.throws(() => equityHistory([], 0), /positive number of ms/);
  });
});

import assert from 'node:assert/strict';
import { fitEntryThresholds, THRESHOLD_QUANTILES } from '../../models/ensemble/thresholds';
import { Prng } from '../../lib/random';

describe('models/ensemble/thresholds: entry and exit fitted on the validation rows', () => {
  it('enters where the expected value after costs is highest, and leaves at the median', () => {
    // Forward returns: -0.4 % below p = 0.6, +0.6 % from 0.6 to 0.9, -1 % above. A threshold keeps
    // every row at or above it, so the best is the 60th percentile (it keeps 0.6 .. 1.0: mean
    // +0.2 %, which just pays the 0.2 % cost).
    const n = 1000;
    const p = Array.from({ length: n }, (_, i) => i / n);
    const fwd = p.map((x) => (x < 0.6 ? -0.004 : x < 0.9 ? 0.006 : -0.01));
    const y = fwd.map((r) => (r > 0.002 ? 1 : 0));
    const t = fitEntryThresholds(p, y, fwd, 0.002);
    const expected = (q: number) => {
      const kept = fwd.filter((_, i) => p[i] >= (n - 1) * q / n);
      return kept.reduce((a, b) => a + b - 0.002, 0) / kept.length;
    };
    const best = Math.max(...THRESHOLD_QUANTILES.map(expected));
    assert.ok(Math.abs(t.validation.meanNetLogReturn - best) < 1e-12, `chose ${t.validation.meanNetLogReturn}, best ${best}`);
    assert.ok(Math.abs(t.enterProb - 0.5994) < 1e-9, `entry ${t.enterProb}`);
    assert.ok(Math.abs(t.exitProb - 0.4995) < 1e-9, `exit at the median, ${t.exitProb}`);
    assert.equal(t.candidates.length, THRESHOLD_QUANTILES.length);
    assert.ok(Math.abs(t.baseRate - 0.3) < 1e-12);
    assert.ok(Math.abs(t.validation.coverage - 0.4) < 1e-12);
    assert.ok(Math.abs(t.validation.hitRate - 0.75) < 1e-12);
  });

  it('a model with no edge still gets thresholds, and its manifest says the expected value is negative', () => {
    const rng = new Prng(4);
    const n = 2000;
    const p = Array.from({ length: n }, () => 0.3 + 0.1 * rng.next());
    const fwd = Array.from({ length: n }, () => 0.01 * rng.gaussian());
    const y = fwd.map((r) => (r > 0.002 ? 1 : 0));
    const t = fitEntryThresholds(p, y, fwd, 0.002);
    assert.ok(t.exitProb < t.enterProb);
    assert.ok(t.validation.meanNetLogReturn < 0, 'noise does not pay for the fees');
    assert.ok(t.validation.coverage >= 0.09 && t.validation.coverage <= 0.51, `coverage ${t.validation.coverage}`);
  });

  it('keeps the pair ordered when the entry is the median, and on a constant model; refuses too few rows', () => {
    const n = 100;
    const p = Array.from({ length: n }, (_, i) => i / n);
    const fwd = p.map((x) => (x >= 0.5 ? 0.01 : 0)); // every candidate above the median pays the same: the lowest wins
    const t = fitEntryThresholds(p, fwd.map((r) => (r > 0 ? 1 : 0)), fwd, 0.002);
    assert.ok(Math.abs(t.enterProb - 0.495) < 1e-9);
    assert.ok(Math.abs(t.exitProb - 0.396) < 1e-9, 'the 40th percentile when the entry is the median');
    const flat = fitEntryThresholds(new Array(50).fill(0.3), new Array(50).fill(0), new Array(50).fill(0), 0.002);
    assert.ok(flat.exitProb < flat.enterProb);
    assert.throws(() => fitEntryThresholds([0.1], [0], [0], 0), /at least 20 validation rows/);
  });
});

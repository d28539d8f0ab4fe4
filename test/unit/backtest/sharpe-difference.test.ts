import assert from 'node:assert/strict';
import { sharpeRatio } from '../../../lib/backtest/metrics';
import { sharpeDifference } from '../../../lib/backtest/sharpe-difference';
import { Prng } from '../../../lib/random';

const noise = (n: number, seed: number, sd = 0.01) => {
  const g = new Prng(seed);
  return Array.from({ length: n }, () => g.gaussian() * sd);
};

describe('lib/backtest/sharpe-difference', () => {
  const ppy = 8760;

  it('identical series: every resample differs by 0', () => {
    const a = noise(500, 1);
    const d = sharpeDifference(a, a, { periodsPerYear: ppy, runs: 200, seed: 1 })!;
    assert.equal(d.observed, 0);
    assert.equal(d.low, 0);
    assert.equal(d.high, 0);
    assert.equal(d.probabilityNotBetter, 1);
    assert.equal(d.blockLength, 8, 'cube root of 500, rounded');
  });

  it('a clear edge gives an interval above 0; the observed figure is the plain Sharpe difference', () => {
    const b = noise(2000, 2);
    const a = b.map((x) => x + 0.004);
    const d = sharpeDifference(a, b, { periodsPerYear: ppy, runs: 500, seed: 5 })!;
    assert.ok(Math.abs(d.observed - ((sharpeRatio(a, ppy) as number) - (sharpeRatio(b, ppy) as number))) < 1e-9);
    assert.ok(d.low > 0, `low ${d.low}`);
    assert.ok(d.low <= d.observed && d.observed <= d.high);
    assert.equal(d.probabilityNotBetter, 0);
  });

  it('two independent noises of one law: the 95 % interval covers the true difference, 0, about 95 % of the time', () => {
    // Any single pair may be a 2-sigma draw; the coverage over many pairs is what the method promises.
    let covered = 0;
    const pairs = 40;
    for (let k = 0; k < pairs; k++) {
      const d = sharpeDifference(noise(1000, 100 + 2 * k), noise(1000, 101 + 2 * k), { periodsPerYear: ppy, runs: 300, seed: k })!;
      if (d.low <= 0 && d.high >= 0) covered++;
    }
    assert.ok(covered >= 34 && covered <= pairs, `covered ${covered} of ${pairs}`);
    console.log(`      (covered ${covered} of ${pairs})`);
  });

  it('a strategy that never traded counts as Sharpe 0; reproducible by seed; input checks', () => {
    const flat = new Array(300).fill(0);
    const b = noise(300, 6);
    const d1 = sharpeDifference(flat, b, { periodsPerYear: ppy, runs: 100, seed: 11 })!;
    const d2 = sharpeDifference(flat, b, { periodsPerYear: ppy, runs: 100, seed: 11 })!;
    assert.deepEqual(d1, d2);
    assert.ok(Math.abs(d1.observed + (sharpeRatio(b, ppy) as number)) < 1e-9);
    assert.equal(sharpeDifference([0.1, 0.2], [0.1, 0.2], { periodsPerYear: ppy, runs: 10, seed: 1 }), null, 'too short');
    assert.throws(() => sharpeDifference([1, 2, 3], [1, 2], { periodsPerYear: ppy, runs: 10, seed: 1 }), /differ in length/);
  });
});

import assert from 'node:assert/strict';
import { accountReturns, monteCarlo, pathOutcome } from '../../../lib/backtest/monte-carlo';

/** Trades whose returns on the realized account equity are exactly `returns`, in order. */
function tradesWithReturns(returns: number[], initial = 10_000): { pnl: number }[] {
  let equity = initial;
  return returns.map((r) => {
    const pnl = r * equity;
    equity += pnl;
    return { pnl };
  });
}

describe('lib/backtest/monte-carlo', () => {
  it('turns trades into returns on the realized account equity', () => {
    const r = accountReturns([{ pnl: 100 }, { pnl: -202 }, { pnl: 0 }], 10_000);
    assert.deepEqual(Array.from(r).map((x) => +x.toFixed(12)), [0.01, -0.02, 0]);
    assert.throws(() => accountReturns([], 0), /initial equity must be positive/);
  });

  it('a path compounds returns; its drawdown is measured from the running peak, starting at 1', () => {
    const o = pathOutcome([0.1, -0.2, 0.05]);
    assert.ok(Math.abs(o.finalReturn - (1.1 * 0.8 * 1.05 - 1)) < 1e-12);
    assert.ok(Math.abs(o.maxDrawdown - 0.2) < 1e-12);
    assert.ok(Math.abs(pathOutcome([-0.1]).maxDrawdown - 0.1) < 1e-12, 'a first loss counts from the initial capital');
  });

  it('bootstrap bands follow the binomial law of a 50/50 list of +1 % and -1 % trades', () => {
    // Every resample draws 100 returns, each +1 % or -1 % with probability 1/2: the number of
    // winners K is Binomial(100, 1/2), whose 5th, 50th and 95th percentiles are 42, 50 and 58;
    // the final return 1.01^K * 0.99^(100-K) - 1 is increasing in K, so it has the same ranks.
    const returns = Array.from({ length: 100 }, (_, i) => (i % 2 === 0 ? 0.01 : -0.01));
    const mc = monteCarlo(tradesWithReturns(returns), 10_000, { runs: 20_000, seed: 7 });
    const final = (k: number) => 1.01 ** k * 0.99 ** (100 - k) - 1;
    const b = mc.bootstrap!;
    assert.ok(Math.abs(b.finalReturn.p5 - final(42)) < 1e-9, `p5 ${b.finalReturn.p5} vs ${final(42)}`);
    assert.ok(Math.abs(b.finalReturn.p50 - final(50)) < 1e-9, `p50 ${b.finalReturn.p50} vs ${final(50)}`);
    assert.ok(Math.abs(b.finalReturn.p95 - final(58)) < 1e-9, `p95 ${b.finalReturn.p95} vs ${final(58)}`);
    // A loss needs K <= 50: P(K <= 50) = 0.5398 for Binomial(100, 1/2).
    assert.ok(Math.abs(b.probabilityOfLoss - 0.5398) < 0.015, `probability of loss ${b.probabilityOfLoss}`);
    assert.equal(mc.trades, 100);
    assert.equal(mc.runs, 20_000);
  });

  it('shuffles keep the final return and move the drawdown as the arrangements say', () => {
    // -10 %, -10 %, +50 %: the two losses in a row (4 of the 6 orders: gain first or last) fall
    // 19 %, split by the gain (2 of 6) 10 %. So P(19 %) = 2/3: p5 = 10 %, p50 = p95 = 19 %.
    const trades = tradesWithReturns([-0.1, -0.1, 0.5]);
    const mc = monteCarlo(trades, 10_000, { runs: 5_000, seed: 3 });
    const s = mc.shuffle!;
    const final = 0.9 * 0.9 * 1.5 - 1;
    for (const v of [s.finalReturn.p5, s.finalReturn.p50, s.finalReturn.p95]) assert.ok(Math.abs(v - final) < 1e-12);
    assert.ok(Math.abs(s.maxDrawdown.p5 - 0.1) < 1e-12, `p5 ${s.maxDrawdown.p5}`);
    assert.ok(Math.abs(s.maxDrawdown.p50 - 0.19) < 1e-12, `p50 ${s.maxDrawdown.p50}`);
    assert.ok(Math.abs(s.maxDrawdown.p95 - 0.19) < 1e-12, `p95 ${s.maxDrawdown.p95}`);
    assert.equal(s.probabilityOfLoss, 0);
    assert.ok(Math.abs(mc.actual.maxDrawdown - 0.19) < 1e-12, 'the backtest order had both losses first');
  });

  it('the same seed gives the same bands; another seed other draws', () => {
    const trades = tradesWithReturns(Array.from({ length: 40 }, (_, i) => Math.sin(i * 1.7) * 0.03));
    const a = monteCarlo(trades, 10_000, { runs: 500, seed: 42 });
    const b = monteCarlo(trades, 10_000, { runs: 500, seed: 42 });
    const c = monteCarlo(trades, 10_000, { runs: 500, seed: 43 });
    assert.deepEqual(a, b);
    assert.notDeepEqual(a.bootstrap, c.bootstrap);
  });

  it('no trades: nothing to resample; bad run counts are refused', () => {
    const mc = monteCarlo([], 10_000, { runs: 10, seed: 1 });
    assert.deepEqual(mc, { runs: 10, seed: 1, trades: 0, actual: { finalReturn: 0, maxDrawdown: 0 }, shuffle: null, bootstrap: null });
    assert.throws(() => monteCarlo([], 10_000, { runs: 0, seed: 1 }), /runs must be an integer from 1/);
    assert.throws(() => monteCarlo([], 10_000, { runs: 1.5, seed: 1 }), /runs must be an integer/);
  });
});

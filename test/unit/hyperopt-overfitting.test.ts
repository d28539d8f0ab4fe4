import assert from 'node:assert/strict';
import {
  binomial,
  combinations,
  deflatedSharpeRatio,
  expectedMaxSharpe,
  normalCdf,
  normalQuantile,
  overfittingReport,
  perPeriodSharpe,
  probabilisticSharpeRatio,
  probabilityOfBacktestOverfitting,
  returnMoments,
} from '../../lib/hyperopt/overfitting';
import { Prng } from '../../lib/random';

const near = (actual: number, expected: number, tol: number, what: string) =>
  assert.ok(Math.abs(actual - expected) <= tol, `${what}: expected ${expected} ± ${tol}, got ${actual}`);
const nearRel = (actual: number, expected: number, rel: number, what: string) =>
  assert.ok(Math.abs(actual - expected) <= rel * Math.abs(expected), `${what}: expected ${expected} (relative ± ${rel}), got ${actual}`);

/** T x N matrix (rows = periods) of i.i.d. normal returns. */
function noiseMatrix(rng: Prng, periods: number, trials: number, sd = 0.01): number[][] {
  return Array.from({ length: periods }, () => Array.from({ length: trials }, () => sd * rng.gaussian()));
}

describe('hyperopt overfitting guard: the normal distribution', () => {
  it('Φ matches reference values (0.5·erfc(-x/√2) in double precision), tails to relative accuracy', () => {
    // Reference values: Python's math.erfc, 0.5 * erfc(-x / sqrt(2)).
    near(normalCdf(0), 0.5, 0, 'Φ(0)');
    near(normalCdf(-1), 0.15865525393145707, 1e-15, 'Φ(-1)');
    near(normalCdf(1.96), 0.9750021048517795, 1e-15, 'Φ(1.96)');
    near(normalCdf(3), 0.9986501019683699, 1e-15, 'Φ(3)');
    nearRel(normalCdf(-3), 0.0013498980316300957, 1e-12, 'Φ(-3)');
    nearRel(normalCdf(-5), 2.866515718791946e-7, 1e-13, 'Φ(-5)');
    nearRel(normalCdf(-10), 7.619853024160593e-24, 1e-13, 'Φ(-10)');
    nearRel(normalCdf(-20), 2.7536241186063314e-89, 1e-12, 'Φ(-20)');
    assert.equal(normalCdf(-Infinity), 0);
    assert.equal(normalCdf(Infinity), 1);
  });

  it('Φ^-1 (Acklam + one Halley step) matches AS241 reference values to ~1e-15 and inverts Φ', () => {
    // Reference values: Python's statistics.NormalDist().inv_cdf (Wichura's AS241).
    nearRel(normalQuantile(0.975), 1.9599639845400536, 1e-14, 'Φ^-1(0.975)');
    nearRel(normalQuantile(0.99), 2.3263478740408408, 1e-14, 'Φ^-1(0.99)');
    nearRel(normalQuantile(0.001), -3.090232306167813, 1e-14, 'Φ^-1(0.001)');
    nearRel(normalQuantile(1e-10), -6.361340902404056, 1e-14, 'Φ^-1(1e-10)');
    nearRel(normalQuantile(1e-300), -37.0470962993612, 1e-14, 'Φ^-1(1e-300)');
    assert.equal(normalQuantile(0.5), 0);
    assert.equal(normalQuantile(0), -Infinity);
    assert.equal(normalQuantile(1), Infinity);
    assert.throws(() => normalQuantile(1.5), /probability must be in \[0, 1\]/);
    for (let e = -15; e <= -1; e++) {
      for (const m of [1, 2.5, 5]) {
        const p = m * 10 ** e;
        if (p >= 0.5) continue;
        nearRel(normalCdf(normalQuantile(p)), p, 1e-12, `Φ(Φ^-1(${p}))`);
        const q = 1 - p; // rounded; its exact complement is 1 - q
        assert.equal(normalQuantile(q), -normalQuantile(1 - q), 'the upper half is the lower by symmetry');
      }
    }
  });
});

describe('hyperopt overfitting guard: PSR and DSR (Bailey & López de Prado)', () => {
  it('the DSR paper\'s numerical example: N = 100, V = 1/2, SR 2.5 over T = 1250 days, γ3 = -3, γ4 = 10 -> SR0 ≈ 0.1132, DSR = 0.9004', () => {
    // Bailey & López de Prado (2014), "The Deflated Sharpe Ratio", numerical example: a strategy
    // with an annualized SR of 2.5 over 5 years of daily returns (T = 1250, 250 days a year),
    // the best of N = 100 independent trials whose annualized Sharpe ratios have variance
    // V = 1/2, returns with skewness -3 and kurtosis 10. Published: SR0 ≈ 0.1132 (non-annualized)
    // and DSR ≈ 0.9004. Tolerance: half a unit in the last published digit (5e-5).
    const ppy = 250;
    const input = { sharpe: 2.5 / Math.sqrt(ppy), observations: 1250, skewness: -3, kurtosis: 10, trials: 100, trialSharpeVariance: 0.5 / ppy };
    const r = deflatedSharpeRatio(input);
    near(r.threshold, 0.1132, 5e-5, 'SR0');
    near(r.dsr, 0.9004, 5e-5, 'DSR');
    // The same paper: DSR would reach 0.9505 had the strategy been the best of N = 46 trials,
    // and (with normal returns, γ3 = 0, γ4 = 3) the best of N = 88.
    near(deflatedSharpeRatio({ ...input, trials: 46 }).dsr, 0.9505, 5e-5, 'DSR, N = 46');
    near(deflatedSharpeRatio({ ...input, trials: 88, skewness: 0, kurtosis: 3 }).dsr, 0.9505, 5e-5, 'DSR, N = 88, normal returns');
  });

  it('the PSR paper\'s example: monthly SR 0.458 over 24 months -> PSR(0) = 0.982 if normal, 0.913 with γ3 = -2.448, γ4 = 10.164', () => {
    // Bailey & López de Prado (2012), "The Sharpe Ratio Efficient Frontier": an annualized SR of
    // about 1.59 from 24 monthly returns (SR 0.458 per month). Published to three digits, so the
    // tolerance is 5e-4.
    near(probabilisticSharpeRatio({ sharpe: 0.458, benchmark: 0, observations: 24, skewness: 0, kurtosis: 3 }), 0.982, 5e-4, 'PSR, normal');
    near(probabilisticSharpeRatio({ sharpe: 0.458, benchmark: 0, observations: 24, skewness: -2.448, kurtosis: 10.164 }), 0.913, 5e-4, 'PSR, skewed and fat-tailed');
  });

  it('more trials -> a higher threshold -> a lower DSR; one trial or no spread -> no deflation', () => {
    const base = { sharpe: 0.1, observations: 1000, skewness: -0.5, kurtosis: 5, trialSharpeVariance: 0.002 };
    let prev = deflatedSharpeRatio({ ...base, trials: 1 });
    assert.equal(prev.threshold, 0);
    near(prev.dsr, probabilisticSharpeRatio({ ...base, benchmark: 0 }), 0, 'N = 1: DSR = PSR(0)');
    for (const n of [2, 3, 5, 10, 30, 100, 300, 1000, 10_000]) {
      const r = deflatedSharpeRatio({ ...base, trials: n });
      assert.ok(r.threshold > prev.threshold, `SR0 rises with N (${n})`);
      assert.ok(r.dsr < prev.dsr, `DSR falls with N (${n})`);
      prev = r;
    }
    assert.equal(expectedMaxSharpe(500, 0), 0, 'trials that all scored the same: nothing to deflate');
    assert.ok(expectedMaxSharpe(100, 0.004) > expectedMaxSharpe(100, 0.002), 'a wider spread of trial Sharpes raises SR0');
  });

  it('normal returns: PSR from the sample moments matches the closed form Φ(SR √(T-1) / √(1 + SR²/2))', () => {
    const rng = new Prng(2024);
    const returns = Array.from({ length: 5000 }, () => 0.0005 + 0.01 * rng.gaussian());
    const m = returnMoments(returns);
    // Sample moments of 5000 normal draws: skewness ± sqrt(6/T) ≈ 0.035, kurtosis 3 ± sqrt(24/T) ≈ 0.07.
    near(m.skewness, 0, 0.15, 'skewness of normal draws');
    near(m.kurtosis, 3, 0.3, 'kurtosis of normal draws');
    const closed = normalCdf((m.sharpe * Math.sqrt(m.observations - 1)) / Math.sqrt(1 + (m.sharpe * m.sharpe) / 2));
    assert.equal(probabilisticSharpeRatio({ sharpe: m.sharpe, benchmark: 0, observations: m.observations, skewness: 0, kurtosis: 3 }), closed, 'γ3 = 0, γ4 = 3 is the closed form');
    // With SR ≈ 0.05 the moments' sampling error moves the denominator by < 0.01 %.
    near(probabilisticSharpeRatio({ sharpe: m.sharpe, benchmark: 0, observations: m.observations, skewness: m.skewness, kurtosis: m.kurtosis }), closed, 1e-3, 'PSR with sample moments');
    near(probabilisticSharpeRatio({ sharpe: 0.2, benchmark: 0.2, observations: 100, skewness: 1, kurtosis: 7 }), 0.5, 0, 'SR = benchmark: PSR = 1/2');
  });

  it('sample moments: skewness m3/m2^1.5 and non-excess kurtosis m4/m2^2 (worked by hand), Sharpe with the n-1 sd', () => {
    // [1, 2, 3, 4, 10]: mean 4, deviations -3 -2 -1 0 6; m2 = 50/5 = 10, m3 = 180/5 = 36, m4 = 1394/5 = 278.8.
    const m = returnMoments([1, 2, 3, 4, 10]);
    near(m.mean, 4, 1e-15, 'mean');
    near(m.sd, Math.sqrt(50 / 4), 1e-15, 'sd');
    near(m.sharpe, 4 / Math.sqrt(12.5), 1e-15, 'sharpe');
    near(m.skewness, 36 / 10 ** 1.5, 1e-14, 'skewness');
    near(m.kurtosis, 2.788, 1e-14, 'kurtosis');
    assert.equal(perPeriodSharpe([1, 2, 3, 4, 10]), m.sharpe);
    assert.deepEqual(returnMoments([0, 0, 0]), { observations: 3, mean: 0, sd: 0, sharpe: 0, skewness: 0, kurtosis: 3 }, 'no variance: Sharpe 0');
  });

  it('refuses inputs the formulas do not cover, saying why', () => {
    assert.throws(() => probabilisticSharpeRatio({ sharpe: 0.1, benchmark: 0, observations: 1, skewness: 0, kurtosis: 3 }), /observations must be an integer >= 2/);
    assert.throws(() => probabilisticSharpeRatio({ sharpe: 0.1, benchmark: 0, observations: 10, skewness: 0, kurtosis: 0 }), /non-excess kind/);
    assert.throws(() => probabilisticSharpeRatio({ sharpe: 2, benchmark: 0, observations: 10, skewness: 1, kurtosis: 1 }), /not positive/);
    assert.throws(() => probabilisticSharpeRatio({ sharpe: NaN, benchmark: 0, observations: 10, skewness: 0, kurtosis: 3 }), /sharpe must be a finite number/);
    assert.throws(() => expectedMaxSharpe(0, 1), /integer >= 1/);
    assert.throws(() => expectedMaxSharpe(10, -1), />= 0/);
    assert.throws(() => returnMoments([1]), /at least 2/);
    assert.throws(() => returnMoments([1, NaN]), /entry 1 is not a finite number/);
  });
});

describe('hyperopt overfitting guard: PBO by CSCV (Bailey, Borwein, López de Prado & Zhu)', () => {
  it('S = 16 gives C(16, 8) = 12870 combinations, each with its complement', () => {
    assert.equal(binomial(16, 8), 12870);
    const seen = new Set<string>();
    for (const c of combinations(16, 8)) seen.add(c.join(','));
    assert.equal(seen.size, 12870);
    for (const key of seen) {
      const members = new Set(key.split(',').map(Number));
      const complement = Array.from({ length: 16 }, (_, g) => g).filter((g) => !members.has(g));
      assert.ok(seen.has(complement.join(',')), `the complement of {${key}} is a combination too (symmetric)`);
    }
    const r = probabilityOfBacktestOverfitting(noiseMatrix(new Prng(1), 32, 3), { partitions: 16 });
    assert.equal(r.combinations, 12870);
    assert.equal(r.logits.length, 12870);
    assert.equal(r.rowsPerPartition, 2);
  });

  it('one trial dominant in every period: PBO exactly 0, every logit ln N', () => {
    const rng = new Prng(7);
    const n = 8;
    const m = noiseMatrix(rng, 64, n).map((row) => {
      const others = row.filter((_, j) => j !== 3);
      row[3] = Math.max(...others) + 0.001;
      return row;
    });
    const r = probabilityOfBacktestOverfitting(m, { partitions: 8 });
    assert.equal(r.combinations, 70);
    assert.equal(r.pbo, 0);
    assert.ok(r.selected.every((s) => s === 3), 'trial 3 wins in sample every time');
    for (const l of r.logits) near(l, Math.log(n), 1e-12, 'logit of the top OOS rank: ln(N/(N+1) / (1/(N+1))) = ln N');
    assert.equal(r.probabilityOfLoss, 0);
  });

  it('every trial i.i.d. noise: PBO averages 1/2 (Hoeffding bound over 400 independent matrices)', () => {
    // For i.i.d. trials the OOS rows are independent of the IS rows that pick n*, and the trials'
    // OOS performances are exchangeable, so n*'s OOS rank is uniform on 1..N: with N even,
    // P(λ <= 0) = P(rank <= N/2) = 1/2 exactly in every combination, so E[PBO] = 1/2. The
    // C(S, S/2) combinations of ONE matrix share its rows and are far from independent, so their
    // number does not bound the error; independent matrices do. Each PBO lies in [0, 1], so by
    // Hoeffding P(|mean of K PBOs - 1/2| >= 0.1) <= 2 exp(-2 K 0.1²) = 2 e^-8 ≈ 7e-4 for K = 400.
    const rng = new Prng(22);
    const k = 400;
    let sum = 0;
    for (let i = 0; i < k; i++) sum += probabilityOfBacktestOverfitting(noiseMatrix(rng, 64, 10), { partitions: 8 }).pbo;
    near(sum / k, 0.5, 0.1, 'mean PBO of pure noise');
  });

  it('trials demeaned over the whole sample, scored by their mean: the IS winner is the OOS loser, PBO exactly 1', () => {
    // With equal halves and each column summing to 0, OOS mean = -IS mean for every trial, so the
    // best in sample is the worst out of sample: rank 1, λ = ln(1/N) = -ln N, degradation slope -1.
    const n = 6;
    const raw = noiseMatrix(new Prng(3), 48, n);
    const means = Array.from({ length: n }, (_, j) => raw.reduce((a, row) => a + row[j], 0) / raw.length);
    const m = raw.map((row) => row.map((x, j) => x - means[j]));
    const mean = (xs: Float64Array) => xs.reduce((a, b) => a + b, 0) / xs.length;
    const r = probabilityOfBacktestOverfitting(m, { partitions: 6, performance: mean });
    assert.equal(r.combinations, 20);
    assert.equal(r.pbo, 1);
    for (const l of r.logits) near(l, -Math.log(n), 1e-12, 'bottom OOS rank');
    near(r.degradation.slope ?? NaN, -1, 1e-9, 'degradation slope');
    near(r.degradation.intercept ?? NaN, 0, 1e-12, 'degradation intercept');
    assert.equal(r.probabilityOfLoss, 1, 'here every IS winner has a positive IS mean, so a negative OOS mean');
  });

  it('the default Sharpe (from per-group moments) equals a performance function computing Sharpe from the rows', () => {
    const m = noiseMatrix(new Prng(5), 50, 7);
    const fast = probabilityOfBacktestOverfitting(m, { partitions: 8 });
    const slow = probabilityOfBacktestOverfitting(m, { partitions: 8, performance: perPeriodSharpe });
    assert.equal(fast.droppedRows, 2, '50 rows in 8 groups of 6: the 2 earliest rows are left out');
    assert.equal(fast.pbo, slow.pbo);
    assert.deepEqual(fast.selected, slow.selected);
    assert.deepEqual(fast.logits, slow.logits);
    for (let i = 0; i < fast.combinations; i++) {
      near(fast.isPerformance[i], slow.isPerformance[i], 1e-12, `IS performance ${i}`);
      near(fast.oosPerformance[i], slow.oosPerformance[i], 1e-12, `OOS performance ${i}`);
    }
  });

  it('ties: identical trials -> the lowest index is chosen, OOS mid-rank is the median, λ = 0 counts as overfit', () => {
    const col = noiseMatrix(new Prng(9), 16, 1).map((row) => row[0]);
    const m = col.map((x) => [x, x, x, x]);
    const r = probabilityOfBacktestOverfitting(m, { partitions: 4 });
    assert.ok(r.selected.every((s) => s === 0));
    assert.ok(r.logits.every((l) => Math.abs(l) < 1e-15));
    assert.equal(r.pbo, 1);
  });

  it('refuses a matrix or S it cannot split, saying why', () => {
    const m = noiseMatrix(new Prng(11), 20, 4);
    assert.throws(() => probabilityOfBacktestOverfitting(m, { partitions: 3 }), /even integer >= 2/);
    assert.throws(() => probabilityOfBacktestOverfitting(m, { partitions: 0 }), /even integer >= 2/);
    assert.throws(() => probabilityOfBacktestOverfitting(m.slice(0, 10), { partitions: 16 }), /need T >= S/);
    assert.throws(() => probabilityOfBacktestOverfitting(m.map((row) => [row[0]]), { partitions: 4 }), /at least 2 trials/);
    assert.throws(() => probabilityOfBacktestOverfitting([...m.slice(0, 5), [1, 2, 3], ...m.slice(6)], { partitions: 4 }), /row 5 has 3 trials/);
    assert.throws(() => probabilityOfBacktestOverfitting([...m.slice(0, 5), [1, NaN, 3, 4], ...m.slice(6)], { partitions: 4 }), /row 5: entry 1 is not a finite number/);
    assert.throws(() => probabilityOfBacktestOverfitting(m.slice(0, 3), { partitions: 2 }), /at least 2/);
    assert.throws(() => probabilityOfBacktestOverfitting(m, { partitions: 4, performance: () => NaN }), /performance function returned NaN for trial 0/);
  });
});

describe('hyperopt overfitting guard: the report', () => {
  it('DSR of the best trial given all trials and PBO over the matrix, as plain JSON numbers', () => {
    const rng = new Prng(42);
    const periods = 96;
    const trials = Array.from({ length: 12 }, (_, i) => Array.from({ length: periods }, () => (i === 5 ? 0.004 : 0) + 0.01 * rng.gaussian()));
    const report = overfittingReport({ trialReturns: trials, periodsPerYear: 365 });
    const sharpes = trials.map((t) => perPeriodSharpe(t));
    const best = sharpes.indexOf(Math.max(...sharpes));
    assert.equal(report.selected, best);
    assert.equal(report.trials, 12);
    assert.equal(report.periods, periods);
    const mean = sharpes.reduce((a, b) => a + b, 0) / sharpes.length;
    const variance = sharpes.reduce((a, s) => a + (s - mean) ** 2, 0) / (sharpes.length - 1);
    near(report.deflatedSharpe.trialSharpeVariance, variance, 1e-15, 'V');
    const m = returnMoments(trials[best]);
    const expected = deflatedSharpeRatio({ sharpe: m.sharpe, observations: periods, skewness: m.skewness, kurtosis: m.kurtosis, trials: 12, trialSharpeVariance: variance });
    assert.equal(report.deflatedSharpe.dsr, expected.dsr);
    assert.equal(report.deflatedSharpe.threshold, expected.threshold);
    near(report.deflatedSharpe.sharpeAnnualized ?? NaN, m.sharpe * Math.sqrt(365), 1e-12, 'annualized SR');
    near(report.deflatedSharpe.thresholdAnnualized ?? NaN, expected.threshold * Math.sqrt(365), 1e-12, 'annualized SR0');
    assert.ok(report.deflatedSharpe.dsr < report.deflatedSharpe.psr, 'deflating for 12 trials lowers the PSR');
    const matrix = Array.from({ length: periods }, (_, t) => trials.map((s) => s[t]));
    const pbo = probabilityOfBacktestOverfitting(matrix);
    assert.equal(report.pbo.pbo, pbo.pbo);
    assert.equal(report.pbo.combinations, 12870);
    assert.equal(report.pbo.probabilityOfLoss, pbo.probabilityOfLoss);
    assert.equal(report.pbo.degradationSlope, pbo.degradation.slope);
    assert.deepEqual(JSON.parse(JSON.stringify(report)), report, 'plain JSON: no NaN, Infinity or typed arrays');

    const noAnnual = overfittingReport({ trialReturns: trials, selected: 0, partitions: 4 });
    assert.equal(noAnnual.selected, 0);
    assert.equal(noAnnual.deflatedSharpe.sharpeAnnualized, null);
    assert.equal(noAnnual.pbo.combinations, 6);
  });

  it('refuses trials it cannot compare, saying why', () => {
    const t = [
      [0.01, -0.02, 0.03, 0.0],
      [0.02, 0.01, -0.01, 0.0],
    ];
    assert.throws(() => overfittingReport({ trialReturns: [t[0]] }), /at least 2 trials/);
    assert.throws(() => overfittingReport({ trialReturns: [t[0], [0.01, 0.02]] }), /trial 1 has 2 returns/);
    assert.throws(() => overfittingReport({ trialReturns: t, selected: 2, partitions: 2 }), /selected must be a trial index/);
    assert.throws(() => overfittingReport({ trialReturns: t, periodsPerYear: 0, partitions: 2 }), /periodsPerYear/);
    assert.throws(() => overfittingReport({ trialReturns: [t[0], [0.01, NaN, 0, 0]], partitions: 2 }), /trial 1: returns: entry 1/);
  });
});

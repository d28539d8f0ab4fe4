import assert from 'node:assert/strict';
import type { Candle } from '../../lib/candles';
import { computeFeatureMatrix, createFeatureStream, FEATURE_SCHEMA, featureIndex, featureRow } from '../../lib/features';
import { classifyRegime, REGIME_THRESHOLDS, REGIMES, regimeVector, type Regime } from '../../lib/regime';
import { readCandleCsv } from '../../infra/candle-files';
import { fixtureCandleFile } from '../../testkit/fixtures';

const H = 3_600_000;

/** A vector with the regime inputs set and everything else neutral. */
function vector(inputs: Record<string, number>): Float64Array {
  const v = new Float64Array(FEATURE_SCHEMA.width);
  v[featureIndex('rvol_pctile_24_480')] = 0.5;
  v[featureIndex('adx_14')] = 15;
  v[featureIndex('di_plus_14')] = 20;
  v[featureIndex('di_minus_14')] = 20;
  for (const [k, x] of Object.entries(inputs)) v[featureIndex(k)] = x;
  return v;
}

/** Candles following a path of closes, with a range proportional to `noise`. */
function candlesFromCloses(closes: number[], noise: number): Candle[] {
  return closes.map((c, i) => {
    const prev = i > 0 ? closes[i - 1] : c;
    return { timestamp: 1.7e12 + i * H, open: prev, high: Math.max(prev, c) * (1 + noise), low: Math.min(prev, c) * (1 - noise), close: c, volume: 100 };
  });
}
const lastRegime = (candles: Candle[]): Regime => {
  const m = computeFeatureMatrix(candles);
  return classifyRegime(featureRow(m, m.rowCount - 1));
};

describe('regime: the rules', () => {
  it('volatile when realized vol is in the top decile of its history, whatever the trend', () => {
    const r = classifyRegime(vector({ rvol_pctile_24_480: 0.95, adx_14: 45, di_plus_14: 10, di_minus_14: 40, ema_slope_50_10: -0.01 }));
    assert.equal(r.label, 'volatile');
    assert.ok(Math.abs(r.confidence - 0.75) < 1e-12);
    assert.equal(classifyRegime(vector({ rvol_pctile_24_480: 1 })).confidence, 1);
    assert.equal(classifyRegime(vector({ rvol_pctile_24_480: REGIME_THRESHOLDS.volatilePercentile })).confidence, 0.5);
  });

  it('bull / bear need ADX above the trend line and DI direction and EMA slope agreeing', () => {
    const up = { adx_14: 30, di_plus_14: 30, di_minus_14: 10, ema_slope_50_10: 0.001, ema_gap_100: 0.02 };
    assert.equal(classifyRegime(vector(up)).label, 'bull');
    assert.equal(classifyRegime(vector({ ...up, di_plus_14: 10, di_minus_14: 30, ema_slope_50_10: -0.001 })).label, 'bear');
    assert.equal(classifyRegime(vector({ ...up, adx_14: 19.9 })).label, 'sideways', 'ADX below the trend threshold');
    assert.equal(classifyRegime(vector({ ...up, ema_slope_50_10: -0.001 })).label, 'sideways', 'DI says up, EMA slope says down');
  });

  it('trend confidence grows with ADX and with price on the trend side of the long EMA', () => {
    const up = { di_plus_14: 30, di_minus_14: 10, ema_slope_50_10: 0.001 };
    const c = (adx: number, gap: number) => classifyRegime(vector({ ...up, adx_14: adx, ema_gap_100: gap })).confidence;
    assert.ok(c(25, 0.01) < c(35, 0.01));
    assert.ok(c(35, -0.01) < c(35, 0.01));
    assert.equal(c(REGIME_THRESHOLDS.adxTrendStrong + 10, 0.01), 1);
    assert.equal(c(REGIME_THRESHOLDS.adxTrendMin, -0.01), 0.5);
  });

  it('sideways is most confident when ADX is low and vol ordinary', () => {
    assert.deepEqual(classifyRegime(vector({ adx_14: 5, rvol_pctile_24_480: 0.3 })), { label: 'sideways', confidence: 1, code: REGIMES.indexOf('sideways') });
    const weak = classifyRegime(vector({ adx_14: 18, rvol_pctile_24_480: 0.85 }));
    assert.equal(weak.label, 'sideways');
    assert.ok(weak.confidence < 0.3);
  });

  it('unusable inputs give sideways with confidence 0 (sizes to nothing), and a wrong-width vector throws', () => {
    assert.deepEqual(classifyRegime(vector({ adx_14: NaN })), { label: 'sideways', confidence: 0, code: 3 });
    assert.throws(() => classifyRegime(new Float64Array(3)), /expected 26 features/);
  });

  it('as a model input: one slot per regime holding the confidence', () => {
    const v = regimeVector({ label: 'bear', confidence: 0.7, code: 1 });
    assert.deepEqual(Array.from(v), [0, 0.7, 0, 0]);
  });
});

describe('regime: on prices', () => {
  it('a steady climb is bull, a steady slide is bear, a calm range is sideways', () => {
    const n = FEATURE_SCHEMA.warmup + 200;
    const wiggle = (i: number) => 0.002 * Math.sin(i * 1.7);
    assert.equal(lastRegime(candlesFromCloses(Array.from({ length: n }, (_, i) => 100 * Math.exp(0.003 * i + wiggle(i))), 0.001)).label, 'bull');
    assert.equal(lastRegime(candlesFromCloses(Array.from({ length: n }, (_, i) => 100 * Math.exp(-0.003 * i + wiggle(i))), 0.001)).label, 'bear');
    let seed = 42;
    const noise = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31 - 0.5);
    const range = Array.from({ length: n }, () => 100 * Math.exp(0.01 * noise()));
    assert.equal(lastRegime(candlesFromCloses(range, 0.001)).label, 'sideways');
  });

  it('a calm market that suddenly swings hard is volatile', () => {
    const n = FEATURE_SCHEMA.warmup + 200;
    const closes = Array.from({ length: n }, (_, i) => 100 * Math.exp((i < n - 30 ? 0.002 : 0.05) * Math.sin(i * 2.1)));
    const r = lastRegime(candlesFromCloses(closes, 0.001));
    assert.equal(r.label, 'volatile');
    assert.ok(r.confidence > 0.9);
  });

  it('recorded BTC: the March 2020 crash is volatile; every bar gets a label with confidence in [0, 1]', () => {
    const f = readCandleCsv(fixtureCandleFile('binanceusdm_BTC-USDT_1h.csv'));
    const m = computeFeatureMatrix(f.candles);
    const counts: Record<string, number> = {};
    for (let k = 0; k < m.rowCount; k++) {
      const r = classifyRegime(featureRow(m, k));
      assert.ok(r.confidence >= 0 && r.confidence <= 1, `${r.confidence}`);
      counts[r.label] = (counts[r.label] ?? 0) + 1;
    }
    for (const label of REGIMES) assert.ok(counts[label] > m.rowCount * 0.05, `${label} on only ${counts[label]} of ${m.rowCount} bars`);
    // The volatile share is set by construction of the percentile: about 1 - 0.9 of bars.
    assert.ok(Math.abs(counts.volatile / m.rowCount - 0.1) < 0.03, `volatile share ${counts.volatile / m.rowCount}`);
    const crash = Array.from(m.timestamps).indexOf(Date.UTC(2020, 2, 12, 14));
    assert.ok(crash >= 0);
    assert.equal(classifyRegime(featureRow(m, crash)).label, 'volatile');
  });

  it('the stream vector and the batch row give the same regime', () => {
    const f = readCandleCsv(fixtureCandleFile('synthetic_ETH-BTC_5m.csv'));
    const m = computeFeatureMatrix(f.candles);
    const s = createFeatureStream();
    let k = 0;
    for (const c of f.candles) {
      const v = s.push(c);
      if (v) assert.deepEqual(classifyRegime(v), classifyRegime(featureRow(m, k++)));
    }
    assert.equal(k, m.rowCount);
  });
});

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { ADX, ATR, AverageGain, AverageLoss, BollingerBands, EMA, MACD, RSI, SD, SMA } from 'technicalindicators';
import { checkCandles } from '../../lib/candle-hygiene';
import type { Candle } from '../../lib/candles';
import {
  computeFeatureMatrix, createFeatureStream, FEATURE_PARAMS, FEATURE_SCHEMA, featureIndex, featureRow, InvalidCandleError, type FeatureMatrix,
} from '../../lib/features';
import { readCandleCsv } from '../../infra/candle-files';
import { fixtureCandleFile } from '../../testkit/fixtures';

const cache = new Map<string, Candle[]>();
function recorded(name: string): Candle[] {
  if (!cache.has(name)) {
    const f = readCandleCsv(fixtureCandleFile(name));
    cache.set(name, checkCandles(f.candles, f.timeframeMs).candles);
  }
  return cache.get(name)!;
}

const { width, warmup, names } = FEATURE_SCHEMA;
const col = (m: FeatureMatrix, name: string) => {
  const j = featureIndex(name);
  return Array.from({ length: m.rowCount }, (_, k) => m.values[k * width + j]);
};
/** The value for candle i of an indicator result that starts where the indicator is first defined. */
const tail = <T>(result: T[], n: number) => (i: number): T => result[i - (n - result.length)];

describe('feature schema', () => {
  it('hash is sha256 of the names and params (change the features => bump version and hash)', () => {
    const hash = createHash('sha256').update(JSON.stringify(FEATURE_SCHEMA.features.map(({ name, params }) => ({ name, params })))).digest('hex');
    assert.equal(FEATURE_SCHEMA.hash, hash, `schema changed: bump FEATURE_SCHEMA.version and set hash to ${hash}`);
    assert.equal(FEATURE_SCHEMA.version, 1);
    assert.equal(hash, '0a75c4abdac90f9c3eb3bc33120d0158c8ef8bc05a6bc2e0c315302686dbca18', 'version 1 is pinned: a different vector needs version 2');
  });

  it('names are unique snake_case with their params, and the warm-up is the longest look-back', () => {
    assert.equal(new Set(names).size, width);
    for (const n of names) assert.match(n, /^[a-z]+(_[a-z]+)*(_\d+)+$/, n);
    for (const n of ['rsi_14', 'macd_line_12_26_9', 'macd_signal_12_26_9', 'macd_hist_12_26_9', 'bb_pctb_20_2', 'bb_width_20_2', 'atr_14', 'atr_pct_14', 'adx_14', 'volume_z_20', 'ret_1', 'ret_24', 'rvol_24']) {
      assert.ok(names.includes(n), n);
    }
    const { window, lookback } = FEATURE_PARAMS.volPercentile;
    assert.equal(warmup, window + lookback - 1);
    assert.throws(() => featureIndex('rsi_15'), /unknown feature/);
    assert.ok(Object.isFrozen(FEATURE_SCHEMA) && Object.isFrozen(FEATURE_SCHEMA.names));
  });
});

describe('features: stream and batch', () => {
  for (const file of ['binanceusdm_BTC-USDT_1h.csv', 'synthetic_ADA-BTC_5m.csv', 'synthetic_XRP-ETH_1m.csv']) {
    it(`give bit-identical vectors over all of ${file}`, () => {
      const candles = recorded(file);
      const m = computeFeatureMatrix(candles);
      assert.equal(m.rowCount, candles.length - warmup);
      const stream = createFeatureStream();
      let k = 0;
      for (let i = 0; i < candles.length; i++) {
        const v = stream.push(candles[i]);
        if (i < warmup) {
          assert.equal(v, null);
          continue;
        }
        assert.ok(v, `vector at candle ${i}`);
        assert.equal(m.timestamps[k], candles[i].timestamp);
        const row = featureRow(m, k);
        for (let j = 0; j < width; j++) if (!Object.is(v[j], row[j])) assert.fail(`${file} candle ${i} ${names[j]}: stream ${v[j]} batch ${row[j]}`);
        k++;
      }
      assert.equal(k, m.rowCount);
      assert.equal(stream.count, candles.length);
    });
  }

  it('stream vectors are the caller\'s to keep (not a reused buffer)', () => {
    const candles = recorded('synthetic_ETH-BTC_5m.csv').slice(0, warmup + 3);
    const s = createFeatureStream();
    const out = candles.map((c) => s.push(c));
    assert.notEqual(out[warmup], out[warmup + 1]);
    assert.notDeepEqual(Array.from(out[warmup]!), Array.from(out[warmup + 1]!));
  });
});

describe('features against technicalindicators (the reference)', () => {
  const candles = recorded('binanceusdm_BTC-USDT_1h.csv');
  const n = candles.length;
  const close = candles.map((c) => c.close);
  const high = candles.map((c) => c.high);
  const low = candles.map((c) => c.low);
  const volume = candles.map((c) => c.volume);
  let m: FeatureMatrix;
  before(() => {
    m = computeFeatureMatrix(candles);
  });

  /** Every row of `name` within `rel` of the reference for its candle. */
  function expectColumn(name: string, reference: (i: number) => number, rel = 1e-9, abs = 1e-12) {
    const ours = col(m, name);
    let worst = 0;
    for (let k = 0; k < ours.length; k++) {
      const ref = reference(warmup + k);
      assert.ok(Number.isFinite(ref), `${name}: reference undefined at candle ${warmup + k}`);
      const err = Math.abs(ours[k] - ref);
      if (err > abs + rel * Math.abs(ref)) assert.fail(`${name} at candle ${warmup + k}: ours ${ours[k]} reference ${ref}`);
      worst = Math.max(worst, err);
    }
    return worst;
  }

  it('RSI: equal to the unrounded Wilder averages, and to the package RSI up to its 2-decimal rounding', () => {
    const p = FEATURE_PARAMS.rsiPeriod;
    const gain = tail(AverageGain.calculate({ period: p, values: close }), n);
    const loss = tail(AverageLoss.calculate({ period: p, values: close }), n);
    expectColumn(`rsi_${p}`, (i) => 100 - 100 / (1 + gain(i) / loss(i)));
    const rounded = tail(RSI.calculate({ period: p, values: close }), n);
    expectColumn(`rsi_${p}`, rounded, 0, 0.005 + 1e-9);
    // The package rounds; we deliberately do not (see lib/features/kernel.ts).
    assert.ok(col(m, `rsi_${p}`).some((v) => Math.round(v * 100) / 100 !== v));
  });

  it('MACD line, signal and histogram (EMA-based), each over close', () => {
    const { fast, slow, signal } = FEATURE_PARAMS.macd;
    const ref = tail(MACD.calculate({ values: close, fastPeriod: fast, slowPeriod: slow, signalPeriod: signal, SimpleMAOscillator: false, SimpleMASignal: false }), n);
    const s = `${fast}_${slow}_${signal}`;
    expectColumn(`macd_line_${s}`, (i) => ref(i).MACD! / close[i], 1e-9, 1e-15);
    expectColumn(`macd_signal_${s}`, (i) => ref(i).signal! / close[i], 1e-9, 1e-15);
    expectColumn(`macd_hist_${s}`, (i) => ref(i).histogram! / close[i], 1e-9, 1e-15);
  });

  it('Bollinger %B and width', () => {
    const { period, stdDev } = FEATURE_PARAMS.bollinger;
    const ref = tail(BollingerBands.calculate({ period, stdDev, values: close }), n);
    expectColumn(`bb_pctb_${period}_${stdDev}`, (i) => ref(i).pb, 1e-9, 1e-9);
    expectColumn(`bb_width_${period}_${stdDev}`, (i) => (ref(i).upper - ref(i).lower) / ref(i).middle);
  });

  it('ATR, in price and as a fraction of close', () => {
    const p = FEATURE_PARAMS.atrPeriod;
    const ref = tail(ATR.calculate({ period: p, high, low, close }), n);
    expectColumn(`atr_${p}`, ref);
    expectColumn(`atr_pct_${p}`, (i) => ref(i) / close[i]);
  });

  it('EMA gaps and slopes', () => {
    const L = FEATURE_PARAMS.emaSlopeLookback;
    for (const p of FEATURE_PARAMS.emaPeriods) {
      const ema = tail(EMA.calculate({ period: p, values: close }), n);
      expectColumn(`ema_gap_${p}`, (i) => close[i] / ema(i) - 1, 1e-9, 1e-13);
      expectColumn(`ema_slope_${p}_${L}`, (i) => Math.log(ema(i) / ema(i - L)) / L, 1e-7, 1e-15);
    }
  });

  it('ADX, +DI and -DI', () => {
    const p = FEATURE_PARAMS.adxPeriod;
    const ref = tail(ADX.calculate({ period: p, high, low, close }), n);
    expectColumn(`adx_${p}`, (i) => ref(i).adx);
    expectColumn(`di_plus_${p}`, (i) => ref(i).pdi);
    expectColumn(`di_minus_${p}`, (i) => ref(i).mdi);
  });

  it('volume z-score', () => {
    const p = FEATURE_PARAMS.volumeZPeriod;
    const mean = tail(SMA.calculate({ period: p, values: volume }), n);
    const sd = tail(SD.calculate({ period: p, values: volume }), n);
    expectColumn(`volume_z_${p}`, (i) => (volume[i] - mean(i)) / sd(i), 1e-7, 1e-9);
  });

  it('log returns, realized vol and its percentile (computed naively)', () => {
    const r = close.map((c, i) => (i === 0 ? NaN : Math.log(c / close[i - 1])));
    const rvol = (i: number, w: number) => Math.sqrt(r.slice(i - w + 1, i + 1).reduce((s, x) => s + x * x, 0) / w);
    for (const w of FEATURE_PARAMS.returnWindows) expectColumn(`ret_${w}`, (i) => Math.log(close[i] / close[i - w]), 0, 1e-15);
    for (const w of FEATURE_PARAMS.realizedVolWindows) expectColumn(`rvol_${w}`, (i) => rvol(i, w), 1e-12);
    const { window, lookback } = FEATURE_PARAMS.volPercentile;
    const rv = close.map((_, i) => (i >= window ? rvol(i, window) : NaN));
    expectColumn(`rvol_pctile_${window}_${lookback}`, (i) => {
      const hist = rv.slice(i - lookback + 1, i + 1);
      const less = hist.filter((x) => x < rv[i]).length;
      const equal = hist.filter((x) => x === rv[i]).length;
      return (less + 0.5 * (equal - 1)) / (lookback - 1);
    }, 0, 0);
  });

  it('covers every feature in the schema', () => {
    // Guards against a new feature added without a reference check above.
    const checked = ['rsi_14', 'macd_line_12_26_9', 'macd_signal_12_26_9', 'macd_hist_12_26_9', 'bb_pctb_20_2', 'bb_width_20_2', 'atr_14', 'atr_pct_14',
      'ema_gap_20', 'ema_gap_50', 'ema_gap_100', 'ema_slope_20_10', 'ema_slope_50_10', 'ema_slope_100_10', 'adx_14', 'di_plus_14', 'di_minus_14',
      'volume_z_20', 'ret_1', 'ret_4', 'ret_12', 'ret_24', 'rvol_4', 'rvol_12', 'rvol_24', 'rvol_pctile_24_480'];
    assert.deepEqual([...checked].sort(), [...names].sort());
  });
});

describe('features: no look-ahead', () => {
  it('rows up to t do not change when every candle after t changes', () => {
    const base = recorded('synthetic_ETH-USDT_1h.csv').slice(0, 2500);
    const before = computeFeatureMatrix(base);
    let seed = 7;
    const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    for (const t of [warmup, warmup + 1, 1200, 2498]) {
      const future = base.map((c, i) => {
        if (i <= t) return c;
        const f = 0.5 + rand();
        return { ...c, open: c.open * f, high: c.high * f * 1.01, low: c.low * f * 0.99, close: c.close * (0.5 + rand()), volume: c.volume * 3 * rand() };
      });
      const after = computeFeatureMatrix(future);
      const rowsUpToT = t - warmup + 1;
      for (let x = 0; x < rowsUpToT * width; x++) {
        if (!Object.is(before.values[x], after.values[x])) assert.fail(`t=${t}: ${names[x % width]} of candle ${warmup + Math.floor(x / width)} changed when only the future changed`);
      }
      // The mutation is real: the first row after t differs (so this test can fail).
      assert.ok(featureRow(after, rowsUpToT).some((v, j) => v !== featureRow(before, rowsUpToT)[j]), `t=${t}: mutation had no effect`);
    }
  });
});

describe('features: degenerate markets stay finite', () => {
  const bounded: [string, number, number][] = [['rsi_14', 0, 100], ['adx_14', 0, 100], ['di_plus_14', 0, 100], ['di_minus_14', 0, 100], ['rvol_pctile_24_480', 0, 1]];

  for (const file of ['synthetic_XRP-ETH_1m.csv', 'synthetic_XRP-ETH_5m.csv', 'synthetic_ADA-BTC_5m.csv', 'synthetic_BTC-USDT_5m.csv', 'synthetic_DOGE-USDT_1h.csv']) {
    it(`${file}: every value finite, bounded features in range`, () => {
      const m = computeFeatureMatrix(recorded(file));
      assert.ok(m.rowCount > 0);
      for (let x = 0; x < m.values.length; x++) if (!Number.isFinite(m.values[x])) assert.fail(`${names[x % width]} = ${m.values[x]} at row ${Math.floor(x / width)}`);
      for (const [name, lo, hi] of bounded) for (const v of col(m, name)) assert.ok(v >= lo && v <= hi, `${name} ${v}`);
    });
  }

  it('the illiquid XRP/ETH 1m file really has flat zero-volume windows (so the test above means something)', () => {
    const c = recorded('synthetic_XRP-ETH_1m.csv');
    assert.ok(c.filter((x) => x.volume === 0 && x.high === x.low).length > 1000);
    const m = computeFeatureMatrix(c);
    assert.ok(col(m, 'ret_1').filter((v) => v === 0).length > 1000);
  });

  it('a market that never moves and never trades gives neutral numbers, not NaN', () => {
    const flat = Array.from({ length: warmup + 50 }, (_, i) => ({ timestamp: 1e12 + i * 60_000, open: 0.1, high: 0.1, low: 0.1, close: 0.1, volume: 0 }));
    const m = computeFeatureMatrix(flat);
    const last = featureRow(m, m.rowCount - 1);
    const at = (n: string) => last[featureIndex(n)];
    assert.ok(Array.from(m.values).every(Number.isFinite));
    assert.equal(at('rsi_14'), 50);
    assert.equal(at('bb_pctb_20_2'), 0.5);
    assert.equal(at('volume_z_20'), 0);
    assert.equal(at('adx_14'), 0);
    assert.equal(at('rvol_pctile_24_480'), 0.5);
    assert.equal(at('ret_24'), 0);
    assert.equal(at('atr_pct_14'), 0);
  });

  it('a constant price with float-noise sums still reads as flat (%B 0.5, volume z 0)', () => {
    // 0.1 added twenty times is not 2: a naive std is ~1e-17, and %B would be noise-driven.
    const c = Array.from({ length: warmup + 5 }, (_, i) => ({ timestamp: 1e12 + i * 60_000, open: 0.1, high: 0.1 + (i % 2) * 1e-3, low: 0.1, close: 0.1, volume: 0.1 }));
    const last = featureRow(computeFeatureMatrix(c), 4);
    assert.equal(last[featureIndex('bb_pctb_20_2')], 0.5);
    assert.equal(last[featureIndex('volume_z_20')], 0);
  });
});

describe('features: live window versus full history', () => {
  it(`a window of FEATURE_SCHEMA.historyBars (${FEATURE_SCHEMA.historyBars}) candles reproduces the full-history vector`, () => {
    for (const file of ['binanceusdm_BTC-USDT_1h.csv', 'synthetic_ETH-USDT_5m.csv', 'synthetic_ADA-BTC_5m.csv']) {
      const all = recorded(file);
      const full = computeFeatureMatrix(all);
      for (const end of [2000, Math.floor(all.length / 2), all.length - 1]) {
        const window = computeFeatureMatrix(all.slice(end - FEATURE_SCHEMA.historyBars + 1, end + 1));
        const w = featureRow(window, window.rowCount - 1);
        const f = featureRow(full, end - warmup);
        for (let j = 0; j < width; j++) {
          // atr_14 is in price units: compare it relatively.
          const tol = names[j] === 'atr_14' ? 1e-6 * Math.abs(f[j]) : 1e-6 * Math.max(1, Math.abs(f[j]));
          assert.ok(Math.abs(w[j] - f[j]) <= tol, `${file} candle ${end} ${names[j]}: window ${w[j]} full ${f[j]}`);
        }
      }
    }
  });

  it('a window of only the warm-up would not (the EMAs have not settled)', () => {
    const all = recorded('binanceusdm_BTC-USDT_1h.csv');
    const end = 6000;
    const short = computeFeatureMatrix(all.slice(end - warmup, end + 1));
    const full = computeFeatureMatrix(all);
    const j = featureIndex('ema_gap_100');
    assert.ok(Math.abs(featureRow(short, 0)[j] - featureRow(full, end - warmup)[j]) > 1e-6);
  });
});

describe('features: candles the maths cannot take', () => {
  const good = () => recorded('synthetic_LTC-BTC_5m.csv').slice(0, warmup + 20);

  it('batch names the index of a NaN, non-positive, negative-volume or out-of-order candle', () => {
    const cases: [Partial<Candle>, RegExp][] = [[{ close: NaN }, /non-finite/], [{ low: 0 }, /price <= 0/], [{ volume: -1 }, /negative volume/], [{ timestamp: 0 }, /not after the previous/]];
    for (const [patch, why] of cases) {
      const c = good();
      c[510] = { ...c[510], ...patch };
      assert.throws(() => computeFeatureMatrix(c), (e: InvalidCandleError) => e instanceof InvalidCandleError && e.index === 510 && why.test(e.message), JSON.stringify(patch));
    }
  });

  it('the stream refuses a bad candle without corrupting its state', () => {
    const c = good();
    const clean = createFeatureStream();
    const hit = createFeatureStream();
    let a: Float64Array | null = null;
    let b: Float64Array | null = null;
    for (let i = 0; i < c.length; i++) {
      if (i === 505) {
        assert.throws(() => hit.push({ ...c[i], high: NaN }), InvalidCandleError);
        assert.throws(() => hit.push(c[i - 1]), /not after the previous/);
      }
      a = clean.push(c[i]);
      b = hit.push(c[i]);
    }
    assert.deepEqual(Array.from(b!), Array.from(a!));
  });

  it('accepts an inverted high/low (hygiene flags it; the maths stays finite)', () => {
    const c = good();
    c[510] = { ...c[510], high: c[510].low * 0.9 };
    assert.ok(Array.from(computeFeatureMatrix(c).values).every(Number.isFinite));
  });

  it('fewer candles than the warm-up give an empty matrix, not an error', () => {
    const m = computeFeatureMatrix(good().slice(0, warmup));
    assert.equal(m.rowCount, 0);
    assert.equal(m.values.length, 0);
    assert.throws(() => featureRow(m, 0), RangeError);
  });
});

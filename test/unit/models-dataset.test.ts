import assert from 'node:assert/strict';
import type { Candle } from '../../lib/candles';
import { checkCandles } from '../../lib/candle-hygiene';
import { computeFeatureMatrix, FEATURE_SCHEMA } from '../../lib/features';
import {
  buildDataset, DatasetError, MODEL_INPUT_NAMES, MODEL_INPUT_WIDTH, sliceDataset, splitDataset, toModelRow, walkForwardFolds, type Dataset, type RowRange,
} from '../../models/dataset';
import { readCandleCsv } from '../../infra/candle-files';
import { fixtureCandleFile } from '../../testkit/fixtures';

const load = (file: string, n?: number) => {
  const f = readCandleCsv(fixtureCandleFile(file));
  const candles = checkCandles(f.candles, f.timeframeMs).candles;
  return { candles: n ? candles.slice(0, n) : candles, tf: f.timeframeMs };
};
const HOUR = 3_600_000;

/** Asserts no label of `before` reads a candle at or after the first decision candle of `after`. */
function assertPurged(ds: Dataset, before: RowRange, after: RowRange, what: string) {
  assert.ok(before.end <= after.start, `${what}: ranges overlap`);
  assert.ok(ds.labelEnd[before.end - 1] < ds.timestamps[after.start], `${what}: last label ends ${ds.labelEnd[before.end - 1]}, next split starts ${ds.timestamps[after.start]}`);
  for (let r = before.start; r < before.end; r++) {
    if (ds.labelEnd[r] >= ds.timestamps[after.start]) assert.fail(`${what}: row ${r} label window crosses the boundary`);
  }
}

describe('models/dataset', () => {
  const btc = load('binanceusdm_BTC-USDT_1h.csv', 4000);

  it('drops warm-up rows and rows without a complete label window; no non-finite inputs', () => {
    const ds = buildDataset(btc.candles, btc.tf, { horizon: 4 });
    assert.equal(ds.timestamps[0], btc.candles[FEATURE_SCHEMA.warmup].timestamp);
    assert.equal(ds.rows, btc.candles.length - FEATURE_SCHEMA.warmup - 4);
    assert.equal(ds.labelEnd[ds.rows - 1], btc.candles[btc.candles.length - 1].timestamp);
    assert.equal(ds.width, MODEL_INPUT_WIDTH);
    assert.ok(ds.X.every(Number.isFinite), 'every input is finite');
  });

  it('labels are the forward return net of the round-trip cost, read only from candles after the decision', () => {
    const ds = buildDataset(btc.candles, btc.tf, { horizon: 6, roundTripCost: 0.003 });
    const byTime = new Map(btc.candles.map((c, i) => [c.timestamp, i]));
    let positives = 0;
    for (let r = 0; r < ds.rows; r += 7) {
      const i = byTime.get(ds.timestamps[r])!;
      const ret = Math.log(btc.candles[i + 6].close / btc.candles[i].close);
      assert.equal(ds.y[r], ret > -Math.log(1 - 0.003) ? 1 : 0, `row ${r}`);
      assert.equal(ds.labelEnd[r], ds.timestamps[r] + 6 * HOUR);
      positives += ds.y[r];
    }
    assert.ok(positives > 0, 'some positive labels');
  });

  it('labels are never among the features: inputs of a row depend only on candles up to its decision candle', () => {
    const ds = buildDataset(btc.candles, btc.tf, { horizon: 4 });
    assert.ok(!MODEL_INPUT_NAMES.some((n) => /label|forward|future|target/i.test(n)), 'no label-like input name');
    // Rewrite the future after candle t: every row decided at or before t keeps its inputs,
    // and some of those rows change label (the label is where the future is read).
    const t = 2500;
    const future: Candle[] = btc.candles.map((c, i) => (i <= t ? c : { ...c, open: c.open * 1.5, high: c.high * 1.5, low: c.low * 1.5, close: c.close * 1.5 }));
    const alt = buildDataset(future, btc.tf, { horizon: 4 });
    const cut = btc.candles[t].timestamp;
    let labelsChanged = 0;
    for (let r = 0; r < ds.rows && ds.timestamps[r] <= cut; r++) {
      for (let f = 0; f < ds.width; f++) {
        if (ds.X[r * ds.width + f] !== alt.X[r * ds.width + f]) assert.fail(`row ${r} input ${MODEL_INPUT_NAMES[f]} changed when only candles after ${t} did`);
      }
      if (ds.y[r] !== alt.y[r]) {
        labelsChanged++;
        assert.ok(ds.labelEnd[r] > cut, `row ${r}: label changed although its window ends before the rewrite`);
      }
    }
    assert.ok(labelsChanged > 0, 'the rewrite changed the labels whose window crosses it');
    // And a row equals the vector computed from a series that ends at its decision candle.
    const k = 1800;
    const i = btc.candles.findIndex((c) => c.timestamp === ds.timestamps[k]);
    const m = computeFeatureMatrix(btc.candles.slice(0, i + 1));
    const expected = toModelRow(m.values.subarray((m.rowCount - 1) * m.width, m.rowCount * m.width))!;
    assert.deepEqual(Array.from(ds.X.subarray(k * ds.width, (k + 1) * ds.width)), Array.from(expected));
  });

  it('skips rows whose label window crosses a gap in the data', () => {
    // 5m candles with one gap of 40 missing candles (testkit/fixtures.ts).
    const gappy = load('synthetic_ADA-BTC_5m.csv');
    const ds = buildDataset(gappy.candles, gappy.tf, { horizon: 4 });
    for (let r = 0; r < ds.rows; r++) assert.equal(ds.labelEnd[r] - ds.timestamps[r], 4 * gappy.tf, `row ${r}`);
    const complete = gappy.candles.length - FEATURE_SCHEMA.warmup - 4;
    assert.ok(ds.rows < complete, `gaps removed rows (${ds.rows} of ${complete})`);
  });

  it('splits are time-ordered and purged: no label window crosses a split boundary', () => {
    for (const horizon of [1, 4, 24]) {
      const ds = buildDataset(btc.candles, btc.tf, { horizon });
      const s = splitDataset(ds, { validation: 0.2, test: 0.2 });
      assert.equal(s.train.start, 0);
      assert.equal(s.test.end, ds.rows);
      assertPurged(ds, s.train, s.validation, `h=${horizon} train/validation`);
      assertPurged(ds, s.validation, s.test, `h=${horizon} validation/test`);
      assert.ok(s.validation.start - s.train.end >= horizon, `purge gap ${s.validation.start - s.train.end} >= horizon ${horizon}`);
      assert.ok(s.test.start - s.validation.end >= horizon, `purge gap ${s.test.start - s.validation.end} >= horizon ${horizon}`);
    }
  });

  it('walk-forward folds: expanding train, consecutive test blocks, every boundary purged', () => {
    const ds = buildDataset(btc.candles, btc.tf, { horizon: 12 });
    const folds = walkForwardFolds(ds, { folds: 4, initialFraction: 0.5 });
    assert.equal(folds.length, 4);
    assert.equal(folds[3].test.end, ds.rows);
    folds.forEach((f, k) => {
      assertPurged(ds, f.train, f.validation, `fold ${k} train/validation`);
      assertPurged(ds, f.validation, f.test, `fold ${k} validation/test`);
      if (k > 0) {
        assert.equal(f.test.start, folds[k - 1].test.end, `fold ${k} test follows fold ${k - 1}`);
        assert.ok(f.train.end > folds[k - 1].train.end, `fold ${k} trains on more rows`);
      }
    });
  });

  it('slices share buffers and refuse ranges outside the data', () => {
    const ds = buildDataset(btc.candles, btc.tf);
    const s = sliceDataset(ds, { start: 10, end: 20 });
    assert.equal(s.rows, 10);
    assert.equal(s.X[0], ds.X[10 * ds.width]);
    assert.throws(() => sliceDataset(ds, { start: 5, end: ds.rows + 1 }), DatasetError);
  });

  it('rejects bad options and too little data with clear errors', () => {
    assert.throws(() => buildDataset(btc.candles, btc.tf, { horizon: 0 }), /horizon must be a positive integer/);
    assert.throws(() => buildDataset(btc.candles, btc.tf, { roundTripCost: 1 }), /roundTripCost/);
    assert.throws(() => buildDataset(btc.candles, 0), /timeframeMs/);
    assert.throws(() => buildDataset(btc.candles.slice(0, FEATURE_SCHEMA.warmup + 2), btc.tf, { horizon: 4 }), /no complete rows/);
    const small = buildDataset(btc.candles.slice(0, FEATURE_SCHEMA.warmup + 150), btc.tf);
    assert.throws(() => splitDataset(small), /split has \d+ rows after purging/);
    assert.throws(() => splitDataset(small, { validation: 0.6, test: 0.5 }), /sum below 1/);
    assert.equal(toModelRow([1, 2, 3]), undefined);
  });
});

import assert from 'node:assert/strict';
import { CandleStore, CandleStoreError } from '../../ledger/candle-store';
import { candleSlots, intersectRanges, mergeRanges, runsOf, subtractRanges } from '../../lib/candle-ranges';
import type { Candle } from '../../lib/candles';
import { freshDatabase, type TestDatabase } from '../../testkit/db';

const H = 3_600_000;
const T0 = Date.UTC(2024, 0, 1);

/** Hourly candles opened at T0 + i hours, with prices that say which hour they are. */
function hours(...indexes: number[]): Candle[] {
  return indexes.map((i) => ({ timestamp: T0 + i * H, open: 100 + i, high: 102 + i, low: 99 + i, close: 101 + i, volume: 10 + i / 8 }));
}

describe('candle ranges (pure)', () => {
  it('merges overlapping and touching spans, subtracts and intersects', () => {
    assert.deepEqual(mergeRanges([{ from: 5, to: 7 }, { from: 0, to: 2 }, { from: 2, to: 3 }, { from: 6, to: 9 }, { from: 4, to: 4 }]), [
      { from: 0, to: 3 },
      { from: 5, to: 9 },
    ]);
    assert.deepEqual(subtractRanges([{ from: 0, to: 10 }], [{ from: 2, to: 3 }, { from: 5, to: 12 }, { from: -4, to: 1 }]), [
      { from: 1, to: 2 },
      { from: 3, to: 5 },
    ]);
    assert.deepEqual(subtractRanges([{ from: 0, to: 10 }], []), [{ from: 0, to: 10 }]);
    assert.deepEqual(subtractRanges([{ from: 0, to: 10 }], [{ from: 0, to: 10 }]), []);
    assert.deepEqual(intersectRanges([{ from: 0, to: 10 }], [{ from: 8, to: 20 }, { from: 1, to: 2 }]), [
      { from: 1, to: 2 },
      { from: 8, to: 10 },
    ]);
  });

  it('counts grid slots and finds runs of consecutive candles', () => {
    assert.equal(candleSlots({ from: T0, to: T0 + 3 * H }, H), 3);
    assert.equal(candleSlots({ from: T0 + 1, to: T0 + 3 * H }, H), 2, 'a span starting off the grid holds the candles opening after it');
    assert.equal(candleSlots({ from: T0 + 1, to: T0 + H }, H), 0);
    assert.deepEqual(runsOf([0, 1, 2, 5, 6, 9].map((i) => T0 + i * H), H), [
      { from: T0, to: T0 + 3 * H },
      { from: T0 + 5 * H, to: T0 + 7 * H },
      { from: T0 + 9 * H, to: T0 + 10 * H },
    ]);
  });
});

describe('candle store (real PostgreSQL)', function () {
  this.timeout(60_000); // starts this process's embedded PostgreSQL on first use
  let db: TestDatabase;
  let store: CandleStore;
  before(async () => {
    db = await freshDatabase();
    store = new CandleStore(db.sql);
  });
  after(() => db.drop());

  it('writes closed candles and reads them back exactly, by range', async () => {
    const odd = { timestamp: T0 + 7 * H, open: 0.1 + 0.2, high: 1e-7 + 0.5, low: 1.5e-8, close: 0.30000000000000004, volume: 123456789.12345678 };
    const r = await store.upsert('binance', 'BTC/USDT', '1h', [...hours(0, 1, 2, 3), odd]);
    assert.deepEqual(r, { inserted: 5, unchanged: 0, conflicts: [] });
    const back = await store.candles('binance', 'BTC/USDT', '1h');
    assert.deepEqual(back, [...hours(0, 1, 2, 3), odd], 'doubles survive numeric storage bit for bit');
    assert.deepEqual(await store.candles('binance', 'BTC/USDT', '1h', { since: T0 + H, until: T0 + 3 * H }), hours(1, 2), 'since inclusive, until exclusive');
    assert.deepEqual(await store.candles('binance', 'ETH/USDT', '1h'), []);
    assert.deepEqual(await store.candles('binance', 'BTC/USDT', '4h'), [], 'series are per timeframe');
  });

  it('is idempotent, and keeps the stored candle when a different one is offered for the same time', async () => {
    const again = await store.upsert('binance', 'BTC/USDT', '1h', hours(2, 3, 4));
    assert.deepEqual(again, { inserted: 1, unchanged: 2, conflicts: [] });
    const changed = { ...hours(4)[0], close: 999, high: 1000 };
    const r = await store.upsert('binance', 'BTC/USDT', '1h', [changed]);
    assert.equal(r.inserted, 0);
    assert.equal(r.unchanged, 0);
    assert.deepEqual(r.conflicts, [{ timestamp: changed.timestamp, stored: hours(4)[0], offered: changed }]);
    assert.deepEqual((await store.candles('binance', 'BTC/USDT', '1h', { since: T0 + 4 * H, until: T0 + 5 * H }))[0], hours(4)[0], 'first write wins');
  });

  it('refuses candles it must not hold, naming the candle, and writes nothing of that call', async () => {
    const before = (await store.candles('binance', 'BTC/USDT', '1h')).length;
    const bad: Array<[Candle[], RegExp]> = [
      [[{ ...hours(20)[0], timestamp: T0 + 20 * H + 1 }], /not on the timeframe's grid/],
      [[...hours(21), { ...hours(22)[0], high: 50 }], /2024-01-01T22:00:00.000Z: high\/low/],
      [[{ ...hours(23)[0], close: Number.NaN }], /not finite/],
      [[{ ...hours(23)[0], low: 0 }], /price <= 0/],
      [[...hours(24), ...hours(24)], /given twice/],
    ];
    for (const [candles, re] of bad) await assert.rejects(store.upsert('binance', 'BTC/USDT', '1h', candles), (e: unknown) => e instanceof CandleStoreError && re.test(e.message));
    await assert.rejects(store.upsert('Binance!', 'BTC/USDT', '1h', hours(1)), /ccxt exchange id/);
    await assert.rejects(store.upsert('binance', 'BTCUSDT', '1h', hours(1)), /market symbol/);
    await assert.rejects(store.upsert('binance', 'BTC/USDT', '1w', hours(1)), /up to 1d/);
    assert.equal((await store.candles('binance', 'BTC/USDT', '1h')).length, before);
  });

  it('knows what is missing: neither stored nor downloaded; gaps the exchange has are not missing', async () => {
    // Stored so far: hours 0-4 and 7. Downloaded spans: none yet.
    const day = { since: T0, until: T0 + 10 * H };
    assert.deepEqual(await store.runs('binance', 'BTC/USDT', '1h', day), [
      { from: T0, to: T0 + 5 * H },
      { from: T0 + 7 * H, to: T0 + 8 * H },
    ]);
    assert.deepEqual(await store.missing('binance', 'BTC/USDT', '1h', day), [
      { from: T0 + 5 * H, to: T0 + 7 * H },
      { from: T0 + 8 * H, to: T0 + 10 * H },
    ]);
    // A download of [8h, 12h) found hours 8, 9 and 11: hour 10 is the exchange's own gap.
    await store.upsert('binance', 'BTC/USDT', '1h', hours(8, 9, 11), { fetched: [{ from: T0 + 8 * H, to: T0 + 12 * H }] });
    assert.deepEqual(await store.missing('binance', 'BTC/USDT', '1h', { since: T0, until: T0 + 12 * H }), [{ from: T0 + 5 * H, to: T0 + 7 * H }]);
    // Downloaded spans merge when they touch or overlap.
    await store.upsert('binance', 'BTC/USDT', '1h', [], { fetched: [{ from: T0 + 12 * H, to: T0 + 13 * H }, { from: T0 + 6 * H, to: T0 + 9 * H }] });
    assert.deepEqual(await store.fetched('binance', 'BTC/USDT', '1h'), [{ from: T0 + 6 * H, to: T0 + 13 * H }]);
    assert.deepEqual(await store.missing('binance', 'BTC/USDT', '1h', { since: T0, until: T0 + 14 * H }), [
      { from: T0 + 5 * H, to: T0 + 6 * H },
      { from: T0 + 13 * H, to: T0 + 14 * H },
    ]);
  });

  it('reports coverage per series: extent, gaps (the exchange had none / never asked) and downloaded spans', async () => {
    await store.upsert('binance', 'ETH/USDT', '1h', hours(0, 1));
    await store.upsert('kraken', 'BTC/USD', '1h', [], { fetched: [{ from: T0, to: T0 + H }] });
    const all = await store.coverage();
    assert.deepEqual(
      all.map((s) => `${s.exchange} ${s.symbol} ${s.timeframe} ${s.candles}`),
      ['binance BTC/USDT 1h 9', 'binance ETH/USDT 1h 2', 'kraken BTC/USD 1h 0'],
    );
    const btc = all[0];
    assert.equal(btc.first, T0);
    assert.equal(btc.last, T0 + 11 * H);
    assert.deepEqual(btc.gaps, [
      { from: T0 + 5 * H, to: T0 + 7 * H, missing: 2, exchangeHasNone: false },
      { from: T0 + 10 * H, to: T0 + 11 * H, missing: 1, exchangeHasNone: true },
    ]);
    assert.deepEqual(btc.fetched, [{ from: T0 + 6 * H, to: T0 + 13 * H }]);
    assert.equal(all[2].first, null, 'a series with downloaded spans but no candles is listed');
    assert.deepEqual((await store.coverage({ exchange: 'binance', symbols: ['ETH/USDT'] })).map((s) => s.symbol), ['ETH/USDT']);
    assert.deepEqual(await store.coverage({ timeframe: '5m' }), []);
  });

  it('writes large batches in one transaction', async () => {
    const n = 12_345;
    const many = Array.from({ length: n }, (_, i) => ({ timestamp: T0 + i * 60_000, open: 1 + i, high: 2 + i, low: 0.5 + i, close: 1.5 + i, volume: i }));
    const r = await store.upsert('binance', 'SOL/USDT', '1m', many, { fetched: [{ from: T0, to: T0 + n * 60_000 }] });
    assert.equal(r.inserted, n);
    assert.deepEqual(await store.candles('binance', 'SOL/USDT', '1m'), many);
    assert.deepEqual(await store.missing('binance', 'SOL/USDT', '1m', { since: T0, until: T0 + n * 60_000 }), []);
  });
});

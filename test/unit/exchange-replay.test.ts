import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { BadSymbolError } from '../../lib/exchange/errors';
import { ReplayMarketData } from '../../lib/exchange/replay-market-data';
import { FIXTURE_OHLCV_DIR, fixtureCandleFile } from '../../testkit/fixtures';
import { readCandleCsv } from '../../infra/candle-files';
import { replayFromDirectory, replayFromFiles } from '../../infra/candle-files';

const BTC_1H = fixtureCandleFile('fixture_BTC-USDT_1h.csv');
const HOUR = 3_600_000;

describe('replay source over recorded candles', () => {
  const all = readCandleCsv(BTC_1H).candles;

  it('never returns a candle that had not closed at "now", and returns every one that had', async () => {
    const replay = replayFromFiles([BTC_1H]);
    const first = all[0].timestamp;
    const last = all[all.length - 1].timestamp;
    let seed = 3;
    const rand = () => ((seed = (seed * 48271) % 2147483647) / 2147483647);
    // Random instants, plus exact boundaries (where off-by-one errors live) and the data's ends.
    const nows = [first, first + HOUR - 1, first + HOUR, last + HOUR - 1, last + HOUR, last + 10 * HOUR];
    for (let i = 0; i < 300; i++) nows.push(first + Math.floor(rand() * (last - first + 2 * HOUR)), first + Math.floor(rand() * 5000) * HOUR);
    for (const now of nows) {
      replay.setNow(now);
      const closed = all.filter((c) => c.timestamp + HOUR <= now);
      const got = await replay.fetchCandles('BTC/USDT', '1h', undefined, 50);
      assert.ok(got.every((c) => c.timestamp + HOUR <= now), `look-ahead at ${now}`);
      assert.deepEqual(got, closed.slice(-50), `latest closed at ${new Date(now).toISOString()}`);
      const since = now - 30 * HOUR;
      const fromSince = await replay.fetchCandles('BTC/USDT', '1h', since, 10);
      assert.deepEqual(fromSince, closed.filter((c) => c.timestamp >= since).slice(0, 10));
    }
  });

  it('at a candle boundary, includes the candle that just closed and not the one that just opened', async () => {
    const k = 1000;
    const boundary = all[k].timestamp + HOUR; // == all[k + 1].timestamp when there is no gap
    assert.equal(all[k + 1].timestamp, boundary);
    const replay = replayFromFiles([BTC_1H], { now: () => boundary });
    const [latest] = await replay.fetchCandles('BTC/USDT', '1h', undefined, 1);
    assert.deepEqual(latest, all[k]);
    assert.deepEqual(await replay.fetchCandles('BTC/USDT', '1h', all[k + 1].timestamp), []);
  });

  it('reads symbol and timeframe from the file name, or takes them explicitly', async () => {
    const tmp = mkdtempSync(path.join(tmpdir(), 'replay-'));
    try {
      const file = path.join(tmp, 'recording.csv');
      writeFileSync(file, readFileSync(fixtureCandleFile('synthetic_XRP-ETH_5m.csv'), 'utf8'));
      assert.throws(() => replayFromFiles([file]), BadSymbolError);
      const replay = replayFromFiles([{ path: file, symbol: 'XRP/ETH', timeframe: '5m' }]);
      const candles = await replay.fetchCandles('XRP/ETH', '5m');
      assert.equal(candles.length, 712);
      assert.deepEqual(replay.listSeries(), [{ symbol: 'XRP/ETH', timeframe: '5m' }]);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });

  it('refuses a symbol recorded by two venues unless the exchange is chosen, and unknown series', async () => {
    const tmp = mkdtempSync(path.join(tmpdir(), 'replay-'));
    try {
      const text = readFileSync(fixtureCandleFile('synthetic_XRP-ETH_5m.csv'), 'utf8');
      writeFileSync(path.join(tmp, 'venuea_XRP-ETH_5m.csv'), text);
      writeFileSync(path.join(tmp, 'venueb_XRP-ETH_5m.csv'), text);
      const any = replayFromDirectory(tmp);
      await assert.rejects(any.fetchCandles('XRP/ETH', '5m', undefined, 1), (e: unknown) => e instanceof BadSymbolError && /several files/.test(e.message));
      const chosen = replayFromDirectory(tmp, { exchange: 'venueb' });
      assert.equal((await chosen.fetchCandles('XRP/ETH', '5m')).length, 712);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
    const futures = replayFromDirectory(FIXTURE_OHLCV_DIR, { exchange: 'binanceusdm' });
    const [series] = futures.listSeries();
    const [c] = await futures.fetchCandles(series.symbol, '1h', 0, 1);
    assert.equal(c.timestamp, Date.UTC(2020, 0, 1), 'first candle of the futures slice in test/fixtures/ohlcv');
    await assert.rejects(futures.fetchCandles('DOGE/USDT', '1h'), (e: unknown) => e instanceof BadSymbolError && !e.retryable);
    await assert.rejects(futures.fetchCandles(series.symbol, '4h'), BadSymbolError);
  });

  it('refuses out-of-order history instead of silently reordering it', async () => {
    const replay = new ReplayMarketData();
    assert.throws(() => replay.addCandles('A/B', '1m', [all[1], all[0]]), /out-of-order/);
    assert.throws(() => replay.addCandles('A/B', '1m', [all[0], all[0]]), /duplicate/);
  });
});

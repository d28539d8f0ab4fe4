import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { CandleCsvError, parseCandleCsv, parseCandleFileName } from '../../lib/candle-csv';
import { checkCandles, closedCandles, inferTimeframeMs, isCleanCandle, lastClosedOpenTime, type CandleIssueKind } from '../../lib/candle-hygiene';
import { Prng } from '../../lib/random';
import { Candle, msToTimeframe, timeframeToMs, TimeframeError } from '../../lib/candles';
import { readCandleCsv } from '../../infra/candle-files';
import { fixtureCandleFile } from '../../testkit/fixtures';


interface ManifestEntry {
  file: string;
  exchange: string;
  symbol: string;
  timeframe: string;
  rows: number;
  first_ms: number;
  last_ms: number;
  gap_events: number;
  missing_intervals: number;
}
/** The fixture files (test/fixtures/ohlcv/README.md; the generated ones from testkit/fixtures.ts). */
const manifest: ManifestEntry[] = [
  { file: 'binanceusdm_BTC-USDT_1h.csv', exchange: 'binanceusdm', symbol: 'BTC/USDT:USDT', timeframe: '1h', rows: 8784, first_ms: 1577836800000, last_ms: 1609455600000, gap_events: 0, missing_intervals: 0 },
  { file: 'synthetic_ETH-USDT_1h.csv', exchange: 'synthetic', symbol: 'ETH/USDT', timeframe: '1h', rows: 3000, first_ms: 1577836800000, last_ms: 1577836800000 + 2999 * 3_600_000, gap_events: 0, missing_intervals: 0 },
  { file: 'synthetic_ADA-BTC_5m.csv', exchange: 'synthetic', symbol: 'ADA/BTC', timeframe: '5m', rows: 5720, first_ms: Date.UTC(2018, 0, 10), last_ms: Date.UTC(2018, 0, 10) + 5759 * 300_000, gap_events: 1, missing_intervals: 40 },
];
const recorded = new Map<string, ReturnType<typeof readCandleCsv>>();
const readRecorded = (file: string) => recorded.get(file) ?? recorded.set(file, readCandleCsv(fixtureCandleFile(file))).get(file)!;

const H = 3_600_000;
const T0 = Date.UTC(2024, 0, 1);
/** A clean synthetic hourly series. */
function series(n: number, tf = H): Candle[] {
  return Array.from({ length: n }, (_, i) => {
    const open = 100 + i;
    return { timestamp: T0 + i * tf, open, high: open + 2, low: open - 1, close: open + 1, volume: 10 + i };
  });
}
const kinds = (issues: { kind: CandleIssueKind }[]) => issues.map((i) => i.kind);

describe('timeframes', () => {
  it('parses ccxt timeframes to milliseconds and back', () => {
    assert.equal(timeframeToMs('1m'), 60_000);
    assert.equal(timeframeToMs('5m'), 300_000);
    assert.equal(timeframeToMs('1h'), 3_600_000);
    assert.equal(timeframeToMs('4h'), 14_400_000);
    assert.equal(timeframeToMs('1d'), 86_400_000);
    assert.equal(timeframeToMs('1w'), 604_800_000);
    assert.equal(timeframeToMs('30s'), 30_000);
    assert.equal(msToTimeframe(300_000), '5m');
    assert.equal(msToTimeframe(14_400_000), '4h');
    assert.equal(msToTimeframe(86_400_000), '1d');
  });

  it('refuses malformed and variable-length timeframes with a reason', () => {
    for (const bad of ['', 'h', '0m', '-1h', '1.5h', '1H', '5 m', '1x']) assert.throws(() => timeframeToMs(bad), TimeframeError, bad);
    assert.throws(() => timeframeToMs('1M'), /months and years have no fixed length/);
  });
});

describe('Candle schema', () => {
  it('accepts a candle and rejects NaN, Infinity, fractional or missing timestamps', () => {
    assert.ok(Candle.safeParse(series(1)[0]).success);
    for (const bad of [{ close: NaN }, { high: Infinity }, { timestamp: 1.5 }, { timestamp: undefined }]) {
      assert.equal(Candle.safeParse({ ...series(1)[0], ...bad }).success, false, JSON.stringify(bad));
    }
  });
});

describe('candle CSV', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'candles-test-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));
  const write = (name: string, text: string) => {
    const p = path.join(dir, name);
    writeFileSync(p, text);
    return p;
  };

  it('reads every recorded file with the manifest row count, range and identity', () => {
    for (const m of manifest) {
      const f = readRecorded(m.file);
      assert.equal(f.candles.length, m.rows, m.file);
      assert.equal(f.candles[0].timestamp, m.first_ms, m.file);
      assert.equal(f.candles.at(-1)!.timestamp, m.last_ms, m.file);
      assert.deepEqual([f.exchange, f.symbol, f.timeframe], [m.exchange, m.symbol, m.timeframe], m.file);
      assert.equal(f.lines[0], 2, 'line numbers count the header');
    }
  });

  it('keeps the source numbers exactly', () => {
    const f = readCandleCsv(fixtureCandleFile('binanceusdm_BTC-USDT_1h.csv'));
    // The slice's first row as written there: 1577836800000,7189.43,7190.52,7170.15,7171.55,2449.049
    assert.deepEqual(f.candles[0], { timestamp: 1577836800000, open: 7189.43, high: 7190.52, low: 7170.15, close: 7171.55, volume: 2449.049 });
  });

  it('derives identity from the file name, and explicit overrides win', () => {
    assert.deepEqual(parseCandleFileName('/x/bittrex_ADA-BTC_5m.csv'), { exchange: 'bittrex', symbol: 'ADA/BTC', timeframe: '5m' });
    assert.deepEqual(parseCandleFileName('binanceusdm_BTC-USDT_1h.csv'), { exchange: 'binanceusdm', symbol: 'BTC/USDT:USDT', timeframe: '1h' });
    assert.equal(parseCandleFileName('btc.csv'), undefined);
    const p = write('data.csv', 'timestamp,open,high,low,close,volume\n1700000000000,1,2,0.5,1.5,3\n');
    assert.throws(() => readCandleCsv(p), (e: CandleCsvError) => e.missing === 'timeframe' && /cannot tell the timeframe/.test(e.message));
    assert.throws(() => readCandleCsv(p, { timeframe: '1h' }), (e: CandleCsvError) => e.missing === 'symbol');
    const f = readCandleCsv(p, { timeframe: '15m', symbol: 'ETH/USDT', exchange: 'kraken' });
    assert.deepEqual([f.exchange, f.symbol, f.timeframe, f.timeframeMs], ['kraken', 'ETH/USDT', '15m', 900_000]);
    const named = write('binance_SOL-USDT_1h.csv', 'timestamp,open,high,low,close,volume\n1700000000000,1,2,0.5,1.5,3\n');
    assert.equal(readCandleCsv(named, { timeframe: '4h' }).timeframeMs, 4 * H);
    assert.throws(() => readCandleCsv(named, { symbol: 'SOLUSDT' }), /symbol 'SOLUSDT'/);
    assert.throws(() => readCandleCsv(named, { timeframe: '1M' }), /months/);
  });

  it('accepts any column order, CRLF, a BOM and blank lines', () => {
    const { candles, lines } = parseCandleCsv('\uFEFFvolume,close,low,high,open,timestamp,extra\r\n\r\n7,1.5,0.5,2,1,1700000000000,x\r\n\r\n');
    assert.deepEqual(candles, [{ timestamp: 1700000000000, open: 1, high: 2, low: 0.5, close: 1.5, volume: 7 }]);
    assert.deepEqual(lines, [3]);
  });

  it('names file and line of every bad row', () => {
    const text = [
      'timestamp,open,high,low,close,volume',
      '1700000000000,1,2,0.5,1.5,3',
      '1700003600000,1,2,0.5,,3', // empty close
      '1700007200000,1,2,0.5,NaN,3',
      '1700010800000,1,2,0.5,1.5', // short row
      '1700014400,1,2,0.5,1.5,3', // seconds
      '1700018000000.5,1,2,0.5,1.5,3',
      '1700021600000,1,2,0.5,1e400,3',
    ].join('\n');
    const p = write('binance_BTC-USDT_1h.csv', text);
    assert.throws(
      () => readCandleCsv(p),
      (e: CandleCsvError) => {
        assert.ok(e instanceof CandleCsvError);
        assert.equal(e.line, 3);
        assert.match(e.message, /^6 bad row\(s\)/);
        for (const [line, why] of [[3, /close '' is not a finite number/], [4, /close 'NaN'/], [5, /expected 6 fields, found 5/], [6, /looks like epoch seconds/], [7, /not an integer/], [8, /close '1e400'/]] as const) {
          assert.match(e.message, new RegExp(`${p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:${line}: `));
          assert.match(e.message.split('\n').find((l) => l.includes(`:${line}: `))!, why);
        }
        return true;
      },
    );
  });

  it('reports a missing file, a bad header and an empty file clearly', () => {
    assert.throws(() => readCandleCsv(path.join(dir, 'binance_BTC-USDT_1h-missing.csv')), /no such file/);
    assert.throws(() => parseCandleCsv('time,open,high,low,close\n1,2,3,4,5', 'f.csv'), /f\.csv:1: header .* lacks column\(s\) timestamp, volume/);
    assert.throws(() => parseCandleCsv('', 'f.csv'), /empty file/);
    assert.throws(() => parseCandleCsv('timestamp,open,high,low,close,volume\n', 'f.csv'), /no candle rows/);
  });
});

describe('candle hygiene', () => {
  it('passes a clean series untouched', () => {
    const input = series(50);
    const check = checkCandles(input, H);
    assert.deepEqual(check.issues, []);
    assert.deepEqual(check.candles, input);
    assert.ok(check.tradable.every(Boolean));
  });

  it('closedCandles drops the candle still forming, and only it', () => {
    const c = series(3);
    const closeOfLast = c[2].timestamp + H;
    assert.equal(closedCandles(c, closeOfLast, H).length, 3, 'closed exactly at open + tf');
    assert.equal(closedCandles(c, closeOfLast - 1, H).length, 2, 'one ms earlier it is still forming');
    assert.equal(closedCandles(c, c[0].timestamp, H).length, 0);
    const check = checkCandles(c, H, { nowMs: closeOfLast - 1 });
    assert.equal(check.candles.length, 2);
    assert.deepEqual(kinds(check.issues), ['unclosed']);
    assert.equal(check.issues[0].repaired, true);
  });

  it('sorts out-of-order rows (a safe repair)', () => {
    const c = series(6);
    const shuffled = [c[0], c[2], c[1], c[3], c[5], c[4]];
    const check = checkCandles(shuffled, H);
    assert.deepEqual(check.candles, c);
    assert.deepEqual(kinds(check.issues), ['out_of_order', 'out_of_order']);
    assert.ok(check.issues.every((i) => i.repaired));
    assert.deepEqual(check.issues.map((i) => [i.inputIndex, i.index]), [[2, 1], [5, 4]]);
    assert.deepEqual(check.inputIndex, [0, 2, 1, 3, 5, 4]);
    assert.ok(check.tradable.every(Boolean));
  });

  it('drops exact duplicates (a safe repair)', () => {
    const c = series(4);
    const check = checkCandles([c[0], c[1], { ...c[1] }, c[2], c[3], { ...c[3] }], H);
    assert.deepEqual(check.candles, c);
    assert.deepEqual(kinds(check.issues), ['duplicate', 'duplicate']);
    assert.ok(check.issues.every((i) => i.repaired && i.index === -1));
    assert.ok(check.tradable.every(Boolean));
  });

  it('does not repair conflicting duplicates: keeps the first received, untradable', () => {
    const c = series(4);
    const other = { ...c[2], close: c[2].close + 0.5 };
    const check = checkCandles([c[0], c[1], c[2], other, c[3]], H);
    assert.deepEqual(check.candles, c);
    assert.deepEqual(kinds(check.issues), ['conflicting_duplicate']);
    assert.equal(check.issues[0].repaired, false);
    assert.deepEqual(check.tradable, [true, true, false, true]);
    // Arrival order decides which is "first", also when the rows come unsorted.
    const reversed = checkCandles([c[0], other, c[1], c[2], c[3]], H);
    assert.equal(reversed.candles[2], other);
    assert.equal(reversed.tradable[2], false);
  });

  it('reports gaps without filling them; the candle after a gap is untradable', () => {
    const c = series(10);
    const gappy = [...c.slice(0, 3), ...c.slice(6)];
    const check = checkCandles(gappy, H);
    assert.equal(check.candles.length, 7);
    assert.deepEqual(kinds(check.issues), ['gap']);
    assert.equal(check.issues[0].missingCandles, 3);
    assert.equal(check.issues[0].timestamp, c[6].timestamp);
    assert.deepEqual(check.tradable, [true, true, true, false, true, true, true]);
  });

  it('flags candles off the timeframe grid', () => {
    const c = series(5);
    c[2] = { ...c[2], timestamp: c[2].timestamp + 60_000 };
    const check = checkCandles(c, H);
    // The hour it should have filled is missing from the grid, so the next candle follows a gap.
    assert.deepEqual(kinds(check.issues), ['off_grid', 'gap']);
    assert.deepEqual(check.tradable, [true, true, false, false, true]);
  });

  it('knows weekly candles open on Mondays (the grid phase comes from the data)', () => {
    const monday = Date.UTC(2024, 0, 1); // 2024-01-01 was a Monday; epoch 0 was a Thursday
    const week = timeframeToMs('1w');
    const c = Array.from({ length: 8 }, (_, i) => ({ ...series(1)[0], timestamp: monday + i * week }));
    assert.notEqual(monday % week, 0);
    assert.deepEqual(checkCandles(c, week).issues, []);
  });

  it('flags each kind of bad value and marks only that candle untradable', () => {
    const cases: [Partial<Candle>, CandleIssueKind[]][] = [
      [{ close: NaN }, ['non_finite']],
      [{ volume: Infinity }, ['non_finite']],
      [{ low: 0 }, ['non_positive_price']],
      [{ open: -101 }, ['non_positive_price', 'low_above_body']],
      [{ volume: -1 }, ['negative_volume']],
      [{ high: 90, low: 95, open: 92, close: 93 }, ['high_below_low', 'high_below_body', 'low_above_body']],
      [{ high: 101.5 }, ['high_below_body']], // close is 103
      [{ low: 102.5 }, ['low_above_body']], // open is 102
    ];
    for (const [patch, expected] of cases) {
      const c = series(5);
      c[2] = { ...c[2], ...patch };
      const check = checkCandles(c, H);
      assert.deepEqual(kinds(check.issues).sort(), [...expected].sort(), JSON.stringify(patch));
      assert.ok(check.issues.every((i) => !i.repaired && i.index === 2), JSON.stringify(patch));
      assert.deepEqual(check.tradable, [true, true, false, true, true], JSON.stringify(patch));
    }
  });

  it('accepts zero volume and flat candles (an illiquid market is not bad data)', () => {
    const c = series(3);
    c[1] = { ...c[1], open: 5, high: 5, low: 5, close: 5, volume: 0 };
    assert.deepEqual(checkCandles(c, H).issues, []);
  });

  it('drops rows whose open time cannot be placed', () => {
    const c = series(3);
    const check = checkCandles([c[0], { ...c[1], timestamp: NaN }, c[2]], H);
    assert.deepEqual(kinds(check.issues), ['bad_timestamp', 'gap']);
    assert.equal(check.candles.length, 2);
  });

  it('reports a stale series: the newest closed candle is missing at decision time', () => {
    const c = series(5);
    const lastClose = c[4].timestamp + H;
    assert.deepEqual(checkCandles(c, H, { nowMs: lastClose + H - 1 }).issues, [], 'the next candle is still forming');
    const stale = checkCandles(c, H, { nowMs: lastClose + 2 * H });
    assert.deepEqual(kinds(stale.issues), ['stale']);
    assert.equal(stale.issues[0].missingCandles, 2);
    assert.equal(stale.tradable[4], false);
    assert.equal(lastClosedOpenTime(lastClose + 2 * H, H), c[4].timestamp + 2 * H);
  });

  it('infers the real spacing of a series', () => {
    assert.equal(inferTimeframeMs(series(10, 300_000)), 300_000);
    assert.equal(inferTimeframeMs(series(1)), undefined);
  });

  it('isCleanCandle says yes exactly when checkCandles finds nothing in the pair (random pairs, each flaw alone)', () => {
    const rng = new Prng(20261202);
    const H = 3_600_000;
    const flaws: Array<(p: Candle, c: Candle, ctx: { now: number }) => void> = [
      () => undefined,
      (_p, c) => void (c.timestamp += H), // a gap
      (_p, c) => void (c.timestamp -= H), // a duplicate time
      (_p, c) => void (c.timestamp -= 2 * H), // out of order
      (_p, c) => void (c.timestamp += 1), // off the grid
      (_p, c) => void (c.timestamp += 0.5), // not an integer
      (p) => void (p.timestamp = Number.NaN),
      (_p, c) => void (c.high = c.low - 1), // high below low
      (_p, c) => void (c.high = Math.max(c.open, c.close) - 0.01),
      (_p, c) => void (c.low = Math.min(c.open, c.close) + 0.01),
      (_p, c) => void (c.volume = -1),
      (_p, c) => void (c.volume = 0), // allowed
      (p) => void (p.close = 0),
      (p) => void (p.open = Number.POSITIVE_INFINITY),
      (_p, c) => void (c.close = Number.NaN),
      (_p, _c, ctx) => void (ctx.now -= 1), // the candle is still forming
      (_p, _c, ctx) => void (ctx.now += H), // stale: a newer candle has closed
      (_p, _c, ctx) => void (ctx.now += H - 1), // still fresh
    ];
    let clean = 0;
    for (let n = 0; n < 2_000; n++) {
      const t = 1_600_000_000_000 - (1_600_000_000_000 % H) + rng.int(0, 10_000) * H;
      const make = (ts: number): Candle => {
        const open = 100 + rng.next() * 10;
        const close = 100 + rng.next() * 10;
        return { timestamp: ts, open, close, high: Math.max(open, close) + rng.next(), low: Math.min(open, close) - rng.next(), volume: rng.next() * 5 };
      };
      const prev = make(t - H);
      const cur = make(t);
      const ctx = { now: t + H + rng.int(0, 3) * (H / 4) };
      if (ctx.now >= t + 2 * H) ctx.now = t + H;
      flaws[n % flaws.length](prev, cur, ctx);
      for (const previous of [prev, undefined]) {
        const check = checkCandles(previous ? [previous, cur] : [cur], H, { nowMs: ctx.now });
        const expected = check.issues.length === 0;
        assert.equal(isCleanCandle(cur, previous, H, ctx.now), expected, `flaw ${n % flaws.length}, ${previous ? 'pair' : 'alone'}: ${JSON.stringify(check.issues.map((i) => i.kind))}`);
        if (expected) clean++;
      }
    }
    assert.ok(clean > 500 && clean < 3_500, `both answers are exercised (${clean} clean of 4,000)`);
  });

  it('finds exactly the gaps the manifest lists in every recorded file, and nothing else', () => {
    for (const m of manifest) {
      const f = readRecorded(m.file);
      const check = checkCandles(f.candles, f.timeframeMs);
      const gaps = check.issues.filter((i) => i.kind === 'gap');
      assert.equal(gaps.length, m.gap_events, m.file);
      assert.equal(gaps.reduce((n, g) => n + g.missingCandles!, 0), m.missing_intervals, m.file);
      assert.deepEqual(check.issues.filter((i) => i.kind !== 'gap'), [], m.file);
      assert.equal(check.tradable.filter((t) => !t).length, m.gap_events, m.file);
    }
  });
});

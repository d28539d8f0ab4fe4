import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { runFeaturesCommand, type FeaturesCommandIo } from '../../client/commands/features';
import { UsageError } from '../../infra/errors';
import { computeFeatureMatrix, FEATURE_SCHEMA } from '../../lib/features';
import { classifyRegime, REGIMES } from '../../lib/regime';
import { readCandleCsv } from '../../infra/candle-files';
import { fixtureCandleFile } from '../../testkit/fixtures';

const REPO = path.join(__dirname, '..', '..');
const { warmup, width, names } = FEATURE_SCHEMA;

function quietIo(now = Date.now()): FeaturesCommandIo & { notes: string[]; infos: string[] } {
  const notes: string[] = [];
  const infos: string[] = [];
  return { notes, infos, info: (l) => infos.push(l), warn: (l) => notes.push(l), nowMs: () => now };
}

function readOutput(file: string): { header: string[]; rows: string[][] } {
  const lines = readFileSync(file, 'utf8').trimEnd().split('\n');
  return { header: lines[0].split(','), rows: lines.slice(1).map((l) => l.split(',')) };
}

describe('trader features', function () {
  this.timeout(60_000); // each test runs the `trader` CLI as a child process (seconds to start)
  let dir: string;
  before(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'features-cmd-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));
  const candleFile = (name: string, rows: string[]) => {
    const p = path.join(dir, name);
    writeFileSync(p, ['timestamp,open,high,low,close,volume', ...rows, ''].join('\n'));
    return p;
  };
  /** `n` clean hourly rows as CSV lines. */
  const hourly = (n: number, t0 = Date.UTC(2024, 0, 1)) =>
    Array.from({ length: n }, (_, i) => {
      const [open, close] = [100 + (i % 7), 100 + (i % 5)];
      return `${t0 + i * 3_600_000},${open},${Math.max(open, close) + 2},${Math.min(open, close) - 1},${close},${10 + (i % 3)}`;
    });
  const rejects = (opts: object, why: RegExp) => assert.rejects(runFeaturesCommand(opts, quietIo()), (e: Error) => e instanceof UsageError && why.test(e.message));

  it('writes timestamp, every feature and the regime for each candle after warm-up (gappy synthetic ADA/BTC)', async () => {
    const data = fixtureCandleFile('synthetic_ADA-BTC_5m.csv');
    const out = path.join(dir, 'ada.csv');
    const io = quietIo();
    const result = await runFeaturesCommand({ data, out }, io);
    const candles = readCandleCsv(data).candles;
    assert.equal(result.rows, candles.length - warmup);
    assert.deepEqual(result.issues, { gap: 1 });
    assert.match(io.notes.join('\n'), /1 gap\(s\), 40 missing candle\(s\)/);
    assert.match(io.infos.join('\n'), new RegExp(`wrote ${result.rows} rows x ${width} features \\(schema v1 ${FEATURE_SCHEMA.hash.slice(0, 12)}\\)`));

    const { header, rows } = readOutput(out);
    assert.deepEqual(header, ['timestamp', ...names, 'regime', 'regime_confidence']);
    assert.equal(rows.length, result.rows);
    const m = computeFeatureMatrix(candles);
    for (let k = 0; k < rows.length; k++) {
      const r = rows[k];
      assert.equal(Number(r[0]), candles[warmup + k].timestamp);
      // Full precision: the CSV holds exactly the numbers the backtest computes.
      for (let j = 0; j < width; j++) if (Number(r[j + 1]) !== m.values[k * width + j]) assert.fail(`row ${k} ${names[j]}: ${r[j + 1]}`);
      const regime = classifyRegime(m.values.subarray(k * width, (k + 1) * width));
      assert.equal(r[width + 1], regime.label);
      assert.equal(Number(r[width + 2]), regime.confidence);
    }
    assert.ok(REGIMES.every((label) => rows.some((r) => r[width + 1] === label)));
  });

  it('illiquid XRP/ETH 1m: no NaN or Infinity in the output', async () => {
    const out = path.join(dir, 'xrp.csv');
    await runFeaturesCommand({ data: fixtureCandleFile('synthetic_XRP-ETH_1m.csv'), out }, quietIo());
    const { rows } = readOutput(out);
    assert.equal(rows.length, 3560 - warmup);
    for (const r of rows) for (const cell of r.slice(1, width + 1)) assert.ok(Number.isFinite(Number(cell)) && cell !== '', cell);
  });

  it('takes symbol and timeframe for a file that does not follow the naming convention', async () => {
    const data = candleFile('mydata.csv', hourly(warmup + 3));
    await rejects({ data, out: path.join(dir, 'o.csv') }, /cannot tell the timeframe .* with --timeframe/);
    const result = await runFeaturesCommand({ data, out: path.join(dir, 'o.csv'), timeframe: '1h', symbol: 'BTC/USDT' }, quietIo());
    assert.equal(result.rows, 3);
  });

  it('repairs what is safe (order, exact duplicates) and says so', async () => {
    const rows = hourly(warmup + 10);
    [rows[100], rows[101]] = [rows[101], rows[100]];
    rows.splice(200, 0, rows[199]);
    const data = candleFile('binance_BTC-USDT_1h.csv', rows);
    const io = quietIo();
    const result = await runFeaturesCommand({ data, out: path.join(dir, 'r.csv') }, io);
    assert.equal(result.rows, 10);
    assert.match(io.notes.join('\n'), /sorted 1 out-of-order row\(s\); dropped 1 exact duplicate row\(s\)/);
  });

  it('drops a trailing candle that has not closed yet', async () => {
    const rows = hourly(warmup + 5);
    const lastOpen = Number(rows.at(-1)!.split(',')[0]);
    const io = quietIo(lastOpen + 1_000);
    const result = await runFeaturesCommand({ data: candleFile('binance_ETH-USDT_1h.csv', rows), out: path.join(dir, 'u.csv') }, io);
    assert.equal(result.rows, 4);
    assert.match(io.notes.join('\n'), /dropped 1 candle\(s\) not closed yet/);
  });

  it('stops with file:line on candles it must not use, and writes nothing', async () => {
    const rows = hourly(warmup + 10);
    const [ts] = rows[300].split(',');
    rows.splice(301, 0, `${ts},1,2,0.5,1.5,3`); // conflicting duplicate on file line 303
    rows[400] = rows[400].replace(/^(\d+),(\S+?),(\S+?),/, '$1,$2,50,'); // high below low, file line 402
    const data = candleFile('binance_LTC-USDT_1h.csv', rows);
    const out = path.join(dir, 'bad.csv');
    await rejects({ data, out }, new RegExp(`3 problem\\(s\\) make candles unusable[\\s\\S]*binance_LTC-USDT_1h.csv:303: conflicting_duplicate[\\s\\S]*:402: high_below_low`));
    assert.equal(existsSync(out), false);
    assert.deepEqual(readdirSync(dir).filter((f) => f.includes('.tmp-')), []);
  });

  it('rejects bad arguments and files with a clear message', async () => {
    const out = path.join(dir, 'x.csv');
    const good = fixtureCandleFile('synthetic_XRP-ETH_5m.csv');
    await rejects({ data: path.join(dir, 'binance_BTC-USDT_1h_nope.csv'), out, timeframe: '1h', symbol: 'BTC/USDT' }, /no such file/);
    await rejects({ data: candleFile('binance_BTC-USDT_4h.csv', ['1700000000000,1,2,0.5,abc,3']), out }, /binance_BTC-USDT_4h.csv:2: close 'abc' is not a finite number/);
    await rejects({ data: good, out, timeframe: '1h' }, /mostly 5m apart but the timeframe is 1h/);
    await rejects({ data: good, out, timeframe: '1 hour' }, /--timeframe: a timeframe is/);
    await rejects({ data: good, out, symbol: 'XRPETH' }, /--symbol: a market symbol/);
    await rejects({ data: good, out: good }, /refusing to overwrite/);
    await rejects({ data: good, out: path.join(dir, 'no', 'such', 'dir.csv') }, /its directory does not exist/);
    await rejects({ data: candleFile('binance_BTC-USDT_1d.csv', hourly(50).map((l, i) => l.replace(/^\d+/, String(Date.UTC(2024, 0, 1) + i * 86_400_000)))), out }, /50 candle\(s\); the features need 504/);
    await rejects({ out }, /--data/);
  });

  describe('through the trader CLI', () => {
    const trader = (...args: string[]) => spawnSync(process.execPath, [path.join(REPO, 'bin', 'trader.js'), 'features', ...args], { cwd: REPO, encoding: 'utf8', timeout: 60_000 });
    before(function () {
      if (!existsSync(path.join(REPO, 'client', 'cli.ts'))) this.skip();
    });

    it('exits 0 and writes the file', () => {
      const out = path.join(dir, 'cli.csv');
      const r = trader('--data', fixtureCandleFile('synthetic_XRP-ETH_5m.csv'), '--out', out);
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /wrote 209 rows x 26 features/);
      assert.equal(readOutput(out).rows.length, 712 - warmup);
    });

    it('exits 2 with the message on a bad file or missing arguments', () => {
      const bad = trader('--data', path.join(dir, 'missing_X-Y_1h.csv'), '--out', path.join(dir, 'y.csv'));
      assert.equal(bad.status, 2);
      assert.match(bad.stderr, /error: .*missing_X-Y_1h.csv: cannot read candle file: no such file/);
      const noOut = trader('--data', fixtureCandleFile('synthetic_XRP-ETH_5m.csv'));
      assert.equal(noOut.status, 2);
      assert.match(noOut.stderr, /required option '--out <file>'/);
    });
  });
});

import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { runDataDownload, runDataList, type DataCommandDeps, type DataCommandIo } from '../../client/commands/data';
import { ExchangeResilience } from '../../activities/exchange/resilience';
import { createTradingExchange } from '../../activities/exchange';
import { candleStoreSink } from '../../activities/market-data';
import { readCandleCsv } from '../../infra/candle-files';
import { createLogger } from '../../infra/logger';
import { Interrupted, UsageError } from '../../infra/errors';
import { CandleStore } from '../../ledger/candle-store';
import { alignDown } from '../../lib/candle-ranges';
import { InMemoryPaperStateStore } from '../../lib/exchange/paper-state';
import type { Candle } from '../../lib/candles';
import { freshDatabase, testLog, type TestDatabase } from '../../testkit/db';
import { ExchangeStandin } from '../../testkit/exchange-standin';
import { sampledMarketCandles } from '../../testkit/candles';

/**
 * `trader data download` and `trader data list` with the real ccxt binance client against the
 * local stand-in of Binance's REST API (reached through EXCHANGE_API_URL, the endpoint override),
 * the real candle store in PostgreSQL, and generated candles: nothing outside the repository.
 */

const REPO = path.resolve(__dirname, '..', '..');
const silent = createLogger({ level: 'silent' });
const H = 3_600_000;
const M = 60_000;
const NOW = Date.now();
const H_END = alignDown(NOW, H); // the end of the last closed hour
const M_END = alignDown(NOW, M);

// BTC/USDT 1h: 1,000 closed hours and the one forming now.
const BTC = sampledMarketCandles('BTC/USDT', H, H_END - 1000 * H, 1001, 0);
// ETH/USDT 1m: 5,000 closed minutes with an outage of 10 minutes and one broken candle, and the forming one.
const ETH_FIRST = M_END - 5000 * M;
const ETH_ALL = sampledMarketCandles('ETH/USDT', M, ETH_FIRST, 5001, 1);
const ETH_HOLE = { from: 3000, to: 3010 };
const ETH_BROKEN = 4000;
const ETH = ETH_ALL.filter((_, i) => i < ETH_HOLE.from || i >= ETH_HOLE.to).map((c) => (c.timestamp === ETH_ALL[ETH_BROKEN].timestamp ? { ...c, high: c.low * 0.99 } : c));
// SOL/USDT 1m: 4,000 clean closed minutes, for the interrupted run.
const SOL_FIRST = M_END - 4000 * M;
const SOL = sampledMarketCandles('SOL/USDT', M, SOL_FIRST, 4000, 2);

function quietIo(): DataCommandIo & { lines: string[] } {
  const lines: string[] = [];
  return { lines, bars: false, info: (l) => lines.push(l), warn: (l) => lines.push(l) };
}

describe('trader data download / list (ccxt against a local exchange stand-in)', function () {
  this.timeout(120_000); // `trader data download` as a child process against a local exchange stand-in
  let standin: ExchangeStandin;
  let home: string;
  const dbs: TestDatabase[] = [];

  before(async () => {
    standin = await ExchangeStandin.start({
      markets: [
        { candles: BTC, symbol: 'BTC/USDT', timeframe: '1h' },
        { candles: ETH, symbol: 'ETH/USDT', timeframe: '1m' },
        { candles: SOL, symbol: 'SOL/USDT', timeframe: '1m' },
      ],
      now: NOW,
    });
    home = fs.mkdtempSync(path.join(os.tmpdir(), 'dt-data-'));
  });
  after(async () => {
    await standin.close();
    for (const db of dbs) await db.drop();
    fs.rmSync(home, { recursive: true, force: true });
  });
  beforeEach(() => {
    standin.clearFaults();
    standin.clearLog();
    standin.now = NOW;
  });

  async function database(): Promise<TestDatabase> {
    const db = await freshDatabase();
    dbs.push(db);
    return db;
  }

  function deps(db: TestDatabase, over: Partial<DataCommandDeps> = {}): DataCommandDeps {
    return {
      config: () => ({ exchange: { id: 'binance', sandbox: false, apiUrl: standin.url }, symbols: ['BTC/USDT'], timeframe: '1h', databaseUrl: db.url, home, postgresPort: 1 }),
      sql: db.sql,
      exchange: { timeoutMs: 1000, resilience: new ExchangeResilience('binance-test', { maxRetries: 3, initialDelayMs: 20, maxDelayMs: 100, breakerThreshold: 50 }, silent) },
      now: () => NOW,
      ...over,
    };
  }

  const klines = () => standin.calls('/api/v3/klines');
  const startTimes = () => klines().map((r) => Number(r.query.startTime));

  it('pages through the range with since and limit, stores closed candles only, and a second run asks for nothing', async () => {
    const db = await database();
    const out = path.join(home, 'csv');
    const since = H_END - 1000 * H;
    const io = quietIo();
    const [r] = await runDataDownload({ symbols: 'BTC/USDT', timeframe: '1h', since: String(since), until: 'now', out }, io, deps(db, { pageSize: 300 }));
    assert.equal(r.inserted, 1000);
    assert.equal(r.requests, 4);
    assert.deepEqual(startTimes(), [0, 300, 600, 900].map((k) => since + k * H), 'each page starts after the last candle of the one before');
    assert.deepEqual(klines().map((q) => q.query.limit), ['300', '300', '300', '100'], 'the last page asks only for what is left');
    const stored = await new CandleStore(db.sql).candles('binance', 'BTC/USDT', '1h');
    assert.deepEqual(stored, BTC.slice(0, 1000), 'exactly the closed candles, bit for bit; the forming one is not stored');
    assert.match(io.lines.join('\n'), /binance BTC\/USDT 1h .*: 1000 new candle\(s\) in 4 request\(s\); 1000 were missing/);

    // --out: the conventional CSV of the range, which the file readers take as it is.
    const file = path.join(out, 'binance_BTC-USDT_1h.csv');
    assert.deepEqual(readCandleCsv(file).candles, stored);
    assert.equal(readCandleCsv(file).symbol, 'BTC/USDT');

    standin.clearLog();
    const [again] = await runDataDownload({ symbols: 'BTC/USDT', timeframe: '1h', since: String(since) }, quietIo(), deps(db, { pageSize: 300 }));
    assert.deepEqual([again.missingBefore, again.requests, again.inserted], [0, 0, 0]);
    assert.equal(klines().length, 0, 'resumable: nothing is asked twice');
  });

  it('retries a 429 and a timeout in the middle of the download, and stores every candle once', async () => {
    const db = await database();
    standin.inject({ path: '/api/v3/klines', skip: 1, fault: { kind: 'status', status: 429 } });
    standin.inject({ path: '/api/v3/klines', skip: 2, fault: { kind: 'delay', ms: 2500 } });
    const since = H_END - 1000 * H;
    const [r] = await runDataDownload({ symbols: 'BTC/USDT', timeframe: '1h', since: String(since), until: String(H_END) }, quietIo(), deps(db, { pageSize: 200 }));
    assert.equal(r.inserted, 1000);
    const log = klines();
    const faulted = log.map((q, i) => ({ i, kind: q.faulted })).filter((x) => x.kind);
    assert.deepEqual(faulted.map((f) => f.kind), ['status', 'delay'], 'the stand-in answered 429 once and stalled once');
    for (const f of faulted) {
      assert.ok(f.i > 0 && f.i < log.length - 1, 'mid-way');
      assert.equal(log[f.i + 1].query.startTime, log[f.i].query.startTime, 'the same page is asked again');
      assert.equal(log[f.i + 1].faulted, undefined);
    }
    const answered = log.filter((q) => !q.faulted).map((q) => q.query.startTime);
    assert.equal(new Set(answered).size, answered.length, 'no page was fetched twice');
    assert.equal(answered.length, 5);
    assert.deepEqual(await new CandleStore(db.sql).candles('binance', 'BTC/USDT', '1h'), BTC.slice(0, 1000));
  });

  it('keeps broken candles out and asks for them again; an outage of the exchange is a gap it does not ask for again', async () => {
    const db = await database();
    const args = { symbols: 'ETH/USDT', timeframe: '1m', since: String(ETH_FIRST), until: String(M_END) };
    const [r] = await runDataDownload(args, quietIo(), deps(db));
    assert.equal(r.inserted, 5000 - 10 - 1);
    assert.deepEqual(r.rejected.map((i) => [i.kind, i.timestamp]), [['high_below_low', ETH_ALL[ETH_BROKEN].timestamp]]);
    assert.deepEqual(
      (await new CandleStore(db.sql).candles('binance', 'ETH/USDT', '1m')).map((c) => c.timestamp),
      ETH.filter((c) => c.timestamp < M_END && c.timestamp !== ETH_ALL[ETH_BROKEN].timestamp).map((c) => c.timestamp),
    );

    const io = quietIo();
    const [coverage] = await runDataList({ symbols: 'ETH/USDT' }, io, deps(db));
    assert.deepEqual(
      coverage.gaps.map((g) => [g.from, g.missing, g.exchangeHasNone]),
      [
        [ETH_ALL[ETH_HOLE.from].timestamp, 10, true],
        [ETH_ALL[ETH_BROKEN].timestamp, 1, false],
      ],
    );
    const text = io.lines.join('\n');
    assert.match(text, /binance\s+ETH\/USDT\s+1m\s+4989\s/);
    assert.match(text, /10 candle\(s\)\s+the exchange has none/);
    assert.match(text, /1 candle\(s\)\s+not downloaded/);

    standin.clearLog();
    const [again] = await runDataDownload(args, quietIo(), deps(db));
    assert.equal(again.missingBefore, 1, 'only the broken candle is missing; the outage is known');
    assert.deepEqual(startTimes(), [ETH_ALL[ETH_BROKEN].timestamp]);
    assert.equal(again.rejected.length, 1, 'still broken at the exchange: still kept out');
  });

  it('stops after the page in flight on Ctrl-C (abort), keeps what it stored, and the next run finishes the rest', async () => {
    const db = await database();
    standin.inject({ path: '/api/v3/klines', times: 100, fault: { kind: 'delay', ms: 300 } });
    const ctl = new AbortController();
    const args = { symbols: 'SOL/USDT', timeframe: '1m', since: String(SOL_FIRST), until: String(M_END) };
    const run = runDataDownload(args, quietIo(), deps(db, { signal: ctl.signal, pageSize: 500 }));
    while (klines().length === 0) await new Promise((r) => setTimeout(r, 10));
    ctl.abort(); // while the first page is in flight
    await assert.rejects(run, (e: unknown) => e instanceof Interrupted && /run the same command again to resume/.test(e.message));
    const store = new CandleStore(db.sql);
    assert.deepEqual(await store.candles('binance', 'SOL/USDT', '1m'), SOL.slice(0, 500), 'the page in flight was stored, nothing after it');
    assert.equal(klines().length, 1);

    standin.clearFaults();
    standin.clearLog();
    const [r] = await runDataDownload(args, quietIo(), deps(db, { pageSize: 500 }));
    assert.equal(r.inserted, 3500);
    assert.equal(startTimes()[0], SOL_FIRST + 500 * M);
    assert.deepEqual(await store.candles('binance', 'SOL/USDT', '1m'), SOL);
  });

  it('resumes after the process is killed mid-way, without asking for a stored page again (trader data download, EXCHANGE_API_URL)', async () => {
    const db = await database();
    // Slow pages, so the kill lands between them.
    standin.inject({ path: '/api/v3/klines', times: 100, fault: { kind: 'delay', ms: 400 } });
    const env = { ...process.env, DATABASE_URL: db.url, EXCHANGE: 'binance', EXCHANGE_API_URL: standin.url, TRADER_HOME: home, LOG_LEVEL: 'warn' };
    const args = ['data', 'download', '--symbols', 'SOL/USDT', '--timeframe', '1m', '--since', String(SOL_FIRST), '--until', String(M_END)];
    const child = spawn(process.execPath, [path.join(REPO, 'bin', 'trader.js'), ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const store = new CandleStore(db.sql);
    const deadline = Date.now() + 60_000;
    while ((await store.candles('binance', 'SOL/USDT', '1m')).length < 1000) {
      assert.ok(Date.now() < deadline && child.exitCode === null, `the first page never landed:\n${output}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    const kept = await store.candles('binance', 'SOL/USDT', '1m');
    assert.ok(kept.length >= 1000 && kept.length < 4000 && kept.length % 1000 === 0, `whole pages only: ${kept.length}`);
    assert.deepEqual(kept, SOL.slice(0, kept.length));

    standin.clearFaults();
    standin.clearLog();
    const second = await promisify(execFile)(process.execPath, [path.join(REPO, 'bin', 'trader.js'), ...args], { env });
    assert.match(second.stdout, new RegExp(`binance SOL/USDT 1m .*: ${4000 - kept.length} new candle\\(s\\)`));
    assert.equal(startTimes()[0], SOL_FIRST + kept.length * M, 'the second run starts where the first stopped');
    assert.ok(startTimes().every((t) => t >= SOL_FIRST + kept.length * M), 'no stored page is asked for again');
    assert.deepEqual(await store.candles('binance', 'SOL/USDT', '1m'), SOL, 'every candle once');
  });

  it('refuses a symbol the exchange does not list, an unknown timeframe and a bad date with exit code 2 and a clear message', async () => {
    const db = await database();
    const env = { ...process.env, DATABASE_URL: db.url, EXCHANGE: 'binance', EXCHANGE_API_URL: standin.url, TRADER_HOME: home, LOG_LEVEL: 'warn' };
    const trader = (args: string[]) =>
      new Promise<{ code: number | null; stderr: string }>((resolve) => {
        execFile(process.execPath, [path.join(REPO, 'bin', 'trader.js'), 'data', 'download', ...args], { env }, (err, _stdout, stderr) => resolve({ code: err ? (err as { code?: number }).code ?? 1 : 0, stderr }));
      });
    const bad = await trader(['--symbols', 'BTC/USDT,DOGE/USDT', '--timeframe', '1h', '--since', '2d']);
    assert.equal(bad.code, 2, bad.stderr);
    assert.match(bad.stderr, /error: binance does not list DOGE\/USDT/);
    const tf = await trader(['--symbols', 'BTC/USDT', '--timeframe', '7m', '--since', '2d']);
    assert.equal(tf.code, 2, tf.stderr);
    assert.match(tf.stderr, /binance has no 7m candles \(it offers .*1h/);
    const when = await trader(['--symbols', 'BTC/USDT', '--since', 'last tuesday']);
    assert.equal(when.code, 2, when.stderr);
    assert.match(when.stderr, /--since 'last tuesday': expected a date/);
    assert.equal(klines().length, 0, 'nothing was downloaded');
    assert.deepEqual(await new CandleStore(db.sql).coverage(), [], 'nothing was stored');
    // The same checks in-process, as UsageError.
    await assert.rejects(runDataDownload({ symbols: 'BTC/USDT', since: '2024-02-01', until: '2024-01-01' }, quietIo(), deps(db)), (e: unknown) => e instanceof UsageError && /not before --until/.test(e.message));
    await assert.rejects(runDataDownload({ exchange: 'notanexchange', symbols: 'BTC/USDT', since: '2d' }, quietIo(), deps(db)), (e: unknown) => e instanceof UsageError && /not a ccxt exchange id/.test(e.message));
  });

  it('the live loop stores the closed candles it reads (paper trading through createTradingExchange)', async () => {
    const db = await database();
    standin.now = Date.now();
    const store = new CandleStore(db.sql);
    const exchange = createTradingExchange({
      exchange: { id: 'binance', sandbox: false, apiUrl: standin.url },
      dryRun: true,
      paper: { account: 'live-loop', store: new InMemoryPaperStateStore(), timeframe: '1m', initialBalances: { USDT: 1000 }, log: testLog },
      candleSink: candleStoreSink(store, 'binance', testLog),
    });
    const read: Candle[] = await exchange.fetchCandles('BTC/USDT', '1h', undefined, 3);
    assert.equal(read.length, 3);
    const stored = await store.candles('binance', 'BTC/USDT', '1h');
    assert.ok(stored.length >= 3);
    assert.deepEqual(stored.slice(-3), read, 'what the loop decided on is what the store holds');
    assert.ok(stored.every((c) => c.timestamp + H <= Date.now()), 'closed candles only');
  });
});

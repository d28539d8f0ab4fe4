import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { chartsDrawn, findChromium, withChromium } from '../../testkit/chromium';
import { regimeCandles, writeCandleFile } from '../../testkit/candles';
import { openDatabase } from '../../infra/postgres';
import { createLogger } from '../../infra/logger';
import { CandleStore } from '../../ledger/candle-store';
import { readCandleCsv } from '../../infra/candle-files';
import { embeddedStackEnv } from '../../testkit/trader-process';

/**
 * `trader report --from-ledger` on the ledger of a real replay: `trader up --replay` runs the
 * symbol workflows over generated candles on the Temporal dev server with the embedded
 * PostgreSQL, then the report reads that ledger, as an operator would, through the CLI. Its
 * trades are the ledger's (`trader trades --json`), with the stops and targets of their entry
 * orders, and the page opens cleanly in headless Chromium.
 */

const run = promisify(execFile);
const REPO = path.resolve(__dirname, '..', '..');

describe('trader report --from-ledger (after a replay through Temporal)', function () {
  this.timeout(600_000); // a replay through `trader up` before the report is read from the ledger
  let dir: string;
  let env: NodeJS.ProcessEnv;
  let files: string[];
  const trader = (args: string[]) => run(process.execPath, [path.join(REPO, 'bin', 'trader.js'), ...args], { env, cwd: dir, maxBuffer: 64 * 1024 * 1024 });

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dt-ledger-report-'));
    fs.chmodSync(dir, 0o755); // the embedded PostgreSQL runs as `postgres` when we are root
    files = [
      writeCandleFile(dir, { exchange: 'binance', symbol: 'BTC/USDT', timeframe: '1h' }, regimeCandles({ seed: 31, count: 1300, startPrice: 30_000 })),
      writeCandleFile(dir, { exchange: 'binance', symbol: 'ETH/USDT', timeframe: '1h' }, regimeCandles({ seed: 32, count: 1300, startPrice: 2_000 })),
    ];
    env = await embeddedStackEnv(path.join(dir, 'home'), {
      STRATEGY: 'rules',
      INITIAL_CAPITAL: '10000',
    });
    const up = await trader(['up', '--replay', ...files, '--strategy', 'rules', '--exit-when-done']);
    assert.match(up.stdout, /Replay finished/, `up --replay did not finish:\n${up.stdout}\n${up.stderr}`);
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('reports the ledger\'s trades with their stops and targets, equity marked on the candles, and opens cleanly', async function () {
    const ledger = JSON.parse((await trader(['trades', '--json'])).stdout) as Array<{ symbol: string; entryTime: number; exitTime: number; pnl: number }>;
    assert.ok(ledger.length >= 5, `the replay should trade (got ${ledger.length} trades)`);
    const html = path.join(dir, 'account.html');
    const json = path.join(dir, 'account.json');
    const out = await trader(['report', '--from-ledger', '--data', ...files, '--out', html, '--json', json, '--monte-carlo', '300', '--seed', '2']);
    assert.match(out.stdout, /Account report: ledger_replay/);
    assert.match(out.stdout, /open trades marked at each candle close/);
    const report = JSON.parse(fs.readFileSync(json, 'utf8')) as {
      trades: Array<{ symbol: string; entryTime: number; exitTime: number; pnl: number; stopPrice: number | null; targetPrice: number | null; entryPrice: number }>;
      metrics: { trades: number; finalEquity: number; initialEquity: number };
      monteCarlo: { runs: number; trades: number };
    };
    assert.deepEqual(report.trades.map((t) => [t.symbol, t.entryTime, t.exitTime]), ledger.map((t) => [t.symbol, t.entryTime, t.exitTime]), 'the ledger\'s trades, in exit order');
    for (const t of report.trades) {
      assert.ok(t.stopPrice !== null && t.stopPrice < t.entryPrice, 'the stop placed at entry, below it');
      assert.ok(t.targetPrice !== null && t.targetPrice > t.entryPrice, 'the target placed at entry, above it');
    }
    const realized = ledger.reduce((a, t) => a + t.pnl, 0);
    assert.ok(Math.abs(report.metrics.finalEquity - (10_000 + realized)) < 1e-6, 'no position open at the end: the curve ends at capital + realized PnL');
    assert.equal(report.monteCarlo.trades, ledger.length);

    const chromiumPath = findChromium();
    if (!chromiumPath) {
      if (process.env.REQUIRE_CHROMIUM) assert.fail('REQUIRE_CHROMIUM is set but there is no Chromium binary');
      console.log('      SKIPPED the browser half: no Chromium binary (apt-get install chromium)');
      return;
    }
    await withChromium(chromiumPath, async (context) => {
      const page = await context.newPage();
      const problems: string[] = [];
      const requests: string[] = [];
      page.on('console', (m) => m.type() === 'error' && problems.push(m.text()));
      page.on('pageerror', (e) => problems.push(e.message));
      page.on('request', (r) => requests.push(r.url()));
      await page.goto(`file://${html}`);
      assert.equal(await chartsDrawn(page), 'drawn');
      assert.equal(await page.locator('#trades tbody tr').count(), ledger.length);
      assert.equal(await page.locator('.chart.candles').count(), 2);
      assert.deepEqual(problems, []);
      assert.deepEqual(requests, [`file://${html}`]);
    });
  });

  it('without --data, reads the candles from the candle store', async () => {
    // A replay from files does not store its candles; put them where live trading would have.
    const db = await openDatabase({ home: env.TRADER_HOME!, port: Number(env.POSTGRES_PORT), database: 'ledger_replay', log: createLogger({ level: 'warn' }) });
    try {
      const store = new CandleStore(db.sql);
      for (const f of files) {
        const c = readCandleCsv(f);
        await store.upsert('binance', c.symbol, c.timeframe, c.candles);
      }
    } finally {
      await db.close();
    }
    const json = path.join(dir, 'from-store.json');
    const out = await trader(['report', '--from-ledger', '--replay', '--out', path.join(dir, 'from-store.html'), '--json', json]);
    assert.match(out.stdout, /open trades marked at each candle close \(BTC\/USDT 1h from the candle store \(binance\), ETH\/USDT 1h from the candle store \(binance\)\)/);
    const report = JSON.parse(fs.readFileSync(json, 'utf8')) as { metrics: { buyAndHoldReturn: number | null } };
    assert.notEqual(report.metrics.buyAndHoldReturn, null, 'buy and hold priced from the stored candles');
  });

  it('refuses what it cannot do with a clear message and exit code 2', async () => {
    for (const [args, why] of [
      [['report', '--out', path.join(dir, 'x.html')], /give --from-ledger/],
      [['report', '--from-ledger', '--out', files[0], '--data', files[0]], /refusing to overwrite candles/],
      [['report', '--from-ledger', '--out', path.join(dir, 'x.html'), '--seed', '3'], /--seed goes with --monte-carlo/],
      [['report', '--from-ledger', '--out', path.join(dir, 'x.html'), '--monte-carlo', '0'], /--monte-carlo '0'/],
      [['report', '--from-ledger', '--out', path.join(dir, 'x.html'), '--data', path.join(dir, 'missing_BTC-USDT_1h.csv')], /no such file/],
    ] as Array<[string[], RegExp]>) {
      const err = await trader(args).then(() => undefined, (e: { code: number; stderr: string }) => e);
      assert.ok(err, `${args.join(' ')} should fail`);
      assert.equal(err.code, 2, `${args.join(' ')}: exit code`);
      assert.match(err.stderr, why);
    }
  });
});

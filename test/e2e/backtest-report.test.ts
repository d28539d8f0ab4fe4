import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runBacktestCommand, type BacktestCommandIo } from '../../client/commands/backtest';
import { UsageError } from '../../infra/errors';
import { chartsDrawn, findChromium, withChromium } from '../../testkit/chromium';
import { regimeCandles, writeCandleFile } from '../../testkit/candles';

/**
 * `trader backtest --report`: the HTML a trader opens, checked in a real headless Chromium (the
 * installed binary, see helpers/chromium.ts): it loads from disk with no console error and no
 * network request, every chart draws (a canvas with pixels on it), and the trade table lists every
 * trade of the JSON. Candles are generated (seeded), so the test needs no data beside the repo.
 */

// The page callbacks below run in Chromium (playwright sends their source); this program is
// compiled without the DOM library, so the little of it they use is declared here.
interface PageCanvas { width: number; height: number; getContext(kind: '2d'): { getImageData(x: number, y: number, w: number, h: number): { data: Uint8ClampedArray } } | null }
interface PageElement { id: string; getAttribute(name: string): string | null; querySelectorAll(sel: 'canvas'): ArrayLike<PageCanvas> }
declare const document: { querySelectorAll(sel: string): ArrayLike<PageElement> };

const config = () => ({ strategy: 'rules' as const, risk: { initialCapital: 10_000, maxPositionSize: 0.05, stopLossPct: 0.02, takeProfitPct: 0.04, maxDrawdown: 0.15 } });
const quiet = (): BacktestCommandIo => ({ info: () => undefined, warn: () => undefined });

describe('trader backtest --report and --monte-carlo', function () {
  this.timeout(180_000); // the `trader` CLI as a child process and Chromium rendering the report
  let dir: string;
  let files: string[];
  let report: string;
  let json: { trades: unknown[]; statistics: Record<string, unknown>; monteCarlo: Record<string, unknown>; metrics: { trades: number } };

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'report-'));
    files = [
      writeCandleFile(dir, { exchange: 'binance', symbol: 'BTC/USDT', timeframe: '1h' }, regimeCandles({ seed: 11, count: 2500, startPrice: 30_000 })),
      writeCandleFile(dir, { exchange: 'binance', symbol: 'ETH/USDT', timeframe: '1h' }, regimeCandles({ seed: 12, count: 2500, startPrice: 2_000 })),
    ];
    report = path.join(dir, 'report.html');
    const out = path.join(dir, 'bt.json');
    await runBacktestCommand({ data: files, strategy: 'rules', json: out, report, monteCarlo: '400', seed: '5' }, quiet(), { config });
    json = JSON.parse(fs.readFileSync(out, 'utf8'));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('is one self-contained file: the chart library is inlined and nothing names an outside resource to load', () => {
    const html = fs.readFileSync(report, 'utf8');
    assert.match(html, /TradingView Lightweight Charts™ v\d+\.\d+\.\d+/, 'the library is inlined with its licence banner');
    assert.doesNotMatch(html, /<script[^>]+src=/i, 'no external script');
    assert.doesNotMatch(html, /<link[^>]+href="(?!data:)/i, 'no stylesheet, font or icon from elsewhere');
    assert.doesNotMatch(html, /url\(\s*['"]?https?:/i, 'no CSS url() to the network');
    assert.doesNotMatch(html, /@import|@font-face/i);
  });

  it('opens in headless Chromium with no console error and no network request, draws every chart, and lists every trade', async function () {
    const chromiumPath = findChromium();
    if (!chromiumPath) {
      const why = 'no Chromium binary (looked at CHROMIUM_PATH, /usr/bin/chromium, /usr/bin/chromium-browser, /usr/bin/google-chrome); install it with `apt-get install chromium`';
      if (process.env.REQUIRE_CHROMIUM) assert.fail(`REQUIRE_CHROMIUM is set but there is ${why}`);
      console.log(`      SKIPPED: ${why}`);
      this.skip();
    }
    assert.ok(json.trades.length > 10, `the seeded market should make trades (got ${json.trades.length})`);
    await withChromium(chromiumPath, async (context) => {
      const page = await context.newPage();
      const problems: string[] = [];
      const requests: string[] = [];
      page.on('console', (m) => {
        if (m.type() === 'error') problems.push(`console.error: ${m.text()}`);
      });
      page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
      page.on('request', (r) => requests.push(r.url()));
      const url = `file://${report}`;
      await page.goto(url, { waitUntil: 'load' });
      assert.equal(await chartsDrawn(page), 'drawn');
      // Let the charts paint their first frames before reading the canvases.
      await page.waitForTimeout(500);

      const inked = await page.evaluate(() =>
        Array.from(document.querySelectorAll('.chart')).map((chart) => {
          let most = 0;
          for (const canvas of Array.from(chart.querySelectorAll('canvas'))) {
            const ctx = canvas.getContext('2d');
            if (!ctx || canvas.width === 0 || canvas.height === 0) continue;
            const px = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
            let n = 0;
            for (let i = 0; i < px.length; i += 4) if (px[i + 3] > 0 && (px[i] < 240 || px[i + 1] < 240 || px[i + 2] < 240)) n++;
            most = Math.max(most, n);
          }
          return { id: chart.id || `candles ${chart.getAttribute('data-chart')}`, inked: most };
        }),
      );
      assert.equal(inked.length, 4, 'equity, drawdown and one candle chart per symbol');
      for (const c of inked) assert.ok(c.inked > 2_000, `chart ${c.id} is blank (${c.inked} inked pixels)`);

      const rows = await page.locator('#trades tbody tr').count();
      assert.equal(rows, json.trades.length, 'one row per trade of the JSON');
      assert.equal(await page.locator('#monte-carlo tbody tr').count(), 4);
      assert.ok((await page.locator('#monthly-returns tbody tr').count()) >= 1);
      assert.deepEqual(problems, [], problems.join('\n'));
      assert.deepEqual(requests, [url], `requests beyond the file itself:\n${requests.join('\n')}`);

      const shot = process.env.REPORT_SCREENSHOT ?? path.join(dir, 'report.png');
      await page.screenshot({ path: shot });
      assert.ok(fs.statSync(shot).size > 10_000, 'a screenshot with something on it');
      if (process.env.REPORT_SCREENSHOT) console.log(`      screenshot: ${shot}`);
    });
  });

  it('the JSON carries freqtrade\'s figures and the Monte Carlo bands, the same for the same seed', async () => {
    for (const k of ['cagr', 'marketChange', 'maxConsecutiveWins', 'maxConsecutiveLosses', 'winnersAverageDurationMs', 'losersAverageDurationMs', 'bestTrade', 'worstTrade', 'bestDay', 'worstDay', 'monthlyReturns', 'bySymbol', 'byExitReason']) {
      assert.ok(k in json.statistics, `statistics has ${k}`);
    }
    const mc = json.monteCarlo as { runs: number; seed: number; trades: number; bootstrap: { finalReturn: { p5: number; p50: number; p95: number } } };
    assert.equal(mc.runs, 400);
    assert.equal(mc.seed, 5);
    assert.equal(mc.trades, json.metrics.trades);
    assert.ok(mc.bootstrap.finalReturn.p5 <= mc.bootstrap.finalReturn.p50 && mc.bootstrap.finalReturn.p50 <= mc.bootstrap.finalReturn.p95);
    const again = await runBacktestCommand({ data: files, strategy: 'rules', monteCarlo: '400', seed: '5' }, quiet(), { config });
    assert.deepEqual(again.monteCarlo, json.monteCarlo);
    const other = await runBacktestCommand({ data: files, strategy: 'rules', monteCarlo: '400', seed: '6' }, quiet(), { config });
    assert.notDeepEqual(other.monteCarlo?.bootstrap, mc.bootstrap);
  });

  it('refuses bad report and Monte Carlo arguments with a clear message', async () => {
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [{ data: files, monteCarlo: '0' }, /--monte-carlo '0': expected a number of runs, an integer from 1 to 1000000/],
      [{ data: files, monteCarlo: 'many' }, /--monte-carlo 'many'/],
      [{ data: files, seed: '3' }, /--seed goes with --monte-carlo/],
      [{ data: files, monteCarlo: '10', seed: '-1' }, /--seed '-1'/],
      [{ data: files, report: files[0] }, /--report is one of the input files/],
      [{ data: files, report: path.join(dir, 'same.x'), json: path.join(dir, 'same.x') }, /name the same file/],
      [{ data: files, report: path.join(dir, 'no', 'such', 'r.html') }, /cannot write .*: its directory does not exist/],
    ];
    for (const [opts, why] of cases) {
      await assert.rejects(runBacktestCommand({ strategy: 'rules', ...opts }, quiet(), { config }), (e: Error) => e instanceof UsageError && why.test(e.message), `${JSON.stringify(opts)} -> ${why}`);
    }
  });
});

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { runBacktestCommand, type BacktestCommandIo } from '../../client/commands/backtest';
import { UsageError } from '../../infra/errors';
import type { ModelSignal } from '../../lib/engine';
import { fixtureCandleFile } from '../../testkit/fixtures';

const REPO = path.join(__dirname, '..', '..');
const BTC = fixtureCandleFile('fixture_BTC-USDT_1h.csv');
const ETH = fixtureCandleFile('synthetic_ETH-USDT_1h.csv');
const XRP = fixtureCandleFile('synthetic_XRP-ETH_5m.csv');

const config = () => ({ strategy: 'rules' as const, risk: { initialCapital: 10_000, maxPositionSize: 0.05, stopLossPct: 0.02, takeProfitPct: 0.04, maxDrawdown: 0.15 } });

function quietIo(): BacktestCommandIo & { infos: string[]; notes: string[] } {
  const infos: string[] = [];
  const notes: string[] = [];
  return { infos, notes, info: (l) => infos.push(l), warn: (l) => notes.push(l) };
}

describe('trader backtest', function () {
  this.timeout(120_000); // runs the `trader` CLI as a child process (seconds to start) over fixture candles
  let dir: string;
  before(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'backtest-cmd-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('prints a summary and writes { trades, metrics, openPositions, config } as JSON', async () => {
    const out = path.join(dir, 'bt.json');
    const io = quietIo();
    const result = await runBacktestCommand({ data: [BTC, ETH], strategy: 'rules', json: out, feeBps: '10' }, io, { config });
    const json = JSON.parse(readFileSync(out, 'utf8'));
    assert.deepEqual(Object.keys(json).slice(0, 4), ['trades', 'metrics', 'openPositions', 'config']);
    assert.equal(json.trades.length, result.trades.length);
    assert.ok(json.trades.length > 50, `${json.trades.length} trades`);
    for (const k of ['symbol', 'side', 'qty', 'entryTime', 'entryPrice', 'exitTime', 'exitPrice', 'fees', 'pnl', 'exitReason']) assert.ok(k in json.trades[0], `trade has ${k}`);
    for (const k of ['totalReturn', 'sharpe', 'sortino', 'calmar', 'maxDrawdown', 'profitFactor', 'expectancy', 'winRate', 'trades', 'exposure', 'buyAndHoldReturn']) assert.ok(k in json.metrics, `metrics has ${k}`);
    assert.deepEqual(json.metrics, result.metrics);
    assert.deepEqual(json.config.symbols, ['BTC/USDT', 'ETH/USDT']);
    const text = io.infos.join('\n');
    assert.match(text, /Backtest 'rules' \(rules@1\.0\.0 src:[0-9a-f]{12} params:[0-9a-f]{12}\) over BTC\/USDT 1h, ETH\/USDT 1h/);
    assert.match(text, new RegExp(`trades\\s+${result.metrics.trades}`));
    assert.match(text, /sharpe\s+-?\d+\.\d\d/);
    assert.match(text, /BTC\/USDT\s+8281\s+\d+/); // 8,784 fixture hours less the 503 of warm-up
    assert.match(text, /wrote .*bt\.json/);
  });

  it('flags override the config: capital, fees, slippage', async () => {
    const r = await runBacktestCommand({ data: [XRP], initialCapital: '1', feeBps: '0', slippageBps: '0', accountGates: true }, quietIo(), { config });
    assert.equal(r.config.initialCapital, 1);
    assert.equal(r.config.accountGates, true);
    assert.deepEqual(r.config.fees, { maker: 0, taker: 0 });
    assert.equal(r.config.strategy, 'rules', 'the config strategy when --strategy is not given');
    assert.ok(r.trades.length > 0, 'XRP/ETH 5m trades');
    for (const t of r.trades) assert.equal(t.fees, 0);
  });

  it('refuses bad arguments with a clear message', async () => {
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [{ data: [BTC], strategy: 'magic' }, /strategy magic: not found: not a built-in \(rules, ensemble, ppo, hybrid\)/],
      [{ data: [BTC], strategy: 'rules', params: '{"rsiMax":"high"}' }, /rules parameters: rsiMax: /],
      [{ data: [BTC], strategy: './no/such/file.ts' }, /no such file/],
      [{ data: [path.join(dir, 'missing_BTC-USDT_1h.csv')] }, /no such file/],
      [{ data: [dir] }, /is a directory/],
      [{ data: [] }, /at least one candle CSV/],
      [{ data: [BTC], initialCapital: 'ten' }, /--initial-capital 'ten': expected a positive amount/],
      [{ data: [BTC], initialCapital: '-5' }, /--initial-capital/],
      [{ data: [BTC], feeBps: '5000' }, /--fee-bps '5000'/],
      [{ data: [BTC], slippageBps: '1e' }, /--slippage-bps '1e'/],
      [{ data: [BTC, BTC] }, /given twice/],
      [{ data: [BTC], json: BTC }, /refusing to overwrite/],
      [{ data: [BTC], strategy: 'ppo', models: dir }, new RegExp(`no model in ${dir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}; run trader train`)],
      [{ data: [BTC], strategy: 'hybrid', models: path.join(dir, 'nope') }, /--models .*nope: no such directory/],
      [{ data: [XRP], json: path.join(dir, 'no', 'such', 'dir.json') }, /cannot write .*: its directory does not exist/],
    ];
    for (const [opts, why] of cases) {
      await assert.rejects(runBacktestCommand(opts, quietIo(), { config }), (e: Error) => e instanceof UsageError && why.test(e.message), `${JSON.stringify(opts)} -> ${why}`);
    }
  });

  it('model strategies take their signal from the loader seam', async () => {
    let asked: string | undefined;
    const loadSignal = async (d: string) => {
      asked = d;
      return async (): Promise<ModelSignal> => ({ ok: true, probUp: 0.9, version: 'test' });
    };
    const r = await runBacktestCommand({ data: [XRP], strategy: 'ensemble', models: dir }, quietIo(), { config, loadSignal });
    assert.equal(asked, dir);
    assert.ok(r.trades.length + r.openPositions.length > 0, 'an always-bullish model trades');
  });

  it('a model strategy without --models finds the model as trader up does: the registry champion, else the committed bootstrap model', async () => {
    let asked: string | undefined;
    const loadSignal = async (d: string) => {
      asked = d;
      return async (): Promise<ModelSignal> => ({ ok: true, probUp: 0.9, version: 'test' });
    };
    const io = quietIo();
    // No database in this configuration (no TRADER_HOME, no DATABASE_URL): no registry to ask.
    await runBacktestCommand({ data: [XRP], strategy: 'ensemble' }, io, { config, loadSignal });
    assert.equal(asked, path.join(REPO, 'models', 'bootstrap'));
    assert.ok(io.infos.some((l) => /model: the committed bootstrap model/.test(l)), io.infos.join('\n'));
  });

  describe('as a process', () => {
    const trader = (...args: string[]) => spawnSync(process.execPath, [path.join(REPO, 'bin', 'trader.js'), 'backtest', ...args], { cwd: REPO, encoding: 'utf8', timeout: 60_000 });

    it('exits 0 with a summary on good input', () => {
      const r = trader('--data', XRP, '--initial-capital', '100');
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /Backtest 'rules' \(rules@1\.0\.0 [^)]*\) over XRP\/ETH 5m/);
    });

    it('exits 2 on bad arguments', () => {
      for (const args of [['--data', XRP, '--strategy', 'nope'], ['--data', path.join(dir, 'x_BTC-USDT_1h.csv')], ['--data', XRP, '--fee-bps', 'x'], ['--strategy', 'rules'], ['--data', XRP, '--bogus']]) {
        const r = trader(...args);
        assert.equal(r.status, 2, `${args.join(' ')}: status ${r.status}, stderr ${r.stderr}`);
        assert.match(r.stderr, /error/);
      }
    });
  });
});

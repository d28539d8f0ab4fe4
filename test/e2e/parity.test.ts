import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { fixtureCandleFile } from '../../testkit/fixtures';
import { embeddedStackEnv } from '../../testkit/trader-process';
// Every field of a trade, the client order ids of its entry and exit and its stop and target
// included; money compared to 1e-8 (the ledger stores exact decimals, the backtest doubles).
import { tradeWithOrdersKey as key, type TradeWithOrders as TradeRow } from '../../testkit/replay-audit';

/**
 * The promise of the design: a paper run through Temporal and a backtest over the same candles
 * produce the same trades. Both sides run as an operator would run them, through the CLI:
 * `trader up --replay FILES --exit-when-done` on the real dev server and embedded PostgreSQL,
 * then `trader trades --json` (which reads the ledger after `up` has exited), against
 * `trader backtest --data FILES --json OUT`.
 */

const run = promisify(execFile);
const REPO = path.resolve(__dirname, '..', '..');
const ROWS = 1200;


describe('parity: trader up --replay through Temporal == trader backtest', function () {
  this.timeout(600_000); // `trader up --replay` through the real workflows, then `trader backtest`, as child processes
  let dir: string;
  let env: NodeJS.ProcessEnv;
  let files: string[];

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dt-parity-'));
    fs.chmodSync(dir, 0o755); // the embedded PostgreSQL runs as `postgres` when we are root
    // Two symbols, the first ROWS hourly candles of each (the engine decides from candle 503 on).
    files = ['fixture_BTC-USDT_1h.csv', 'synthetic_ETH-USDT_1h.csv'].map((name) => {
      const lines = fs.readFileSync(fixtureCandleFile(name), 'utf8').split('\n').slice(0, ROWS + 1);
      const out = path.join(dir, name);
      fs.writeFileSync(out, lines.join('\n') + '\n');
      return out;
    });
    env = await embeddedStackEnv(path.join(dir, 'home'), {
      STRATEGY: 'rules',
    });
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  // Every built-in, then the three example strategies (examples/strategies, found by name as a
  // user's `--strategy breakout` finds them). Neither side is told where the model is: `trader up`
  // serves the registry's champion, else the committed bootstrap model, and a backtest without
  // --models looks for it the same way (and says which it took).
  const CASES: Array<{ strategy: string; minTrades: number; model: boolean; params?: Record<string, unknown>; tag?: string }> = [
    { strategy: 'rules', minTrades: 10, model: false },
    { strategy: 'ensemble', minTrades: 10, model: true },
    { strategy: 'ppo', minTrades: 10, model: true },
    { strategy: 'hybrid', minTrades: 10, model: true },
    // 14 trades on these rows with its defaults (trailing stops and stop losses).
    { strategy: 'breakout', minTrades: 10, model: false, tag: 'donchian-48' },
    // With its defaults it buys only 4 dips on these rows, all sold back at the mean (one kind of
    // exit): a shallower band, a higher RSI bar, no regime filter, a 12-candle time exit and a
    // tighter stop make it trade about 50 times with both its own exits and the exchange's stop.
    {
      strategy: 'mean-reversion',
      minTrades: 20,
      model: false,
      params: { bbStdDev: 1.5, rsiOversold: 40, blockedRegimes: [], maxHoldCandles: 12, stopAtr: 1.5 },
      tag: 'bb-rsi-dip',
    },
    // 16 trades on these rows with the bootstrap model (signal exits, stop losses, a take profit).
    { strategy: 'model-trend', minTrades: 10, model: true, tag: 'model-trend' },
  ];
  for (const { strategy, minTrades, model, params, tag } of CASES) {
    it(`${strategy}: gives exactly the backtest trades (times, prices, quantities, fees, exit reasons, entry tags, strategy identity) for two symbols`, async () => {
      const trader = (args: string[]) => run(process.execPath, [path.join(REPO, 'bin', 'trader.js'), ...args], { env, cwd: dir, maxBuffer: 64 * 1024 * 1024 });
      const withParams = params ? ['--params', JSON.stringify(params)] : [];

      const up = await trader(['up', '--replay', ...files, '--strategy', strategy, ...withParams, '--exit-when-done']);
      assert.match(up.stdout, /Replay finished/, `up --replay did not finish:\n${up.stdout}\n${up.stderr}`);

      const ledger = JSON.parse((await trader(['trades', '--json'])).stdout) as TradeRow[];
      const out = path.join(dir, `backtest-${strategy}.json`);
      const bt = await trader(['backtest', '--data', ...files, '--strategy', strategy, ...withParams, '--json', out]);
      const backtest = (JSON.parse(fs.readFileSync(out, 'utf8')) as { trades: TradeRow[] }).trades;

      // client/commands/backtest.ts: the model it took, when it took one (a fresh TRADER_HOME has no
      // champion, so the bootstrap model, unless a later change gives `up` one: then both use it).
      const modelLine = /^model: (the committed bootstrap model \(models\/bootstrap; the registry has no champion\)|the registry's champion \(.+\))$/m;
      if (model) assert.match(bt.stdout, modelLine, `${strategy}: the backtest should say which model it found:\n${bt.stdout}`);
      else assert.doesNotMatch(bt.stdout, /^model:/m, `${strategy} reads no model:\n${bt.stdout}`);

      assert.ok(backtest.length >= minTrades, `the backtest should trade on this data (got ${backtest.length} trades, want >= ${minTrades})`);
      assert.deepEqual(new Set(backtest.map((t) => t.symbol)), new Set(['BTC/USDT', 'ETH/USDT']), 'both symbols trade');
      assert.ok(new Set(backtest.map((t) => t.exitReason)).size >= 2, 'more than one kind of exit is exercised');
      // Who entered, on both sides (the key compares it trade for trade; this says it is there at all).
      for (const [side, trades] of [['ledger', ledger], ['backtest', backtest]] as const) {
        for (const t of trades) {
          const who = t.strategy;
          assert.ok(who, `${side}: every trade names the strategy that entered it: ${JSON.stringify(t)}`);
          assert.equal(who.name, strategy, `${side}: the strategy that entered: ${JSON.stringify(t)}`);
          assert.match(`${who.version} ${who.source} ${who.params}`, /^\S+ [0-9a-f]{12} [0-9a-f]{12}$/, `${side}: version and hashes: ${JSON.stringify(who)}`);
          if (tag !== undefined) assert.equal(t.entryTag, tag, `${side}: every entry carries the strategy's tag: ${JSON.stringify(t)}`);
        }
      }
      assert.deepEqual(ledger.map(key).sort(), backtest.map(key).sort(), `${strategy}: the ledger of the Temporal replay and the backtest disagree`);
    });
  }
});

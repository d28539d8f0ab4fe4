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

  // Every built-in: the model strategies run the committed bootstrap model on both sides (what
  // `trader up` serves without a trained champion; the backtest is given it with --models).
  const CASES: Array<{ strategy: string; minTrades: number }> = [
    { strategy: 'rules', minTrades: 10 },
    { strategy: 'ensemble', minTrades: 10 },
    { strategy: 'ppo', minTrades: 10 },
    { strategy: 'hybrid', minTrades: 10 },
  ];
  for (const { strategy, minTrades } of CASES) {
    it(`${strategy}: gives exactly the backtest trades (times, prices, quantities, fees, exit reasons) for two symbols`, async () => {
      const trader = (args: string[]) => run(process.execPath, [path.join(REPO, 'bin', 'trader.js'), ...args], { env, cwd: dir, maxBuffer: 64 * 1024 * 1024 });

      const up = await trader(['up', '--replay', ...files, '--strategy', strategy, '--exit-when-done']);
      assert.match(up.stdout, /Replay finished/, `up --replay did not finish:\n${up.stdout}\n${up.stderr}`);

      const ledger = JSON.parse((await trader(['trades', '--json'])).stdout) as TradeRow[];
      const out = path.join(dir, `backtest-${strategy}.json`);
      const models = strategy === 'rules' ? [] : ['--models', path.join(REPO, 'models', 'bootstrap')];
      await trader(['backtest', '--data', ...files, '--strategy', strategy, ...models, '--json', out]);
      const backtest = (JSON.parse(fs.readFileSync(out, 'utf8')) as { trades: TradeRow[] }).trades;

      assert.ok(backtest.length >= minTrades, `the backtest should trade on this data (got ${backtest.length} trades)`);
      assert.deepEqual(new Set(backtest.map((t) => t.symbol)), new Set(['BTC/USDT', 'ETH/USDT']), 'both symbols trade');
      assert.ok(new Set(backtest.map((t) => t.exitReason)).size >= 2, 'more than one kind of exit is exercised');
      assert.deepEqual(ledger.map(key).sort(), backtest.map(key).sort(), `${strategy}: the ledger of the Temporal replay and the backtest disagree`);
    });
  }
});

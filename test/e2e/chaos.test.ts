import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chaosVerdict, runChaos, type ChaosResult } from '../../testkit/chaos-run';
import { sampledMarketCandles, writeCandleFile } from '../../testkit/candles';
import { testLog } from '../../testkit/db';

/**
 * The chaos run of `npm run chaos` (testkit/chaos-run.ts), small enough for CI: three
 * generated symbols, trading workers SIGKILLed while they trade, the Temporal server killed and
 * restarted, PostgreSQL shut down immediately and restarted; then the replay's ledger and paper
 * exchange are checked (one order per client order id, every fill on both sides, every symbol
 * workflow completed) and its trades compared field by field with `trader backtest` over the same
 * files. Everything is real: processes, servers, the CLI.
 *
 * The faults come one after the other in the first half minute; the speed cap (240 simulated
 * seconds per real second: 4 one-minute candles a second per symbol, about 50 s of replay at the
 * least) keeps the replay running meanwhile even on a fast machine.
 */

const M = 60_000;
const SINCE = Date.UTC(2025, 2, 1);
const N = 700;
const SYMBOLS = ['AAA/USDT', 'BBB/USDT', 'CCC/USDT'];
// Generated markets on which the rules trade over 700 one-minute candles (12 trades in all).
const VARIANTS = [6, 8, 9];

describe('chaos: killed workers and restarted servers during a replay leave the ledger equal to a fault-free backtest', function () {
  this.timeout(30 * 60_000); // a replay through a Temporal cluster of processes while workers are killed and servers restarted
  let dir: string;
  let result: ChaosResult;

  before(async () => {
    dir = path.join(os.tmpdir(), `dt-chaos-test-${process.pid}`);
    fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
    const files = SYMBOLS.map((s, i) => writeCandleFile(dir, { exchange: 'binance', symbol: s, timeframe: '1m' }, sampledMarketCandles(s, M, SINCE, N, VARIANTS[i])));
    // Kill 1 is `trader up`, then the Temporal server, worker A, PostgreSQL, worker B, a tick
    // (2 s +-50 %) apart: all before the replacements poll, so no wait for a worker to come up.
    result = await runChaos({ dir, files, kills: 3, killEveryMs: 2000, workers: 2, speed: 240, seed: 7, finishTimeoutMs: 600_000, log: testLog, progress: (line) => testLog.info(line) });
  });
  after(() => {
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('took the faults it was meant to take, with the work moving between worker processes', () => {
    const f = result.figures;
    assert.ok(f.kills >= 3, `kills ${f.kills}; ${JSON.stringify(f)}`);
    assert.equal(f.replay_finished_during_kills, false, 'the replay ended before the faults: slow it down');
    assert.equal(f.temporal_restarts, 1);
    assert.equal(f.postgres_restarts, 1);
    assert.ok(f.serving_workers >= 2, `only ${f.serving_workers} worker process(es) ran the symbol workflows`);
  });

  it('placed every order once, lost no fill, left no workflow behind, and traded exactly as the backtest', () => {
    const f = result.figures;
    assert.ok(f.backtest_trades >= 5, `the generated market should trade (backtest: ${f.backtest_trades} trades)`);
    assert.deepEqual(chaosVerdict(f, { kills: 3 }), [], `${JSON.stringify(f)}\n${result.details.join('\n')}`);
    assert.equal(f.trades, f.backtest_trades);
  });
});

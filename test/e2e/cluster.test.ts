import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chaosVerdict, runChaos, type ChaosResult } from '../../testkit/chaos-run';
import { sampledMarketCandles, writeCandleFile } from '../../testkit/candles';
import { testLog } from '../../testkit/db';
import { findTemporalServerTools } from '../../testkit/temporal-cluster';

/**
 * The engine users scale out on: the production Temporal server (go.temporal.io/server, the
 * version docker-compose.yml runs, built by scripts/setup-temporal-server.sh), two nodes each
 * running every role, persistence and SQL visibility in a PostgreSQL of their own, schema and
 * namespace set up by the compose file's own scripts (testkit/temporal-cluster.ts). The chaos run
 * replays three generated symbols through it while trading workers are SIGKILLed, node 1 (the
 * frontend every process talks to) is SIGKILLed and restarted, and both PostgreSQL servers (the
 * ledger's, then Temporal's persistence and visibility) are shut down immediately and restarted.
 * Then the same verdict as on the dev server: one order per client order id, no lost fill, no
 * stuck workflow, the trades field by field those of `trader backtest` over the same files. And
 * what an operator does against a cluster: `trader up` registered the custom search attributes
 * through the operator API, a visibility query on them finds the symbol workflows, `trader status`
 * answers.
 *
 * Without the server build the suite skips, except under CI=true, where it fails.
 */

const M = 60_000;
const SINCE = Date.UTC(2025, 2, 1);
const N = 700;
const SYMBOLS = ['AAA/USDT', 'BBB/USDT', 'CCC/USDT'];
// Generated markets on which the rules trade over 700 one-minute candles (as in chaos.test.ts).
const VARIANTS = [6, 8, 9];
const inCi = !!process.env.CI && process.env.CI !== 'false' && process.env.CI !== '0';

describe('a two-node Temporal cluster on PostgreSQL: a replay through node and database crashes trades exactly as the backtest', function () {
  this.timeout(30 * 60_000);
  let dir: string;
  let result: ChaosResult;
  const seen: { bySymbol: Record<string, string[]>; status?: unknown; searchAttributes?: string[] } = { bySymbol: {} };

  before(async function () {
    if (!findTemporalServerTools()) {
      if (inCi) throw new Error('no Temporal server build under .tools/temporal-server: .ci/run runs bash scripts/setup-temporal-server.sh');
      this.skip();
    }
    dir = path.join(os.tmpdir(), `dt-cluster-test-${process.pid}`);
    fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
    const files = SYMBOLS.map((s, i) => writeCandleFile(dir, { exchange: 'binance', symbol: s, timeframe: '1m' }, sampledMarketCandles(s, M, SINCE, N, VARIANTS[i])));
    result = await runChaos({
      dir,
      files,
      kills: 3,
      killEveryMs: 2000,
      workers: 2,
      speed: 240,
      seed: 7,
      finishTimeoutMs: 600_000,
      temporal: 'cluster',
      log: testLog,
      progress: (line) => testLog.info(line),
      inspect: async ({ client, trader }) => {
        const described = await client.connection.operatorService.listSearchAttributes({ namespace: 'default' });
        seen.searchAttributes = Object.keys(described.customAttributes ?? {});
        // SQL visibility answers custom search attribute queries once the visibility queue has
        // written the rows; after a database restart that can take a few seconds.
        for (const symbol of SYMBOLS) {
          const deadline = Date.now() + 60_000;
          for (;;) {
            const ids: string[] = [];
            for await (const wf of client.workflow.list({ query: `Symbol = '${symbol}' AND ExecutionStatus = 'Completed'` })) ids.push(wf.workflowId);
            seen.bySymbol[symbol] = [...new Set(ids)];
            if (ids.length > 0 || Date.now() > deadline) break;
            await new Promise((r) => setTimeout(r, 1000));
          }
        }
        seen.status = JSON.parse((await trader(['status', '--json'])).stdout);
      },
    });
  });
  after(() => {
    if (result) testLog.info({ figures: result.figures }, 'cluster chaos figures');
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('took the faults: workers killed, node 1 killed and restarted, both PostgreSQL servers restarted', () => {
    const f = result.figures;
    assert.equal(f.temporal, 'cluster');
    assert.ok(f.kills >= 3, `kills ${f.kills}; ${JSON.stringify(f)}`);
    assert.equal(f.replay_finished_during_kills, false, 'the replay ended before the faults: slow it down');
    assert.equal(f.temporal_restarts, 1);
    assert.equal(f.postgres_restarts, 1);
    assert.equal(f.temporal_db_restarts, 1);
  });

  it('placed every order once, lost no fill, left no workflow behind, and traded exactly as the backtest', () => {
    const f = result.figures;
    assert.ok(f.backtest_trades >= 5, `the generated market should trade (backtest: ${f.backtest_trades} trades)`);
    assert.deepEqual(chaosVerdict(f, { kills: 3 }), [], `${JSON.stringify(f)}\n${result.details.join('\n')}`);
    assert.equal(f.trades, f.backtest_trades);
  });

  it('has the search attributes `trader up` registers, a visibility query on them finds each symbol workflow, and `trader status` answers', () => {
    for (const name of ['Symbol', 'Exchange', 'Mode', 'TradingStatus']) assert.ok(seen.searchAttributes?.includes(name), `search attribute ${name} not registered: ${seen.searchAttributes?.join(', ')}`);
    for (const symbol of SYMBOLS) assert.ok(seen.bySymbol[symbol]?.some((id) => id.endsWith(symbol)), `Symbol = '${symbol}' found ${JSON.stringify(seen.bySymbol[symbol])}`);
    assert.ok(Array.isArray(seen.status), `trader status --json: ${JSON.stringify(seen.status)}`);
  });
});

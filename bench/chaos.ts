import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chaosVerdict, runChaos } from '../testkit/chaos-run';
import { benchLog, DATA_DIR, loadLine, machineLine, numberArg, parseArgs } from './helpers/trading-stack';

/**
 * `npm run chaos` (= `npm run bench -- chaos`): a multi-symbol replay through the real workflows
 * while trading workers are SIGKILLed every few seconds, the Temporal server is killed and
 * restarted once and PostgreSQL once (with --cluster: the production server, two nodes on their
 * own PostgreSQL, node 1 killed, and that PostgreSQL restarted too; `bash
 * scripts/setup-temporal-server.sh` builds the server first); then the ledger against a fault-free `trader backtest` of
 * the same candles (testkit/chaos-run.ts). Exit code 1 when the verdict fails.
 *
 *   npm run chaos -- [--symbols BTC,ETH,SOL] [--candles 4000] [--kills 50] [--kill-every 4]
 *                    [--min-serve 4] [--workers 2] [--speed max] [--seed 1] [--finish-timeout 900] [--cluster] [--keep]
 *
 * Candles: the first --candles rows of ../shared/data/ohlcv/binance_<SYMBOL>-USDT_1h.csv
 * (SHARED_DATA_DIR overrides). --keep leaves the run directory (logs of every process) in place.
 */

const args = parseArgs(process.argv.slice(2), { symbols: 'value', candles: 'value', kills: 'value', 'kill-every': 'value', 'min-serve': 'value', workers: 'value', speed: 'value', seed: 'value', 'finish-timeout': 'value', cluster: 'flag', keep: 'flag' });
const TEMPORAL: 'dev' | 'cluster' = args.has('cluster') ? 'cluster' : 'dev';
const symbols = String(args.get('symbols') ?? 'BTC,ETH,SOL').split(',').map((s) => s.trim().toUpperCase()).filter(Boolean);
const CANDLES = numberArg(args, 'candles', 4000, (x) => Number.isInteger(x) && x > 600);
const KILLS = numberArg(args, 'kills', 50, (x) => Number.isInteger(x) && x >= 3);
const KILL_EVERY_S = numberArg(args, 'kill-every', 4);
const MIN_SERVE_S = numberArg(args, 'min-serve', KILL_EVERY_S, (x) => x >= 0);
const WORKERS = numberArg(args, 'workers', 2, (x) => Number.isInteger(x) && x >= 1);
const SEED = numberArg(args, 'seed', 1, Number.isSafeInteger);
const FINISH_S = numberArg(args, 'finish-timeout', 900);
const speedArg = String(args.get('speed') ?? 'max');
const SPEED: 'max' | number = speedArg === 'max' ? 'max' : Number(speedArg);
if (SPEED !== 'max' && !(SPEED > 0)) throw new Error(`--speed is max or a positive number, got ${speedArg}`);

async function main(): Promise<void> {
  const dir = path.join(os.tmpdir(), `dt-chaos-${process.pid}`);
  fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
  const files = symbols.map((s) => {
    const name = `binance_${s}-USDT_1h.csv`;
    const src = path.join(DATA_DIR, 'ohlcv', name);
    if (!fs.existsSync(src)) throw new Error(`no recorded candles for ${s}: ${src} (SHARED_DATA_DIR)`);
    const lines = fs.readFileSync(src, 'utf8').split('\n').slice(0, CANDLES + 1);
    const out = path.join(dir, name);
    fs.writeFileSync(out, lines.join('\n') + '\n');
    return out;
  });
  const started = new Date();
  console.log(`chaos run: ${symbols.length} symbols x ${CANDLES} 1h candles, ${WORKERS} workers, a kill every ~${KILL_EVERY_S} s until ${KILLS}, speed ${SPEED}, seed ${SEED}; Temporal: ${TEMPORAL === 'cluster' ? 'the production server, two nodes on PostgreSQL' : 'the dev server (SQLite)'}`);
  console.log(`  machine: ${machineLine()}; load ${loadLine()}; run directory ${dir}`);
  const result = await runChaos({
    dir,
    files,
    kills: KILLS,
    killEveryMs: KILL_EVERY_S * 1000,
    minServeMs: MIN_SERVE_S * 1000,
    workers: WORKERS,
    speed: SPEED,
    seed: SEED,
    finishTimeoutMs: FINISH_S * 1000,
    temporal: TEMPORAL,
    log: benchLog(),
    progress: (line) => console.log(`  [${((Date.now() - started.getTime()) / 1000).toFixed(0).padStart(4)} s] ${line}`),
  });
  const f = result.figures;
  const bad = chaosVerdict(f, { kills: Math.min(KILLS, 50) });
  console.log(`  kills ${f.kills} (workers that exited by themselves: ${f.worker_exits}), Temporal restarts ${f.temporal_restarts}, PostgreSQL restarts ${f.postgres_restarts}${f.temporal === 'cluster' ? `, Temporal's PostgreSQL restarts ${f.temporal_db_restarts}` : ''}; worker start median ${f.worker_start_s_p50} s`);
  console.log(`  histories: ${f.serving_workers} worker processes completed workflow tasks or ran activities of the symbol workflows, ${f.kills_of_working_workers} of the killed ones among them (${f.kills_picked_at_work} held a running symbol workflow's latest task when picked); ${f.workflow_task_timeouts} workflow task timeouts, ${f.workflow_task_failures} failures, ${f.activity_retries} activity retries`);
  console.log(`  exchange: ${f.exchange_orders} orders, ${f.exchange_fills} fills; ledger: ${f.trades} trades, backtest ${f.backtest_trades}`);
  console.log(`  duplicate orders ${f.duplicate_orders}, lost fills ${f.lost_fills}, mismatched trades ${f.mismatched_trades}, stuck workflows ${f.stuck_workflows}; orders missing in the ledger ${f.orders_missing_in_ledger}, on the exchange ${f.orders_missing_on_exchange}, status mismatches ${f.order_status_mismatches}`);
  for (const d of result.details.slice(0, 30)) console.log(`  ! ${d}`);
  const atWorkGoal = Math.ceil(0.8 * f.kills);
  console.log(`  kills that hit a worker holding work: ${f.kills_of_working_workers} of ${f.kills} (goal >= 80 %, ${atWorkGoal}: ${f.kills_of_working_workers >= atWorkGoal ? 'met' : 'MISSED'})`);
  console.log(`  verdict: ${bad.length === 0 ? 'exactly once under the faults' : `FAILED: ${bad.join('; ')}`} (${f.wall_s} s)`);
  console.log(`  reproduce: npm run chaos -- --symbols ${symbols.join(',')} --candles ${CANDLES} --kills ${KILLS} --kill-every ${KILL_EVERY_S} --min-serve ${MIN_SERVE_S} --workers ${WORKERS} --speed ${SPEED} --seed ${SEED}${TEMPORAL === 'cluster' ? ' --cluster' : ''}`);
  const keys = ['temporal', 'kills', 'kills_of_working_workers', 'kills_picked_at_work', 'temporal_restarts', 'postgres_restarts', 'temporal_db_restarts', 'trades', 'duplicate_orders', 'lost_fills', 'mismatched_trades', 'stuck_workflows'] as const;
  console.log(JSON.stringify(Object.fromEntries(keys.map((k) => [k, f[k]]))));
  if (!args.has('keep')) fs.rmSync(dir, { recursive: true, force: true });
  if (bad.length > 0) process.exitCode = 1;
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});

import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { Client, Connection } from '@temporalio/client';
import type { temporal } from '@temporalio/proto';
import { connect } from '../infra/postgres';
import type { Logger } from '../infra/logger';
import { readCandleCsv } from '../infra/candle-files';
import { symbolWorkflowId } from '../lib/contracts/trading';
import { Prng } from '../lib/random';
import { REPLAY_DATABASE } from '../workers/replay';
import { openCluster, TraderProcess, type Cluster } from './cluster-processes';
import { auditExchangeAgainstLedger, mismatchedTrades, type TradeRow } from './replay-audit';

/**
 * The chaos run: a replay through the real workflows on a cluster whose parts are killed while it
 * trades, then the ledger compared with a fault-free `trader backtest` of the same candles.
 *
 * - a Temporal dev server and PostgreSQL, each a process of its own (cluster-processes.ts);
 * - `trader up --replay FILES` starts the replay (it records the plan in the replay database and
 *   starts the portfolio and one symbol workflow per file), and is itself the first worker killed;
 * - `workers` x `trader worker --replay` on the trading queue; every `killEveryMs` (+-50 %, seeded)
 *   a killer SIGKILLs one of the workers holding the work (its identity on a running symbol
 *   workflow's latest workflow task or activity; when none is found for 5 ticks, a random polling
 *   one) and starts a replacement at once, so `workers` processes are always alive and 0..workers
 *   of them serving;
 * - the Temporal server is SIGKILLed and restarted once, PostgreSQL shut down immediately (SIGQUIT,
 *   crash recovery at start) and restarted once, at a third and two thirds of the kills;
 * - when the kills are done the survivors finish the replay; then the verdict: duplicate orders,
 *   lost fills (replay-audit.ts), trades against `trader backtest --data FILES`, symbol workflows
 *   not completed.
 */

export interface ChaosOptions {
  dir: string;
  /** Candle CSV files, one per symbol (the replay and the backtest read the same). */
  files: string[];
  kills: number;
  killEveryMs: number;
  /**
   * A worker is a victim only after polling this long (default killEveryMs): when a worker takes
   * longer to start than the kill interval (a loaded machine), killing every worker as soon as it
   * polls would kill workers that never took a task, and the replay would just wait.
   */
  minServeMs?: number;
  workers: number;
  speed: 'max' | number;
  seed: number;
  /** After the kills, how long the survivors get to finish the replay. */
  finishTimeoutMs: number;
  log: Logger;
  progress?: (line: string) => void;
  /**
   * 'cluster': the production Temporal server, two nodes on a PostgreSQL of their own
   * (temporal-cluster.ts), instead of the dev server; the server kill hits node 1 (the frontend
   * every process is connected to), and Temporal's database (persistence and visibility) is
   * restarted right after the ledger's.
   */
  temporal?: 'dev' | 'cluster';
  /** Called after the verdict's data is collected, with the cluster still up (a test's own checks against it). */
  inspect?: (ctx: { client: Client; cluster: Cluster; trader: (args: string[]) => Promise<{ stdout: string; stderr: string }> }) => Promise<void>;
}

export interface ChaosFigures {
  kills: number;
  /** 'dev' (the dev server, SQLite) or 'cluster' (two production server nodes on PostgreSQL). */
  temporal: 'dev' | 'cluster';
  temporal_restarts: number;
  postgres_restarts: number;
  /** Restarts of the cluster's own PostgreSQL (persistence and visibility); 0 on the dev server. */
  temporal_db_restarts: number;
  trades: number;
  duplicate_orders: number;
  lost_fills: number;
  mismatched_trades: number;
  stuck_workflows: number;
  backtest_trades: number;
  orders_missing_in_ledger: number;
  orders_missing_on_exchange: number;
  order_status_mismatches: number;
  exchange_orders: number;
  exchange_fills: number;
  /** Workers that exited without being killed (e.g. on a server restart), each replaced. */
  worker_exits: number;
  /** Worker processes whose identity started or completed workflow tasks or started activities of the symbol workflows. */
  serving_workers: number;
  /** Killed processes that had started or completed a workflow task, or started an activity, of the symbol workflows: kills that hit work. */
  kills_of_working_workers: number;
  /** Kills whose victim held, when picked, the latest workflow task or activity of a running symbol workflow. */
  kills_picked_at_work: number;
  workflow_task_timeouts: number;
  workflow_task_failures: number;
  activity_retries: number;
  worker_start_s_p50: number;
  replay_finished_during_kills: boolean;
  wall_s: number;
}

export interface ChaosResult {
  figures: ChaosFigures;
  /** Evidence for a failed verdict: trades on one side only, audit examples, stuck workflows. */
  details: string[];
}

/** Ticks the killer waits for a worker holding work before it takes any polling worker instead. */
const IDLE_TICKS_BEFORE_ANY = 5;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const REPO = path.resolve(__dirname, '..');

export async function runChaos(o: ChaosOptions): Promise<ChaosResult> {
  const say = o.progress ?? (() => undefined);
  const t0 = Date.now();
  const rng = new Prng(o.seed);
  const symbols = o.files.map((f) => readCandleCsv(f).symbol);
  const workflowIds = symbols.map((s) => symbolWorkflowId('replay', s));
  const cluster = await openCluster(o.dir, o.log, { temporal: o.temporal ?? 'dev' });
  const procs: TraderProcess[] = [];
  let seq = 0;
  const logs = path.join(o.dir, 'logs');
  fs.mkdirSync(logs, { recursive: true });
  const spawnWorker = () => {
    const name = `worker-${++seq}`;
    const p = new TraderProcess(name, ['worker', '--replay'], cluster.env(), path.join(logs, `${name}.log`), o.dir);
    // Readiness in the background: the killer only picks workers that poll.
    p.waitFor(/serving the replay/, 600_000).catch(() => undefined);
    procs.push(p);
    return p;
  };
  const details: string[] = [];
  let connection: Connection | undefined;
  try {
    const up = new TraderProcess('up', ['up', '--replay', ...o.files, '--speed', String(o.speed)], cluster.env(), path.join(logs, 'up.log'), o.dir);
    procs.push(up);
    await up.waitFor(/durable-trader is up/, 600_000);
    say(`replay started: ${symbols.join(', ')} (${o.files.length} files), speed ${o.speed}`);
    connection = await Connection.connect({ address: cluster.temporal.address });
    const client = new Client({ connection });

    for (let i = 0; i < o.workers; i++) spawnWorker();
    await Promise.all(procs.filter((p) => p !== up).map((p) => p.waitFor(/serving the replay/, 600_000)));

    let kills = 0;
    let killsAtWork = 0;
    let idleTicks = 0;
    let workerExits = 0;
    let finishedDuringKills = false;
    // The killer's victims (not the survivors stopped at the end, which TraderProcess also marks killed).
    const victims = new Set<TraderProcess>();
    const kill = (p: TraderProcess) => {
      p.kill('SIGKILL');
      victims.add(p);
      kills++;
    };
    // The process that started the replay is a trading worker too: the first one to go.
    kill(up);
    await up.exited;
    say(`kill 1: trader up (pid ${up.pid}); ${o.workers} trader worker --replay processes serve the replay`);

    const temporalAt = Math.max(1, Math.floor(o.kills / 3));
    const postgresAt = Math.max(2, Math.floor((2 * o.kills) / 3));
    const finished = async (): Promise<boolean[]> =>
      Promise.all(
        workflowIds.map(async (id) => {
          try {
            return (await client.workflow.getHandle(id).describe()).status.name === 'COMPLETED';
          } catch {
            return false;
          }
        }),
      );
    const reaped = new Set<TraderProcess>([up]);
    const keepWorkersAlive = async () => {
      for (const p of procs) {
        if (p.alive || reaped.has(p)) continue;
        reaped.add(p);
        if (p.killed) continue;
        workerExits++;
        say(`${p.name} exited by itself (${p.child.exitCode ?? p.child.signalCode}); replaced. Last output: ${p.output().trim().split('\n').slice(-1)[0]?.slice(0, 300) ?? ''}`);
      }
      const alive = procs.filter((p) => p !== up && p.alive).length;
      for (let i = alive; i < o.workers; i++) spawnWorker();
    };

    const temporalDb = cluster.temporalDb;
    while (kills < o.kills || cluster.temporal.restarts < 1 || cluster.postgres.restarts < 1 || (temporalDb !== undefined && temporalDb.restarts < 1)) {
      await sleep(o.killEveryMs * (0.5 + rng.next()));
      await keepWorkersAlive();
      if ((await finished()).every(Boolean)) {
        finishedDuringKills = true;
        say(`the replay finished after ${kills} kills, before the planned ${o.kills}`);
        break;
      }
      if (kills >= temporalAt && cluster.temporal.restarts < 1) {
        const s = await cluster.temporal.crashAndRestart();
        say(`Temporal server${cluster.kind === 'cluster' ? ' node 1' : ''} SIGKILLed and restarted (${s.toFixed(1)} s down) after ${kills} kills`);
        continue;
      }
      if (kills >= postgresAt && cluster.postgres.restarts < 1) {
        const s = await cluster.postgres.crashAndRestart();
        say(`PostgreSQL shut down immediately and restarted (${s.toFixed(1)} s down) after ${kills} kills`);
        continue;
      }
      if (temporalDb && kills >= postgresAt && temporalDb.restarts < 1) {
        const s = await temporalDb.crashAndRestart();
        say(`Temporal's PostgreSQL (persistence and visibility) shut down immediately and restarted (${s.toFixed(1)} s down) after ${kills} kills`);
        continue;
      }
      if (kills >= o.kills) continue;
      // The victim is taken from where the work is: the processes whose identity is on the symbol
      // workflows' latest workflow task or activity (sticky queues keep a workflow on the worker
      // that has it cached, so a fresh worker can sit idle and a random pick would often hit it).
      // Only when none of those is alive: any worker that has polled for minServe.
      const working = await workingProcesses(client, workflowIds, procs.filter((p) => p !== up && p.alive));
      const minServe = o.minServeMs ?? o.killEveryMs;
      const serving = procs.filter((p) => p !== up && p.alive && p.readyAt !== null && Date.now() - p.readyAt >= minServe);
      // No worker holds work yet (the replacements are still taking over the dead one's
      // workflows): wait for one, a few ticks at most, rather than kill an idle process.
      if (working.length === 0 && idleTicks < IDLE_TICKS_BEFORE_ANY) {
        idleTicks++;
        continue;
      }
      idleTicks = 0;
      const pool = working.length > 0 ? working : serving;
      if (pool.length === 0) continue;
      const victim = pool[rng.int(0, pool.length - 1)];
      kill(victim);
      if (working.includes(victim)) killsAtWork++;
      spawnWorker();
      if (kills % 10 === 0) say(`kill ${kills}: ${victim.name} (${working.includes(victim) ? 'holding work' : 'no work found on any worker'}; ${killsAtWork} of the kills so far picked a worker holding work)`);
    }
    say(`kills done (${kills}); the surviving workers finish the replay`);

    const deadline = Date.now() + o.finishTimeoutMs;
    let done = await finished();
    while (!done.every(Boolean) && Date.now() < deadline) {
      await keepWorkersAlive();
      await sleep(2000);
      done = await finished();
    }
    const stuck = workflowIds.filter((_, i) => !done[i]);
    for (const id of stuck) details.push(`stuck: ${id} not completed ${o.finishTimeoutMs / 1000} s after the kills`);
    for (const p of procs) if (p.alive) p.kill('SIGTERM');
    await Promise.all(procs.map((p) => Promise.race([p.exited, sleep(30_000)])));
    for (const p of procs) p.kill('SIGKILL');

    // What the histories say about where the kills landed.
    const hist = { wtTimeouts: 0, wtFailures: 0, activityRetries: 0, identities: new Set<string>() };
    for (const id of workflowIds) {
      for await (const wf of client.workflow.list({ query: `WorkflowId = '${id}'` })) {
        const h = await client.workflow.getHandle(wf.workflowId, wf.runId).fetchHistory();
        for (const e of h.events ?? []) {
          if (e.workflowTaskTimedOutEventAttributes) hist.wtTimeouts++;
          if (e.workflowTaskFailedEventAttributes) hist.wtFailures++;
          if ((e.activityTaskStartedEventAttributes?.attempt ?? 1) > 1) hist.activityRetries++;
          const who = workerIdentity(e);
          if (who) hist.identities.add(who);
        }
      }
    }

    const trader = (args: string[]) => promisify(execFile)(process.execPath, [path.join(REPO, 'bin', 'trader.js'), ...args], { env: cluster.env({ LOG_LEVEL: 'warn' }), cwd: o.dir, maxBuffer: 256 * 1024 * 1024 });
    const backtestOut = path.join(o.dir, 'backtest.json');
    const [tradesOut] = await Promise.all([trader(['trades', '--replay', '--json']), trader(['backtest', '--data', ...o.files, '--strategy', 'rules', '--json', backtestOut])]);
    const ledgerTrades = JSON.parse(tradesOut.stdout) as TradeRow[];
    const backtestTrades = (JSON.parse(fs.readFileSync(backtestOut, 'utf8')) as { trades: TradeRow[] }).trades;
    const mismatch = mismatchedTrades(ledgerTrades, backtestTrades);
    for (const k of mismatch.onlyLedger.slice(0, 10)) details.push(`trade only in the ledger: ${k}`);
    for (const k of mismatch.onlyBacktest.slice(0, 10)) details.push(`trade only in the backtest: ${k}`);

    const sql = connect(cluster.postgres.urlFor(REPLAY_DATABASE), o.log, { max: 2 });
    let audit;
    try {
      audit = await auditExchangeAgainstLedger(sql);
    } finally {
      await sql.end({ timeout: 5 });
    }
    details.push(...audit.examples);
    if (o.inspect) await o.inspect({ client, cluster, trader });
    const starts = procs.filter((p) => p.readyAt !== null).map((p) => (p.readyAt! - p.startedAt) / 1000).sort((a, b) => a - b);

    return {
      figures: {
        kills,
        temporal: cluster.kind,
        temporal_restarts: cluster.temporal.restarts,
        postgres_restarts: cluster.postgres.restarts,
        temporal_db_restarts: temporalDb?.restarts ?? 0,
        trades: ledgerTrades.length,
        duplicate_orders: audit.duplicateOrders,
        lost_fills: audit.lostFills,
        mismatched_trades: mismatch.count,
        stuck_workflows: stuck.length,
        backtest_trades: backtestTrades.length,
        orders_missing_in_ledger: audit.ordersMissingInLedger,
        orders_missing_on_exchange: audit.ordersMissingOnExchange,
        order_status_mismatches: audit.statusMismatches,
        exchange_orders: audit.exchangeOrders,
        exchange_fills: audit.exchangeFills,
        worker_exits: workerExits,
        serving_workers: hist.identities.size,
        kills_of_working_workers: [...victims].filter((p) => isOneOf(p, hist.identities)).length,
        kills_picked_at_work: killsAtWork,
        workflow_task_timeouts: hist.wtTimeouts,
        workflow_task_failures: hist.wtFailures,
        activity_retries: hist.activityRetries,
        worker_start_s_p50: Number((starts[Math.floor((starts.length - 1) / 2)] ?? 0).toFixed(2)),
        replay_finished_during_kills: finishedDuringKills,
        wall_s: Math.round((Date.now() - t0) / 1000),
      },
      details,
    };
  } finally {
    for (const p of procs) p.kill('SIGKILL');
    await Promise.all(procs.map((p) => Promise.race([p.exited, sleep(10_000)])));
    await connection?.close().catch(() => undefined);
    await cluster.close();
  }
}

/**
 * The live processes (of `candidates`) whose identity (the SDK's `pid@host`) is on the latest
 * workflow task or activity task of a running symbol workflow: where the work is now.
 */
async function workingProcesses(client: Client, workflowIds: string[], candidates: TraderProcess[]): Promise<TraderProcess[]> {
  const identities = new Set<string>();
  await Promise.all(
    workflowIds.map(async (workflowId) => {
      try {
        const page = await client.workflowService.getWorkflowExecutionHistoryReverse({ namespace: client.options.namespace, execution: { workflowId }, maximumPageSize: 30 });
        for (const e of page.history?.events ?? []) {
          const who = workerIdentity(e);
          if (who) {
            identities.add(who);
            if (e.workflowTaskStartedEventAttributes || e.workflowTaskCompletedEventAttributes) break;
          }
        }
      } catch {
        // completed, or the server is restarting: no work to find there
      }
    }),
  );
  return candidates.filter((p) => isOneOf(p, identities));
}

/**
 * The worker named by an event that puts work in a worker's hands: a workflow task started (a
 * worker killed holding it is why such a task times out) or completed, an activity started.
 */
function workerIdentity(e: temporal.api.history.v1.IHistoryEvent): string | undefined {
  return e.workflowTaskStartedEventAttributes?.identity || e.workflowTaskCompletedEventAttributes?.identity || e.activityTaskStartedEventAttributes?.identity || undefined;
}

/** Whether `p` is one of `identities`: the SDK's default identity is `pid@host`. */
function isOneOf(p: TraderProcess, identities: ReadonlySet<string>): boolean {
  for (const id of identities) if (id.startsWith(`${p.pid}@`)) return true;
  return false;
}

/** A verdict line per failed condition; empty when the run shows exactly-once under the required faults. */
export function chaosVerdict(f: ChaosFigures, required: { kills: number }): string[] {
  const bad: string[] = [];
  if (f.kills < required.kills) bad.push(`only ${f.kills} kills (required ${required.kills})`);
  if (f.temporal_restarts < 1) bad.push('no Temporal restart');
  if (f.postgres_restarts < 1) bad.push('no PostgreSQL restart');
  if (f.temporal === 'cluster' && f.temporal_db_restarts < 1) bad.push("no restart of Temporal's PostgreSQL");
  if (f.trades === 0) bad.push('no trades: nothing was shown');
  for (const k of ['duplicate_orders', 'lost_fills', 'mismatched_trades', 'stuck_workflows', 'orders_missing_in_ledger', 'orders_missing_on_exchange', 'order_status_mismatches'] as const) {
    if (f[k] !== 0) bad.push(`${k} = ${f[k]}`);
  }
  return bad;
}

export type { Cluster };

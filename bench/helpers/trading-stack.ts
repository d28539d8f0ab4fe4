import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Worker, bundleWorkflowCode, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { createActivities, type Activities } from '../../activities';
import type { TradingDeps } from '../../activities/trading';
import { parseConfig, type AppConfig } from '../../infra/config';
import { createLogger, type Logger } from '../../infra/logger';
import { TestWorkflowEnvironment as Env } from '@temporalio/testing';
import { executableFor, installTemporalRuntime } from '../../infra/temporal';
import { devServerExtraArgs } from '../../infra/dev-server-lifecycle';
import { freshDatabase, stopTestServer, type TestDatabase } from '../../testkit/db';
import { registerSearchAttributes, SEARCH_ATTRIBUTES } from '../../infra/temporal';
import { startClusterOnOwnPostgres } from '../../testkit/cluster-processes';

/**
 * What the trading benchmarks share: a real Temporal dev server (SQLite file on disk, as
 * `trader up` runs it), a real embedded PostgreSQL with a fresh migrated database per run, and
 * a trading worker built exactly as workers/trading.ts builds it (same options; the workflow
 * code is bundled once per bench instead of once per worker, and optionally with the
 * local-vs-regular measurement shim).
 */

export const DATA_DIR = process.env.SHARED_DATA_DIR ?? path.join(__dirname, '..', '..', '..', 'shared', 'data');

/** Quiet by default: activity logs on stdout would bury the figures. BENCH_LOG_LEVEL=info to see them. */
export function benchLog(): Logger {
  return createLogger({ level: process.env.BENCH_LOG_LEVEL ?? 'error', name: 'bench' });
}

/** The defaults `trader up` runs with (no .env, no environment): risk settings, capital, strategy. */
export function defaultConfig(): AppConfig {
  return parseConfig({});
}

export function machineLine(): string {
  const cpus = os.cpus();
  return `${cpus[0]?.model ?? 'unknown cpu'} x${cpus.length}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, node ${process.version}`;
}

export function loadLine(): string {
  return os.loadavg().map((x) => x.toFixed(2)).join(' ');
}

/** What the benches use of a Temporal server: the test environment's client, worker connection and namespace. */
export type BenchTemporal = Pick<Env, 'client' | 'nativeConnection' | 'namespace' | 'address'>;

export interface BenchStack {
  env: BenchTemporal;
  /** 'dev': the dev server as `trader up` runs it; 'cluster': two production server nodes on PostgreSQL (testkit/temporal-cluster.ts). */
  temporal: 'dev' | 'cluster';
  dir: string;
  freshDatabase(): Promise<TestDatabase>;
  close(): Promise<void>;
}

/**
 * The dev server (its SQLite under a temp dir, as openTemporal runs it for `trader up`) and the
 * embedded PostgreSQL, both real. `experiment` (serverExperiment: dynamic config values, SQLite
 * pragmas in place of the product's) is for experiments only; without it the server runs as
 * `trader up` starts it.
 */
export async function openBenchStack(name: string, experiment: ServerExperiment = NO_EXPERIMENT, o: { temporal?: 'dev' | 'cluster' } = {}): Promise<BenchStack> {
  // Not mkdtemp's 0700: keep it readable, like TRADER_HOME, in case a server runs as another user.
  const dir = path.join(os.tmpdir(), `dt-bench-${name}-${process.pid}`);
  fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
  fs.chmodSync(dir, 0o755);
  // The SDK runtime's logger (workflow log lines such as 'candle problems'): errors only, off stdout's figures.
  installTemporalRuntime(createLogger({ level: process.env.BENCH_LOG_LEVEL ?? 'error', name: 'bench' }));
  const dbs: TestDatabase[] = [];
  let temporal: { kind: 'dev' | 'cluster'; env: BenchTemporal; stop(): Promise<void> };
  if (o.temporal === 'cluster') {
    if (experiment.dynamicConfig.length > 0 || experiment.sqlitePragmas) throw new Error('--dynamic-config and --sqlite-pragma are dev server experiments; not with --cluster');
    temporal = await benchCluster(dir);
  } else {
    const env = await Env.createLocal({
      server: {
        executable: executableFor('temporal', process.env.TEMPORAL_CLI_PATH, path.join(os.tmpdir(), 'durable-trader-temporal')),
        ip: '127.0.0.1',
        dbFilename: path.join(dir, 'temporal.sqlite'),
        searchAttributes: SEARCH_ATTRIBUTES,
        log: { format: 'json', level: 'error' },
        extraArgs: devServerExtraArgs({ dynamicConfig: experiment.dynamicConfig, sqlitePragmas: experiment.sqlitePragmas }),
      },
    });
    temporal = { kind: 'dev', env, stop: () => env.teardown() };
  }
  return {
    dir,
    temporal: temporal.kind,
    env: temporal.env,
    async freshDatabase() {
      const db = await freshDatabase();
      dbs.push(db);
      return db;
    },
    async close() {
      for (const db of dbs) await db.drop().catch(() => undefined);
      await stopTestServer().catch(() => undefined);
      await temporal.stop().catch(() => undefined);
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The two-node cluster on its own PostgreSQL, with the search attributes registered and usable. */
async function benchCluster(dir: string): Promise<{ kind: 'cluster'; env: BenchTemporal; stop(): Promise<void> }> {
  const log = benchLog();
  const { cluster, temporalDb } = await startClusterOnOwnPostgres(dir, log);
  const connection = await Connection.connect({ address: cluster.address });
  const client = new Client({ connection, namespace: 'default' });
  await registerSearchAttributes(client, 'default', log);
  // A start naming them is refused ("no mapping defined") until the servers' search attribute
  // caches have them (seconds). The trading workflows are started by an activity in `trader up`,
  // which retries; the benches start them directly: a probe workflow is started until it is
  // accepted, then ended.
  for (let attempt = 0; ; attempt++) {
    try {
      const probe = await client.workflow.start('searchAttributeProbe', { taskQueue: 'bench-probe', workflowId: `bench-probe-${process.pid}`, typedSearchAttributes: SEARCH_ATTRIBUTES.map((key) => ({ key, value: 'probe' })) });
      await probe.terminate('search attributes usable');
      break;
    } catch (err) {
      if (attempt >= 60 || !/no mapping defined/.test(String((err as { cause?: Error }).cause?.message ?? err))) throw err;
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
  const nativeConnection = await NativeConnection.connect({ address: cluster.address });
  return {
    kind: 'cluster',
    env: { client, nativeConnection, namespace: 'default', address: cluster.address },
    async stop() {
      await nativeConnection.close().catch(() => undefined);
      await connection.close().catch(() => undefined);
      await cluster.stop().catch(() => undefined);
      await temporalDb.stop().catch(() => undefined);
    },
  };
}

export type PrepareKind = 'local' | 'regular';

const bundles = new Map<PrepareKind, Promise<WorkflowBundleWithSourceMap>>();

/**
 * workflows/ bundled as the worker bundles it; 'regular' swaps `@temporalio/workflow` for the
 * shim that turns proxyLocalActivities into proxyActivities (same options), for the comparison.
 */
export function workflowBundle(kind: PrepareKind): Promise<WorkflowBundleWithSourceMap> {
  let b = bundles.get(kind);
  if (!b) {
    b = bundleWorkflowCode({
      workflowsPath: require.resolve('../../workflows'),
      logger: new DefaultLogger('WARN'),
      webpackConfigHook:
        kind === 'regular'
          ? (config) => {
              const resolve = (config.resolve ??= {});
              resolve.alias = { ...(resolve.alias as Record<string, string | false>), '@temporalio/workflow$': require.resolve('./regular-prepare-shim') };
              return config;
            }
          : undefined,
    });
    bundles.set(kind, b);
  }
  return b;
}

/** workers/trading.ts createTradingWorker's options, with a prepared bundle; `trading` comes from buildTradingDeps (workers/trading-deps.ts), as the real worker's. */
export async function tradingWorker(
  stack: BenchStack,
  opts: { taskQueue: string; sql: TestDatabase['sql']; log: Logger; trading: TradingDeps; prepare: PrepareKind; observe?: (activities: Activities) => Activities },
): Promise<Worker> {
  const activities = createActivities({ sql: opts.sql, log: opts.log, trading: opts.trading });
  return Worker.create({
    connection: stack.env.nativeConnection,
    namespace: stack.env.namespace ?? 'default',
    taskQueue: opts.taskQueue,
    workflowBundle: await workflowBundle(opts.prepare),
    activities: opts.observe ? opts.observe(activities) : activities,
  });
}

/** `--name value` and `--flag` from argv; unknown names are refused so a typo never runs the default silently. */
/** The dev server experiments a bench accepts: `...SERVER_EXPERIMENT_ARGS` in its parseArgs spec. */
export const SERVER_EXPERIMENT_ARGS = { 'dynamic-config': 'value', 'sqlite-pragma': 'value' } as const;

export interface ServerExperiment {
  dynamicConfig: string[];
  /** In place of the product's SQLite settings (e.g. journal_mode=delete,synchronous=full: SQLite's own defaults). */
  sqlitePragmas?: string[];
  /** For the bench's header: how the server runs. */
  description: string;
}

const NO_EXPERIMENT: ServerExperiment = { dynamicConfig: [], description: 'as trader up starts it' };

/** --dynamic-config KEY=VALUE,... and --sqlite-pragma PRAGMA=VALUE,...: printed as EXPERIMENT; the reported figures are without them. */
export function serverExperiment(args: Map<string, string | true>): ServerExperiment {
  const list = (name: string) => (args.get(name) as string | undefined)?.split(',').filter(Boolean);
  const dynamicConfig = list('dynamic-config') ?? [];
  const sqlitePragmas = list('sqlite-pragma');
  const parts = [...(dynamicConfig.length ? [`dynamic config ${dynamicConfig.join(', ')}`] : []), ...(sqlitePragmas ? [`SQLite ${sqlitePragmas.join(', ')}`] : [])];
  const sqlite = devServerExtraArgs({ sqlitePragmas }).filter((a) => !a.startsWith('--')).join(', ');
  return { dynamicConfig, sqlitePragmas, description: parts.length ? `with ${parts.join('; ')} (EXPERIMENT)` : `as trader up starts it (SQLite ${sqlite})` };
}

export function parseArgs(argv: string[], known: Record<string, 'value' | 'flag'>): Map<string, string | true> {
  const out = new Map<string, string | true>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const m = /^--([a-z0-9-]+)(?:=(.*))?$/.exec(a);
    if (!m || !(m[1] in known)) throw new Error(`unknown argument ${a}; known: ${Object.keys(known).map((k) => `--${k}`).join(' ')}`);
    if (known[m[1]] === 'flag') {
      out.set(m[1], true);
      continue;
    }
    const v = m[2] ?? argv[++i];
    if (v === undefined) throw new Error(`--${m[1]} needs a value`);
    out.set(m[1], v);
  }
  return out;
}

export function numberArg(args: Map<string, string | true>, name: string, dflt: number, check: (x: number) => boolean = (x) => Number.isFinite(x) && x > 0): number {
  const v = args.get(name);
  if (v === undefined) return dflt;
  const n = Number(v);
  if (v === true || !check(n)) throw new Error(`--${name} must be a positive number, got ${String(v)}`);
  return n;
}

/**
 * CPU seconds used so far by this process and its descendants (the Temporal dev server, the
 * embedded PostgreSQL and its backends), grouped by program name, from /proc (Linux). Two
 * samples around a burst tell which part of the stack the machine's cores went to.
 */
export function cpuByProgram(): Map<string, number> {
  const out = new Map<string, number>();
  let procs: Array<{ pid: number; ppid: number; comm: string; cpuS: number }> = [];
  try {
    for (const entry of fs.readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      try {
        procs.push({ pid: Number(entry), ...statCpuSeconds(fs.readFileSync(`/proc/${entry}/stat`, 'utf8')) });
      } catch {
        // the process ended while we looked
      }
    }
  } catch {
    return out; // not Linux
  }
  const mine = new Set([process.pid]);
  for (let grew = true; grew; ) {
    grew = false;
    for (const p of procs) {
      if (!mine.has(p.pid) && mine.has(p.ppid)) {
        mine.add(p.pid);
        grew = true;
      }
    }
  }
  procs = procs.filter((p) => mine.has(p.pid));
  for (const p of procs) {
    const name = p.pid === process.pid ? 'worker (node)' : p.comm.startsWith('postgres') ? 'postgres' : p.comm.startsWith('temporal') ? 'temporal server' : p.comm;
    out.set(name, (out.get(name) ?? 0) + p.cpuS);
  }
  return out;
}

/** "worker (node) 12.3 s, temporal server 8.1 s, postgres 5.0 s" between two samples. */
export function cpuDelta(before: Map<string, number>, after: Map<string, number>): string {
  return [...after.entries()]
    .map(([k, v]) => [k, v - (before.get(k) ?? 0)] as const)
    .filter(([, v]) => v >= 0.05)
    .sort((a, b) => b[1] - a[1])
    .map(([k, v]) => `${k} ${v.toFixed(1)} s`)
    .join(', ');
}

/** User + system CPU seconds in the text of a /proc stat file (fields 14 and 15, in 1/100 s). */
function statCpuSeconds(stat: string): { comm: string; ppid: number; cpuS: number } {
  const close = stat.lastIndexOf(')');
  const f = stat.slice(close + 2).split(' ');
  return { comm: stat.slice(stat.indexOf('(') + 1, close), ppid: Number(f[1]), cpuS: (Number(f[11]) + Number(f[12])) / 100 };
}

/** A process's CPU seconds so far, its ended threads included (/proc/PID/stat); NaN where there is no /proc. */
export function processCpuSeconds(pid: number): number {
  try {
    return statCpuSeconds(fs.readFileSync(`/proc/${pid}/stat`, 'utf8')).cpuS;
  } catch {
    return NaN;
  }
}

/** CPU seconds so far of each thread of a process (default this one), by thread id, from /proc (Linux; empty elsewhere). */
export function cpuByThread(pid: number = process.pid): Map<number, { name: string; cpuS: number }> {
  const out = new Map<number, { name: string; cpuS: number }>();
  try {
    for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
      try {
        const t = statCpuSeconds(fs.readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8'));
        out.set(Number(tid), { name: t.comm, cpuS: t.cpuS });
      } catch {
        // the thread ended while we looked
      }
    }
  } catch {
    // not Linux
  }
  return out;
}

/**
 * The worker's CPU between two cpuByThread samples, by kind of thread: the main JS thread
 * (activities, the pg driver, the SDK's JS side), the threads created when the Worker was
 * (`workerThreads`: the workflow VM thread, which runs every activation), the SDK core's tokio
 * threads (Rust: polling, history, gRPC), and the rest (V8's GC and compiler helpers, libuv's pool).
 */
export function workerCpuByThread(before: Map<number, { name: string; cpuS: number }>, after: Map<number, { name: string; cpuS: number }>, workerThreads: ReadonlySet<number>): Array<[string, number]> {
  const out = new Map<string, number>();
  for (const [tid, t] of after) {
    const kind =
      tid === process.pid
        ? 'main JS thread'
        : t.name.startsWith('tokio') || t.name.startsWith('temporal') || t.name.startsWith('workflow-proces')
          ? 'SDK core (Rust threads)'
          : workerThreads.has(tid)
            ? 'workflow VM thread'
            : 'V8 helpers (GC, compiler), libuv pool';
    out.set(kind, (out.get(kind) ?? 0) + t.cpuS - (before.get(tid)?.cpuS ?? 0));
  }
  return [...out].sort((a, b) => b[1] - a[1]);
}

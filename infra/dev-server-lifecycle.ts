import fs from 'node:fs';
import path from 'node:path';
import type { Logger } from './logger';
import { describeProcess, isAlive, listProcesses, stopProcess, type ProcessInfo } from './processes';

/**
 * The local Temporal dev server across crashes of the `trader` process that runs it.
 *
 * The SDK starts the server (the `temporal` CLI) as a child process from its native core and
 * gives no handle on it, so a `trader up` killed with SIGKILL (or by the OOM killer) leaves it
 * running: an orphan holding TEMPORAL_PORT and the SQLite file, and the next start would refuse.
 * Node cannot ask Linux to kill a child with its parent (prctl PR_SET_PDEATHSIG), so the next
 * start cleans up instead, as infra/postgres.ts does for the embedded PostgreSQL:
 *
 * - after a start, the server's pid and ours go into `<TRADER_HOME>/temporal/dev-server.json`;
 * - before a start, every `temporal server start-dev` on this TRADER_HOME's SQLite file (found
 *   by command line, so a server from before pid files existed is found too) is judged: its
 *   owner is the pid recorded for it, else its parent. An owner that is gone, or that is no
 *   longer its parent (the server was re-parented to init or a subreaper), makes it an orphan:
 *   stopped (SIGTERM, so SQLite is left consistent; SIGKILL after 10 s). A living owner is another
 *   trader process using this TRADER_HOME: refused with a message that names it.
 */

export interface DevServerRecord {
  serverPid: number;
  ownerPid: number;
  dbFilename: string;
  port: number;
  uiPort: number;
  startedAt: string;
}

export class DevServerInUseError extends Error {
  override name = 'DevServerInUseError';
}

/** Where `trader up` keeps the dev server's files: TRADER_HOME/temporal. */
export function temporalHome(traderHome: string): string {
  return path.join(traderHome, 'temporal');
}

/** The dev server's SQLite file under its home (TRADER_HOME/temporal). */
export function devServerDbFile(home: string): string {
  return path.join(home, 'temporal.sqlite');
}

/** How often the dev server's SQLite waits for the disk: `synchronous` under write-ahead logging. */
export const SQLITE_SYNCHRONOUS = ['normal', 'full', 'extra'] as const;
export type SqliteSynchronous = (typeof SQLITE_SYNCHRONOUS)[number];

/**
 * The extra command-line arguments of every dev server this project starts (`trader up`, tests,
 * benchmarks): its SQLite settings, then what the caller adds (dynamic config values, the UI's
 * codec endpoint). `sqlitePragmas` (benchmark experiments only) replaces the SQLite settings.
 *
 * SQLite: write-ahead logging instead of SQLite's default rollback journal (which creates,
 * syncs and deletes a journal file on every transaction), and `synchronous` (default `normal`):
 * with `normal` a commit survives the process being killed (SIGKILL, OOM) but the last commits
 * may roll back if the machine itself loses power; `full` syncs every commit. Measured
 * (`npm run bench -- workflow-floor --candles 60`, one session): the server's CPU per candle
 * 9.93 ms with the journal, 8.26 ms with WAL and `full`, 6.15 ms with WAL and `normal`.
 * Rolling back the last commits after a power cut repeats work the workflows had recorded, which
 * the client order ids and the ledger's unique fills make harmless (no second order, no second fill).
 */
export function devServerExtraArgs(o: { synchronous?: SqliteSynchronous; sqlitePragmas?: readonly string[]; dynamicConfig?: readonly string[]; uiCodecEndpoint?: string } = {}): string[] {
  const pragmas = o.sqlitePragmas ?? ['journal_mode=wal', `synchronous=${o.synchronous ?? 'normal'}`];
  return [
    ...pragmas.flatMap((p) => ['--sqlite-pragma', p]),
    ...(o.dynamicConfig ?? []).flatMap((kv) => ['--dynamic-config-value', kv]),
    ...(o.uiCodecEndpoint ? ['--ui-codec-endpoint', o.uiCodecEndpoint] : []),
  ];
}

export function devServerRecordFile(home: string): string {
  return path.join(home, 'dev-server.json');
}

function readRecord(home: string): DevServerRecord | undefined {
  try {
    return JSON.parse(fs.readFileSync(devServerRecordFile(home), 'utf8')) as DevServerRecord;
  } catch {
    return undefined;
  }
}

/** `--db-filename X` of a dev server's command line, resolved; undefined for any other program. */
function dbFileOf(p: ProcessInfo): string | undefined {
  if (!p.argv.includes('start-dev')) return undefined;
  const i = p.argv.indexOf('--db-filename');
  return i >= 0 && p.argv[i + 1] ? path.resolve(p.argv[i + 1]) : undefined;
}

/** Every dev server running on this SQLite file. */
function serversOn(dbFilename: string): ProcessInfo[] {
  const want = path.resolve(dbFilename);
  return listProcesses().filter((p) => dbFileOf(p) === want);
}

/**
 * Stops dev servers on `dbFilename` left behind by a killed trader; throws DevServerInUseError
 * when a living trader process runs one.
 */
export async function replaceOrphanedDevServer(o: { home: string; log: Logger }): Promise<void> {
  const record = readRecord(o.home);
  const dbFilename = devServerDbFile(o.home);
  for (const server of serversOn(dbFilename)) {
    const owner = record?.serverPid === server.pid ? record.ownerPid : server.ppid;
    const orphan = owner === undefined || owner === 1 || !isAlive(owner) || server.ppid !== owner;
    if (!orphan) {
      const who = describeProcess(owner);
      throw new DevServerInUseError(
        `the Temporal dev server for ${dbFilename} (pid ${server.pid}) belongs to a running process (pid ${owner}${who?.argv.length ? `: ${who.argv.join(' ').slice(0, 120)}` : ''}): ` +
          `stop that one first, or set TEMPORAL_ADDRESS=127.0.0.1:${record?.port ?? 7233} to join it`,
      );
    }
    o.log.warn({ orphanPid: server.pid, ownerPid: owner ?? null }, 'found an orphaned Temporal dev server on this TRADER_HOME (the trader that ran it was killed); stopping it to start a fresh one');
    const how = await stopProcess(server.pid, { signal: 'SIGTERM', graceMs: 10_000 });
    o.log.info({ orphanPid: server.pid, how }, 'orphaned Temporal dev server stopped');
  }
  if (record && !isAlive(record.serverPid)) fs.rmSync(devServerRecordFile(o.home), { force: true });
}

/** After a start: records the server this process just started (found among our children). */
export function recordDevServer(o: { home: string; port: number; uiPort: number; log: Logger }): DevServerRecord | undefined {
  const dbFilename = devServerDbFile(o.home);
  const mine = serversOn(dbFilename).find((p) => p.ppid === process.pid);
  if (!mine) {
    // Not fatal: without the record the next start still finds an orphan by its command line.
    o.log.warn({ dbFilename }, 'could not find the Temporal dev server process just started; it is not recorded');
    return undefined;
  }
  const record: DevServerRecord = { serverPid: mine.pid, ownerPid: process.pid, dbFilename: path.resolve(dbFilename), port: o.port, uiPort: o.uiPort, startedAt: new Date().toISOString() };
  fs.writeFileSync(devServerRecordFile(o.home), JSON.stringify(record, null, 2) + '\n');
  return record;
}

/** After a clean stop. */
export function forgetDevServer(home: string, record: DevServerRecord | undefined): void {
  if (record && readRecord(home)?.serverPid === record.serverPid) fs.rmSync(devServerRecordFile(home), { force: true });
}

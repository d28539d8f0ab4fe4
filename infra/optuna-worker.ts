import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import type { Logger } from './logger';
import type { TemporalSecurity } from './temporal-security';
import { OPTUNA_TASK_QUEUE } from '../lib/contracts/hyperopt';
import { PROJECT_ROOT } from './project-root';

/**
 * The Optuna sampler of `trader hyperopt` is a small Python Temporal worker (workers/optuna/worker.py,
 * task queue `optuna`, activities in lib/contracts/hyperopt.ts). scripts/setup-optuna.sh installs
 * its packages into the virtualenv .tools/optuna; this module finds that install and runs the
 * worker as a child process: env passed, its stderr log lines forwarded to our logger, started
 * once it prints its ready line (it polls then), stopped with SIGTERM (it drains) and, as it is
 * started with --exit-with-stdin, gone by itself when this process dies.
 */

// The project's directory, also when this runs from the build in dist/ (.tools and workers/optuna are not compiled).
const REPO_ROOT = PROJECT_ROOT;
/** The line worker.py prints on stdout, followed by JSON, once it polls. */
export const OPTUNA_READY_PREFIX = 'OPTUNA_WORKER_READY';
export const OPTUNA_SETUP_SCRIPT = 'scripts/setup-optuna.sh';

export interface OptunaWorkerPaths {
  /** The virtualenv's interpreter: .tools/optuna/bin/python (or OPTUNA_WORKER_PYTHON). */
  python: string;
  /** workers/optuna/worker.py */
  script: string;
  /** .tools/optuna/bin/optuna-dashboard */
  dashboard: string;
}

export class OptunaNotInstalledError extends Error {
  constructor(missing: string) {
    super(`the Optuna worker's Python packages are not installed (${missing} is missing): run bash ${OPTUNA_SETUP_SCRIPT} (it installs them from PyPI into .tools/optuna)`);
    this.name = 'OptunaNotInstalledError';
  }
}

/**
 * Where the worker and its interpreter are: OPTUNA_WORKER_PYTHON overrides the interpreter (one
 * that has workers/optuna/requirements.txt installed). Does not check that they exist.
 */
export function optunaWorkerPaths(env: NodeJS.ProcessEnv = process.env, root = REPO_ROOT): OptunaWorkerPaths {
  const bin = path.join(root, '.tools', 'optuna', 'bin');
  return {
    python: env.OPTUNA_WORKER_PYTHON || path.join(bin, 'python'),
    script: path.join(root, 'workers', 'optuna', 'worker.py'),
    dashboard: path.join(bin, 'optuna-dashboard'),
  };
}

/** The paths, when the install is there; undefined otherwise (callers that may skip, like tests). */
export function findOptunaWorker(env: NodeJS.ProcessEnv = process.env, root = REPO_ROOT): OptunaWorkerPaths | undefined {
  const paths = optunaWorkerPaths(env, root);
  return missingPiece(paths) ? undefined : paths;
}

/** The paths, or an OptunaNotInstalledError naming scripts/setup-optuna.sh: for `trader worker --queue optuna`. */
export function requireOptunaWorker(env: NodeJS.ProcessEnv = process.env, root = REPO_ROOT): OptunaWorkerPaths {
  const paths = optunaWorkerPaths(env, root);
  const missing = missingPiece(paths);
  if (missing) throw new OptunaNotInstalledError(missing);
  return paths;
}

function missingPiece(paths: OptunaWorkerPaths): string | undefined {
  try {
    fs.accessSync(paths.python, fs.constants.X_OK);
  } catch {
    return paths.python;
  }
  return fs.existsSync(paths.script) ? undefined : paths.script;
}

/**
 * The command that opens a study of this database in optuna-dashboard (Optuna's tables are in
 * the schema `optuna`): `<.tools/optuna/bin/optuna-dashboard> <SQLAlchemy URL>`.
 */
export function optunaDashboardCommand(databaseUrl: string, env: NodeJS.ProcessEnv = process.env): string[] {
  return [optunaWorkerPaths(env).dashboard, optunaStorageUrl(databaseUrl)];
}

/** DATABASE_URL (postgres://...) as worker.py turns it into Optuna's storage URL, search_path `optuna`. */
export function optunaStorageUrl(databaseUrl: string): string {
  const u = new URL(databaseUrl);
  if (u.protocol !== 'postgres:' && u.protocol !== 'postgresql:') throw new Error(`not a postgres:// URL: ${u.protocol}`);
  const options = [...u.searchParams.getAll('options'), '-csearch_path=optuna'].join(' ');
  u.searchParams.delete('options');
  u.searchParams.append('options', options);
  return `postgresql+psycopg2:${u.toString().slice(u.protocol.length)}`;
}

export interface OptunaWorkerOptions {
  /** host:port of the Temporal frontend (TEMPORAL_ADDRESS). */
  temporalAddress: string;
  namespace: string;
  /** Default `optuna` (OPTUNA_TASK_QUEUE of lib/contracts/hyperopt.ts). */
  taskQueue?: string;
  /** postgres://... of the project's database; Optuna's tables go into its schema `optuna`. */
  databaseUrl: string;
  log: Logger;
  /** How long to wait for the ready line (default 60 s; a start takes a second or two, more on a cold disk). */
  readyTimeoutMs?: number;
  /**
   * TLS, API key and payload encryption as this process resolved them (cfg.temporal): handed to
   * the child as the TEMPORAL_* variables worker.py reads (PEMs inline), replacing any inherited
   * ones. Without it the child sees this process's environment only, and a `.env` file's settings
   * (which the config reads without putting them into process.env) would not reach it.
   */
  security?: Pick<TemporalSecurity, 'tls' | 'apiKey' | 'encryptionKeys'>;
  /** More environment for the child (e.g. OPTUNA_WORKER_LOG_LEVEL). */
  env?: NodeJS.ProcessEnv;
}

type SecurityVar = 'TEMPORAL_TLS' | 'TEMPORAL_TLS_CERT' | 'TEMPORAL_TLS_KEY' | 'TEMPORAL_TLS_CA' | 'TEMPORAL_TLS_SERVER_NAME' | 'TEMPORAL_API_KEY' | 'TEMPORAL_ENCRYPTION' | 'TEMPORAL_ENCRYPTION_KEYS';

/** The TEMPORAL_* variables of workers/optuna/temporal_connection.py for these settings (every one of them, unset ones undefined). */
export function securityEnv(s: NonNullable<OptunaWorkerOptions['security']>): Record<SecurityVar, string | undefined> {
  const keys = s.encryptionKeys ?? [];
  return {
    TEMPORAL_TLS: s.tls ? 'true' : 'false',
    TEMPORAL_TLS_CERT: s.tls?.clientCertPair?.crt.toString('utf8'),
    TEMPORAL_TLS_KEY: s.tls?.clientCertPair?.key.toString('utf8'),
    TEMPORAL_TLS_CA: s.tls?.serverRootCACertificate?.toString('utf8'),
    TEMPORAL_TLS_SERVER_NAME: s.tls?.serverNameOverride,
    TEMPORAL_API_KEY: s.apiKey,
    TEMPORAL_ENCRYPTION: keys.length > 0 ? 'true' : 'false',
    TEMPORAL_ENCRYPTION_KEYS: keys.length > 0 ? keys.map((k) => `${k.id}:${k.key.toString('base64')}`).join(',') : undefined,
  };
}

export interface OptunaWorkerProcess {
  pid: number;
  /** The process's end: its exit code, or the signal that ended it. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGTERM (the worker drains its activities), then SIGKILL after `timeoutMs` (default 10 s). */
  stop(timeoutMs?: number): Promise<void>;
  /** Sends a signal at once (tests kill -9 it). */
  kill(signal?: NodeJS.Signals): void;
}

/** Python's log line (worker.py's format): `<date> <time> LEVEL logger: message`. */
const LOG_LINE = /^\S+ \S+ (DEBUG|INFO|WARNING|ERROR|CRITICAL) (\S+): (.*)$/;

/**
 * Starts workers/optuna/worker.py and resolves once it polls its task queue. Rejects with
 * OptunaNotInstalledError when .tools/optuna is missing, and with the worker's last log lines when
 * it exits (or stays silent past readyTimeoutMs) before it is ready.
 */
export async function startOptunaWorker(opts: OptunaWorkerOptions): Promise<OptunaWorkerProcess> {
  const paths = requireOptunaWorker(opts.env ? { ...process.env, ...opts.env } : process.env);
  const taskQueue = opts.taskQueue ?? OPTUNA_TASK_QUEUE;
  const log = opts.log.child({ component: 'optuna-worker', taskQueue });
  const env: NodeJS.ProcessEnv = { ...process.env, ...opts.env };
  if (opts.security) {
    for (const [name, value] of Object.entries(securityEnv(opts.security))) {
      if (value === undefined) delete env[name];
      else env[name] = value;
    }
  }
  const child = spawn(paths.python, ['-u', paths.script, '--exit-with-stdin'], {
    env: {
      ...env,
      TEMPORAL_ADDRESS: opts.temporalAddress,
      TEMPORAL_NAMESPACE: opts.namespace,
      OPTUNA_TASK_QUEUE: taskQueue,
      DATABASE_URL: opts.databaseUrl,
      PYTHONUNBUFFERED: '1',
    },
    // stdin stays open: the worker stops when it closes, i.e. when this process is gone.
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  const recent: string[] = [];
  readline.createInterface({ input: child.stderr! }).on('line', (line) => {
    // worker.py writes a record on one line, a traceback's newlines escaped.
    recent.push(line.replace(/\\n/g, '\n'));
    if (recent.length > 30) recent.shift();
    const m = LOG_LINE.exec(line);
    if (!m) return log.warn(line);
    const [, level, logger, escaped] = m;
    const message = escaped.replace(/\\n/g, '\n');
    const fields = { python: logger };
    if (level === 'ERROR' || level === 'CRITICAL') log.error(fields, message);
    else if (level === 'WARNING') log.warn(fields, message);
    else if (level === 'DEBUG') log.debug(fields, message);
    else log.info(fields, message);
  });
  const ready = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the Optuna worker printed no ready line within ${opts.readyTimeoutMs ?? 60_000} ms; its last lines:\n${recent.join('\n')}`)), opts.readyTimeoutMs ?? 60_000);
    readline.createInterface({ input: child.stdout! }).on('line', (line) => {
      if (line.startsWith(OPTUNA_READY_PREFIX)) {
        clearTimeout(timer);
        resolve();
      } else log.info(line);
    });
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`the Optuna worker exited (${signal ?? `code ${code}`}) before it was ready; its last lines:\n${recent.join('\n')}`));
    });
  });
  // Writing is never done; a closed pipe (the child gone) must not fail this process.
  child.stdin!.on('error', () => undefined);
  try {
    await ready;
  } catch (err) {
    // A spawn that failed (no pid) never exits.
    if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
    throw err;
  }
  log.info({ pid: child.pid }, 'optuna worker polling');
  return {
    pid: child.pid!,
    exited,
    kill: (signal = 'SIGKILL') => {
      child.kill(signal);
    },
    async stop(timeoutMs = 10_000) {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      await exited;
      clearTimeout(timer);
    },
  };
}

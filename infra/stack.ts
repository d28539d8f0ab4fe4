import path from 'node:path';
import type { AppConfig } from './config';
import { secretsOf } from './config';
import { createLogger, registerSecret, setRootLogger, type Logger } from './logger';
import { openDatabase, type Database } from './postgres';
import { installTemporalRuntime, openTemporal, type TemporalStack } from './temporal';

export interface Stack {
  cfg: AppConfig;
  log: Logger;
  db: Database;
  temporal: TemporalStack;
  close(): Promise<void>;
}

/** Sets up the process logger from the config; secrets are registered before anything logs. */
export function processLogger(cfg: AppConfig): Logger {
  for (const s of secretsOf(cfg)) registerSecret(s);
  const log = createLogger({ level: cfg.logLevel });
  setRootLogger(log);
  return log;
}

/**
 * The ledger and Temporal, embedded or external as the config says. Closed in reverse order
 * of opening; a failure half-way closes what was already open.
 */
export async function openStack(cfg: AppConfig, log: Logger, dbOpts: { database?: string; fresh?: boolean } = {}): Promise<Stack> {
  const db = await openDatabase({ databaseUrl: cfg.databaseUrl, home: cfg.home, port: cfg.postgresPort, log: log.child({ component: 'postgres' }), ...dbOpts });
  let temporal: TemporalStack;
  try {
    installTemporalRuntime(log);
    temporal = await openTemporal({ ...cfg.temporal, home: path.join(cfg.home, 'temporal'), log: log.child({ component: 'temporal' }) });
  } catch (err) {
    await db.close();
    throw err;
  }
  return {
    cfg,
    log,
    db,
    temporal,
    async close() {
      await temporal.close().catch((err: unknown) => log.error({ err }, 'closing Temporal failed'));
      await db.close().catch((err: unknown) => log.error({ err }, 'closing PostgreSQL failed'));
    },
  };
}

/**
 * Ctrl-C / SIGTERM: run `stop` once; a second signal while stopping exits at once.
 * Returns a promise that resolves when a signal arrives.
 */
export function onShutdownSignal(log: Logger): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    let stopping = false;
    const handler = (signal: NodeJS.Signals) => {
      if (stopping) {
        log.warn({ signal }, 'second signal: exiting without a clean shutdown');
        process.exit(130);
      }
      stopping = true;
      log.info({ signal }, 'stopping: finishing in-flight activities, then closing Temporal and PostgreSQL (Ctrl-C again to force)');
      resolve(signal);
    };
    process.on('SIGINT', handler);
    process.on('SIGTERM', handler);
  });
}

/**
 * Starts the trading worker on the stack; returns a function that waits for the worker to
 * end (a shutdown signal or a worker failure), drains it and closes the stack.
 */
export async function startTradingWorker(
  stack: Stack,
  stopSignal: Promise<NodeJS.Signals>,
  trading?: import('../activities/trading').TradingDeps,
  alerts?: import('../activities/alerts').AlertDispatcher,
): Promise<{ untilStopped(): Promise<void> }> {
  // Lazy require, not import(): under tsx's CommonJS hook a relative import() of a .ts file fails on Node 20.
  const { createActivities } = require('../activities') as typeof import('../activities');
  const { createTradingWorker } = require('../workers/trading') as typeof import('../workers/trading');
  const worker = await createTradingWorker({
    connection: stack.temporal.nativeConnection,
    namespace: stack.temporal.namespace,
    taskQueue: stack.cfg.temporal.taskQueue,
    activities: createActivities({ sql: stack.db.sql, log: stack.log, trading, alerts }),
  });
  const running = worker.run();
  return {
    async untilStopped() {
      await Promise.race([stopSignal, running]);
      if (worker.getState() === 'RUNNING') worker.shutdown();
      await running.catch((err: unknown) => stack.log.error({ err }, 'worker stopped with an error'));
      await stack.close();
      stack.log.info('stopped');
    },
  };
}

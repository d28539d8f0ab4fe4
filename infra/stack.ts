import type { AppConfig } from './config';
import { secretsOf } from './config';
import { createLogger, registerSecret, setRootLogger, type Logger } from './logger';
import { openDatabase, type Database } from './postgres';
import { assertBindable, installTemporalRuntime, openTemporal, type TemporalStack } from './temporal';
import { replaceOrphanedDevServer, temporalHome } from './dev-server-lifecycle';

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
  const log = createLogger({ level: cfg.logLevel, format: cfg.logFormat });
  setRootLogger(log);
  return log;
}

/**
 * The ledger and Temporal, embedded or external as the config says. Closed in reverse order
 * of opening; a failure half-way closes what was already open.
 */
export async function openStack(cfg: AppConfig, log: Logger, dbOpts: { database?: string; fresh?: boolean } = {}): Promise<Stack> {
  // Before anything is touched: a second trader on this TRADER_HOME is refused here, not after it
  // has joined the first one's PostgreSQL (and, for a replay, reset its ledger database).
  if (!cfg.temporal.address) await replaceOrphanedDevServer({ home: temporalHome(cfg.home), log: log.child({ component: 'temporal' }) });
  const db = await openDatabase({ databaseUrl: cfg.databaseUrl, home: cfg.home, port: cfg.postgresPort, log: log.child({ component: 'postgres' }), ...dbOpts });
  let temporal: TemporalStack;
  try {
    const metricsAddress = cfg.temporal.metricsAddress;
    if (metricsAddress) await assertBindable(metricsAddress, 'TEMPORAL_METRICS_ADDRESS');
    installTemporalRuntime(log, { metricsAddress });
    temporal = await openTemporal({ ...cfg.temporal, home: temporalHome(cfg.home), log: log.child({ component: 'temporal' }) });
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

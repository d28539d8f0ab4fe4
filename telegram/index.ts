import type { AppConfig } from '../infra/config';
import { UsageError } from '../infra/errors';
import type { Logger } from '../infra/logger';
import { openDatabase, type Database } from '../infra/postgres';
import { connectTemporalClient } from '../infra/temporal';
import { onShutdownSignal, processLogger, type Stack } from '../infra/stack';
import { Ledger } from '../ledger/ledger';
import { createAlertDispatcher, type AlertDispatcher } from '../activities/alerts';
import { startWatchdog } from '../control/watchdog';
import { TradingControl } from '../control/trading-control';
import { startTelegramBot, type TelegramBot } from './bot';
import { openProcessMetrics } from '../activities/metrics';

/**
 * The Telegram bot as a process of its own (`trader worker --queue telegram`, the docker-compose
 * service), or inside `trader up`.
 */

/** The Telegram bot inside `trader up`; a bot that cannot start is logged, never fatal to trading. */
export async function startBotInProcess(cfg: AppConfig, stack: Stack, account: string, exchange: string, ledger: Ledger, alerts: AlertDispatcher, log: Logger): Promise<TelegramBot | null> {
  try {
    const bot = await startTelegramBot({ cfg, control: new TradingControl(stack.temporal.client, { account, exchange }), log: log.child({ worker: 'telegram' }), ledger, alerts });
    log.info({ bot: bot.username }, 'Telegram bot running');
    return bot;
  } catch (err) {
    log.error({ err }, 'the Telegram bot could not start (check TELEGRAM_BOT_TOKEN / TELEGRAM_API_ROOT); trading continues without it');
    return null;
  }
}

/**
 * The bot on its own (the docker-compose `telegram` service): joins an existing Temporal cluster
 * (TEMPORAL_ADDRESS) and, when DATABASE_URL is set, the ledger for audit rows and the ledger
 * commands. Runs until SIGINT/SIGTERM.
 */
export async function runTelegramWorker(cfg: AppConfig, opts: { account?: string } = {}): Promise<void> {
  if (!cfg.telegram) throw new UsageError('the telegram worker needs TELEGRAM_BOT_TOKEN and TELEGRAM_ADMIN_IDS');
  if (!cfg.temporal.address) throw new UsageError('the telegram worker joins an existing stack: set TEMPORAL_ADDRESS (or use `trader up`, which starts the bot itself)');
  const log = processLogger(cfg).child({ worker: 'telegram' });
  const stopSignal = onShutdownSignal(log);
  const client = await connectTemporalClient(cfg.temporal);
  let db: Database | undefined;
  let ledger: Ledger | undefined;
  if (cfg.databaseUrl) {
    db = await openDatabase({ databaseUrl: cfg.databaseUrl, home: cfg.home, log: log.child({ component: 'postgres' }) });
    ledger = new Ledger(db.sql, { actor: 'telegram', log });
  } else {
    log.warn('DATABASE_URL is not set: no audit rows, and /trades, /profit, /balance are unavailable');
  }
  const control = new TradingControl(client, { account: opts.account ?? 'main', exchange: cfg.exchange.id });
  // This process runs no Temporal worker (a client only): its health, no SDK worker metrics.
  const alerts = createAlertDispatcher(cfg, log);
  const metrics = openProcessMetrics({ influx: cfg.influx, temporal: { ...cfg.temporal, metricsAddress: undefined } }, log, 'telegram', { alerts });
  const bot = await startTelegramBot({ cfg, control, log, ledger, alerts });
  // The trading workers are other processes: when they are gone, only this one can say so.
  const watchdog = startWatchdog(cfg, { client, control, temporalAddress: cfg.temporal.address, raise: (a) => alerts.enqueue(a), log: log.child({ component: 'watchdog' }) });
  await Promise.race([stopSignal, bot.done.catch(() => undefined)]);
  await watchdog?.stop();
  await bot.stop();
  await alerts.stop();
  await db?.close();
  await client.connection.close();
  await metrics.close();
}

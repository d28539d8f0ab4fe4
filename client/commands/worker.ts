import type { AppConfig } from '../../infra/config';
import { UsageError } from '../../infra/errors';
import { onShutdownSignal, openStack, processLogger, startTradingWorker } from '../../infra/stack';

/** One worker process against an external cluster and database (docker-compose services). */
export async function runWorker(cfg: AppConfig, queue: 'trading' | 'telegram' | 'training'): Promise<void> {
  if (queue === 'telegram') {
    const { runTelegramWorker } = require('../../telegram/bot') as typeof import('../../telegram/bot');
    const { accountName } = require('./up') as typeof import('./up');
    return runTelegramWorker(cfg, { account: accountName(cfg) });
  }
  if (!cfg.temporal.address || !cfg.databaseUrl) {
    throw new UsageError('`trader worker` joins an existing stack: set TEMPORAL_ADDRESS and DATABASE_URL (or use `trader up` for the embedded stack)');
  }
  const log = processLogger(cfg).child({ worker: queue });
  const stopSignal = onShutdownSignal(log);
  const stack = await openStack(cfg, log);
  if (queue === 'training') {
    const { startTrainingWorker } = require('./up') as typeof import('./up');
    const training = await startTrainingWorker(cfg, stack, log);
    log.info({ taskQueue: 'training', temporal: stack.temporal.address }, 'training worker running');
    await Promise.race([stopSignal, training.done]);
    training.shutdown();
    await training.done;
    await stack.close();
    return;
  }
  const { buildTrading } = require('./up') as typeof import('./up');
  const { createAlertDispatcher } = require('../../activities/alerts') as typeof import('../../activities/alerts');
  const alerts = createAlertDispatcher(cfg, log);
  const worker = await startTradingWorker(stack, stopSignal, buildTrading(cfg, stack, log, undefined, { alerts }).deps, alerts);
  log.info({ taskQueue: cfg.temporal.taskQueue, temporal: stack.temporal.address }, 'worker running');
  await worker.untilStopped();
}

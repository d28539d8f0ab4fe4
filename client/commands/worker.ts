import type { AppConfig } from '../../infra/config';
import { UsageError } from '../../infra/errors';
import { onShutdownSignal, openStack, processLogger } from '../../infra/stack';
import { createAlertDispatcher } from '../../activities/alerts';
import { accountName } from '../../lib/contracts/workflows';
import { buildTrading, startTradingWorker } from '../../workers/trading';
import { startTrainingWorker } from '../../workers/training';
import { runTelegramWorker } from '../../telegram';

/** One worker process against an external cluster and database (docker-compose services). */
export async function runWorker(cfg: AppConfig, queue: 'trading' | 'telegram' | 'training'): Promise<void> {
  if (queue === 'telegram') return runTelegramWorker(cfg, { account: accountName(cfg) });
  if (!cfg.temporal.address || !cfg.databaseUrl) {
    throw new UsageError('`trader worker` joins an existing stack: set TEMPORAL_ADDRESS and DATABASE_URL (or use `trader up` for the embedded stack)');
  }
  const log = processLogger(cfg).child({ worker: queue });
  const stopSignal = onShutdownSignal(log);
  const stack = await openStack(cfg, log);
  if (queue === 'training') {
    const training = await startTrainingWorker(cfg, stack, log);
    log.info({ taskQueue: 'training', temporal: stack.temporal.address }, 'training worker running');
    await Promise.race([stopSignal, training.done]);
    training.shutdown();
    await training.done;
    await stack.close();
    return;
  }
  const alerts = createAlertDispatcher(cfg, log);
  const worker = await startTradingWorker(stack, stopSignal, buildTrading(cfg, stack, log, undefined, { alerts }).deps, alerts);
  log.info({ taskQueue: cfg.temporal.taskQueue, temporal: stack.temporal.address }, 'worker running');
  await worker.untilStopped();
}

import type { AppConfig } from '../../infra/config';
import { UsageError } from '../../infra/errors';
import { onShutdownSignal, openStack, processLogger, type Stack } from '../../infra/stack';
import { createAlertDispatcher } from '../../activities/alerts';
import { accountName } from '../../lib/contracts/workflows';
import { configuredTrading, startTradingWorker } from '../../workers/trading';
import { startTrainingWorker } from '../../workers/training';
import { startResearchWorker } from '../../workers/research';
import { startOptunaWorker } from '../../infra/optuna-worker';
import { runTelegramWorker } from '../../telegram';
import type { Logger } from '../../infra/logger';
import { joinReplay, REPLAY_DATABASE } from '../../workers/replay';
import { openProcessMetrics } from '../../activities/metrics';

/**
 * One worker process against an external cluster and database (docker-compose services). With
 * `replay`, a trading worker that joins the replay `trader up --replay` started (workers/replay.ts):
 * same candles, same strategy and capital, the replay's own database.
 */
export async function runWorker(cfg: AppConfig, queue: 'trading' | 'telegram' | 'training' | 'research' | 'optuna', opts: { replay?: boolean } = {}): Promise<void> {
  if (opts.replay && queue !== 'trading') throw new UsageError('--replay joins a replay on the trading queue; it does not go with --queue ' + queue);
  if (queue === 'telegram') return runTelegramWorker(cfg, { account: accountName(cfg) });
  if (!cfg.temporal.address || !cfg.databaseUrl) {
    throw new UsageError('`trader worker` joins an existing stack: set TEMPORAL_ADDRESS and DATABASE_URL (or use `trader up` for the embedded stack)');
  }
  const log = processLogger(cfg).child({ worker: queue });
  const stopSignal = onShutdownSignal(log);
  if (queue === 'optuna') {
    // Hyperopt's sampler: the Python worker (workers/optuna), as a child of this process.
    const py = await startOptunaWorker({ temporalAddress: cfg.temporal.address, namespace: cfg.temporal.namespace, databaseUrl: cfg.databaseUrl, security: cfg.temporal, log });
    log.info({ taskQueue: 'optuna', temporal: cfg.temporal.address, pid: py.pid }, 'optuna worker running');
    const ended = await Promise.race([stopSignal.then(() => null), py.exited]);
    if (ended) throw new Error(`the Optuna worker exited (${ended.code ?? ended.signal})`);
    await py.stop();
    return;
  }
  const stack = await openStack(cfg, log, opts.replay ? { database: REPLAY_DATABASE } : {});
  if (queue === 'training') {
    const metrics = openProcessMetrics(cfg, log, 'training');
    const training = await startTrainingWorker(cfg, stack, log, metrics.writer);
    log.info({ taskQueue: 'training', temporal: stack.temporal.address }, 'training worker running');
    await Promise.race([stopSignal, training.done]);
    training.shutdown();
    await training.done;
    await stack.close();
    await metrics.close();
    return;
  }
  if (queue === 'research') {
    // Hyperopt: the HyperoptWorkflow and its trials (one backtest at a time per process).
    const research = await startResearchWorker(stack, log, { home: cfg.home });
    log.info({ taskQueue: 'research', temporal: stack.temporal.address }, 'research worker running');
    await Promise.race([stopSignal, research.done]);
    research.shutdown();
    await research.done;
    await stack.close();
    return;
  }
  if (opts.replay) return runReplayWorker(cfg, stack, log, stopSignal);
  const alerts = createAlertDispatcher(cfg, log);
  const metrics = openProcessMetrics(cfg, log, 'trading', { alerts });
  const worker = await startTradingWorker(stack, stopSignal, configuredTrading(cfg, stack, log, undefined, { alerts, metrics: metrics.writer }).deps, alerts);
  log.info({ taskQueue: cfg.temporal.taskQueue, temporal: stack.temporal.address }, 'worker running');
  await worker.untilStopped();
  await alerts.stop();
  await metrics.close();
}

async function runReplayWorker(cfg: AppConfig, stack: Stack, log: Logger, stopSignal: Promise<NodeJS.Signals>): Promise<void> {
  let joined;
  try {
    joined = await joinReplay(stack.db.sql);
  } catch (err) {
    await stack.close();
    throw err;
  }
  const { plan, input, startedAt } = joined;
  // The replay's settings, not this process's environment: every worker must decide alike.
  const replayCfg: AppConfig = { ...cfg, risk: { ...cfg.risk, initialCapital: plan.initialCapital } };
  const alerts = createAlertDispatcher(cfg, log);
  const metrics = openProcessMetrics(cfg, log, 'trading', { alerts });
  const t = configuredTrading(replayCfg, stack, log, input, { strategy: plan.strategy, alerts, metrics: metrics.writer });
  const worker = await startTradingWorker(stack, stopSignal, t.deps, alerts);
  log.info({ taskQueue: cfg.temporal.taskQueue, temporal: stack.temporal.address, replayStartedAt: startedAt.toISOString(), symbols: t.symbols, timeframe: t.timeframe, strategy: plan.strategy }, 'worker running, serving the replay');
  await worker.untilStopped();
  await alerts.stop();
  await metrics.close();
}

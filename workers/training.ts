import path from 'node:path';
import { Worker, type NativeConnection } from '@temporalio/worker';
import type { DataConverter } from '@temporalio/common';
import type { AppConfig } from '../infra/config';
import type { Logger } from '../infra/logger';
import { cachedWorkflowBundle } from '../infra/workflow-bundle';
import type { Stack } from '../infra/stack';
import type postgres from 'postgres';
import { createTrainingActivities, type TrainingActivities } from '../activities/training';
import { modelsDir } from '../models/registry';
import { riskInputFromEnv } from '../lib/risk';
import { TRAINING_TASK_QUEUE } from '../lib/contracts/retrain';
import type { MetricsWriter } from '../activities/metrics/writer';
import { marketDataExchangeFor } from '../activities/market-data';

export interface TrainingWorkerOptions {
  connection: NativeConnection;
  namespace: string;
  /** Default `training`. */
  taskQueue?: string;
  activities: TrainingActivities;
  /** The stack's (payload encryption); the SDK's default without. */
  dataConverter?: DataConverter;
  /** TRADER_HOME: the workflow bundle is cached there (infra/workflow-bundle.ts); without it, bundled at start. */
  home?: string;
  log?: Logger;
}

/**
 * The training worker: RetrainWorkflow and its activities on the `training` task queue. One
 * activity at a time: training is CPU-bound and single-threaded, and two at once on a small
 * machine would only make both late (and starve the trading worker beside it).
 */
export async function createTrainingWorker(opts: TrainingWorkerOptions): Promise<Worker> {
  const workflowsPath = require.resolve('../workflows/retrain');
  return Worker.create({
    connection: opts.connection,
    namespace: opts.namespace,
    taskQueue: opts.taskQueue ?? TRAINING_TASK_QUEUE,
    ...(opts.home && opts.log ? { workflowBundle: await cachedWorkflowBundle(workflowsPath, opts.home, opts.log, { payloadConverterPath: opts.dataConverter?.payloadConverterPath, failureConverterPath: opts.dataConverter?.failureConverterPath }) } : { workflowsPath }),
    activities: opts.activities,
    dataConverter: opts.dataConverter,
    maxConcurrentActivityTaskExecutions: 1,
  });
}

/** Where a deployment keeps model versions, run checkpoints and default training data. */
export function trainingPaths(home: string): { modelsRoot: string; workRoot: string; dataDir: string } {
  return { modelsRoot: modelsDir(home), workRoot: path.join(home, 'training'), dataDir: path.join(home, 'training-data') };
}

/**
 * The activities as a deployment wires them: TRADER_HOME paths, the ledger's database (and its
 * candle store), the configured risk, and the configured exchange's endpoint for the candles a
 * store-sourced retrain downloads.
 */
export function trainingActivitiesFor(cfg: Pick<AppConfig, 'home' | 'risk' | 'exchange'>, sql: postgres.Sql, log: Logger, metrics?: MetricsWriter): TrainingActivities {
  const training = log.child({ worker: 'training' });
  return createTrainingActivities({
    sql,
    log: training,
    ...trainingPaths(cfg.home),
    risk: riskInputFromEnv(cfg.risk),
    metrics,
    openExchange: (id) => marketDataExchangeFor(cfg.exchange, id, { log: training }),
  });
}

/** The training worker (task queue `training`): one activity at a time, so training never starves trading of CPU for long. */
export async function startTrainingWorker(cfg: AppConfig, stack: Stack, log: Logger, metrics?: MetricsWriter): Promise<{ shutdown(): void; done: Promise<void> }> {
  const worker = await createTrainingWorker({
    connection: stack.temporal.nativeConnection,
    namespace: stack.temporal.namespace,
    activities: trainingActivitiesFor(cfg, stack.db.sql, log, metrics),
    dataConverter: stack.temporal.dataConverter,
    home: cfg.home,
    log,
  });
  const done = worker.run().catch((err: unknown) => log.error({ err }, 'the training worker stopped with an error'));
  return {
    shutdown: () => {
      if (worker.getState() === 'RUNNING') worker.shutdown();
    },
    done: done.then(() => undefined),
  };
}

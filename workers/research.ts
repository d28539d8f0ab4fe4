import { Worker, type NativeConnection } from '@temporalio/worker';
import type { DataConverter } from '@temporalio/common';
import type postgres from 'postgres';
import type { Logger } from '../infra/logger';
import { cachedWorkflowBundle } from '../infra/workflow-bundle';
import { createResearchActivities } from '../activities/research/hyperopt';
import { RESEARCH_TASK_QUEUE } from '../lib/contracts/hyperopt';
import type { Stack } from '../infra/stack';

export interface ResearchWorkerOptions {
  connection: NativeConnection;
  namespace: string;
  /** Default `research`. */
  taskQueue?: string;
  /** The ledger database: hyperopt trials are written there (and store candles read). */
  sql: postgres.Sql;
  log: Logger;
  dataConverter?: DataConverter;
  /** TRADER_HOME: the workflow bundle is cached there; without it, bundled at start. */
  home?: string;
  /** Trials at once in this process (default 1: a trial is a CPU-bound backtest; start one process per core). */
  concurrency?: number;
  identity?: string;
}

/**
 * The research worker: HyperoptWorkflow and its trial activities on the `research` task queue.
 * A trial is a single-threaded backtest, so a process runs one at a time by default and a machine
 * scales by running one worker process per core (`trader worker --queue research`, on as many
 * machines as share the Temporal cluster, the database and the candle files).
 */
export async function createResearchWorker(opts: ResearchWorkerOptions): Promise<Worker> {
  const workflowsPath = require.resolve('../workflows/hyperopt');
  const concurrency = opts.concurrency ?? 1;
  return Worker.create({
    connection: opts.connection,
    namespace: opts.namespace,
    taskQueue: opts.taskQueue ?? RESEARCH_TASK_QUEUE,
    ...(opts.home ? { workflowBundle: await cachedWorkflowBundle(workflowsPath, opts.home, opts.log, { payloadConverterPath: opts.dataConverter?.payloadConverterPath, failureConverterPath: opts.dataConverter?.failureConverterPath }) } : { workflowsPath }),
    activities: createResearchActivities({ sql: opts.sql, log: opts.log.child({ worker: 'research' }), ...(opts.identity ? { identity: opts.identity } : {}) }),
    dataConverter: opts.dataConverter,
    maxConcurrentActivityTaskExecutions: concurrency,
    // The batch's other trials wait in the queue for a free worker, not in this process's buffer.
    maxConcurrentActivityTaskPolls: Math.max(1, Math.min(concurrency, 2)),
    ...(opts.identity ? { identity: opts.identity } : {}),
  });
}

/** A research worker on the stack's connection and ledger database, until shut down. */
export async function startResearchWorker(stack: Stack, log: Logger, opts: { home?: string; concurrency?: number } = {}): Promise<{ shutdown(): void; done: Promise<void> }> {
  const worker = await createResearchWorker({
    connection: stack.temporal.nativeConnection,
    namespace: stack.temporal.namespace,
    sql: stack.db.sql,
    log,
    dataConverter: stack.temporal.dataConverter,
    ...(opts.home ? { home: opts.home } : {}),
    ...(opts.concurrency ? { concurrency: opts.concurrency } : {}),
  });
  const done = worker.run().catch((err: unknown) => log.error({ err }, 'the research worker stopped with an error'));
  return {
    shutdown: () => {
      if (worker.getState() === 'RUNNING') worker.shutdown();
    },
    done: done.then(() => undefined),
  };
}

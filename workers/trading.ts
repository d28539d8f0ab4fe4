import os from 'node:os';
import { Worker, type NativeConnection } from '@temporalio/worker';
import type { DataConverter } from '@temporalio/common';
import { workerCrashedAlert } from '../lib/alerts';
import { createActivities, type Activities } from '../activities';
import type { AppConfig } from '../infra/config';
import type { Logger } from '../infra/logger';
import type { Stack } from '../infra/stack';
import { cachedWorkflowBundle } from '../infra/workflow-bundle';
import type { ReplayInput } from './replay';
import { buildTradingDeps, type TradingDepsBuilt } from './trading-deps';
import type { TradingDeps } from '../activities/trading';
import { accountName } from '../lib/contracts/workflows';
import type { MetricsWriter } from '../activities/metrics/writer';
import type { AlertDispatcher } from '../activities/alerts';

export interface TradingWorkerOptions {
  connection: NativeConnection;
  namespace: string;
  taskQueue: string;
  activities: Activities;
  /** The stack's (payload encryption); the SDK's default without. */
  dataConverter?: DataConverter;
  /** TRADER_HOME: the workflow bundle is cached there (infra/workflow-bundle.ts); without it, bundled at start. */
  home?: string;
  log?: Logger;
}

/** The trading worker: every workflow in workflows/ and the activities built for this process. */
export async function createTradingWorker(opts: TradingWorkerOptions): Promise<Worker> {
  const workflowsPath = require.resolve('../workflows');
  return Worker.create({
    connection: opts.connection,
    namespace: opts.namespace,
    taskQueue: opts.taskQueue,
    ...(opts.home && opts.log ? { workflowBundle: await cachedWorkflowBundle(workflowsPath, opts.home, opts.log, { payloadConverterPath: opts.dataConverter?.payloadConverterPath, failureConverterPath: opts.dataConverter?.failureConverterPath }) } : { workflowsPath }),
    activities: opts.activities,
    dataConverter: opts.dataConverter,
  });
}

export interface TradingSetup extends TradingDepsBuilt {
  account: string;
  exchangeLabel: string;
}

/**
 * What a trading worker needs, for `trader up` and `trader worker`, as the configuration (and a
 * replay's input) say: the venue (a replay of candle files or store series, see workers/replay.ts;
 * or the configured exchange in paper or live mode, whose closed candles go to the candle store),
 * built by buildTradingDeps (workers/trading-deps.ts) like every test and bench.
 */
export function configuredTrading(
  cfg: AppConfig,
  stack: Stack,
  log: Logger,
  replayInput?: ReplayInput,
  opts: { strategy?: string; alerts?: AlertDispatcher; metrics?: MetricsWriter } = {},
): TradingSetup {
  const replay = replayInput !== undefined && ((replayInput.files?.length ?? 0) > 0 || (replayInput.series?.length ?? 0) > 0);
  const exchangeLabel = replay ? 'replay' : cfg.exchange.id;
  const account = replay ? 'replay' : accountName(cfg);
  const built = buildTradingDeps({
    sql: stack.db.sql,
    log,
    market: replay ? { replay: { files: replayInput.files, series: replayInput.series } } : { exchange: cfg },
    account,
    exchangeLabel,
    initialCapital: cfg.risk.initialCapital,
    strategy: opts.strategy ?? cfg.strategy,
    strategyBudgetMs: cfg.strategyBudgetMs,
    home: cfg.home,
    client: stack.temporal.client,
    alerts: opts.alerts,
    metrics: opts.metrics,
  });
  return { ...built, account, exchangeLabel };
}

/**
 * Starts the trading worker on the stack; returns a function that waits for the worker to
 * end (a shutdown signal or a worker failure), drains it and closes the stack.
 */
export async function startTradingWorker(
  stack: Stack,
  stopSignal: Promise<NodeJS.Signals>,
  trading?: TradingDeps,
  alerts?: AlertDispatcher,
): Promise<{ untilStopped(beforeClose?: () => Promise<unknown>): Promise<void> }> {
  const worker = await createTradingWorker({
    connection: stack.temporal.nativeConnection,
    namespace: stack.temporal.namespace,
    taskQueue: stack.cfg.temporal.taskQueue,
    activities: createActivities({ sql: stack.db.sql, log: stack.log, trading, alerts }),
    dataConverter: stack.temporal.dataConverter,
    home: stack.cfg.home,
    log: stack.log,
  });
  const running = worker.run();
  let stopping = false;
  void stopSignal.then(() => (stopping = true));
  return {
    /**
     * beforeClose: what else in the process uses the stack's Temporal client (the watchdog, the
     * bot) stops there, before the connection closes: a client call still retrying on a closed
     * connection throws from a timer, uncaught, and fails the process's exit.
     */
    async untilStopped(beforeClose?: () => Promise<unknown>) {
      await Promise.race([stopSignal, running]);
      if (worker.getState() === 'RUNNING') worker.shutdown();
      await running.catch(async (err: unknown) => {
        stack.log.error({ err }, 'worker stopped with an error');
        // The process is still alive, so this worker can say it is gone (a killed process cannot: the watchdog does).
        if (!stopping && alerts) {
          alerts.enqueue(workerCrashedAlert({ worker: `trading (task queue ${stack.cfg.temporal.taskQueue})`, host: os.hostname(), error: err instanceof Error ? err.message : String(err) }));
          await alerts.idle(10_000);
        }
      });
      await beforeClose?.().catch((err: unknown) => stack.log.warn({ err }, 'stopping before the stack closes failed'));
      await stack.close();
      stack.log.info('stopped');
    },
  };
}

import os from 'node:os';
import path from 'node:path';
import { Worker, type NativeConnection } from '@temporalio/worker';
import type { DataConverter } from '@temporalio/common';
import { workerCrashedAlert } from '../lib/alerts';
import { createActivities, type Activities } from '../activities';
import type { AppConfig } from '../infra/config';
import type { Logger } from '../infra/logger';
import type { Stack } from '../infra/stack';
import { cachedWorkflowBundle } from '../infra/workflow-bundle';
import { CandleStore, Ledger } from '../ledger';
import { candleStoreSink } from '../activities/market-data';
import type { ReplayInput } from './replay';
import { PostgresPaperStateStore } from '../activities/exchange/paper-state-pg';
import { LedgerTradeRecorder } from '../activities/trading/recorder';
import { exchangeVenue, replayVenue } from '../activities/trading/venue';
import { FeatureCache } from '../lib/features/cache';
import type { TradingDeps, Venue } from '../activities/trading';
import type { AlertDispatcher } from '../activities/alerts';
import { accountName, type SymbolTraderInput } from '../lib/contracts/workflows';
import type { StrategyName } from '../lib/engine';
import { modelFallbackAlert } from '../lib/alerts';
import { createModelSignalSource, registryResolver, BOOTSTRAP_MODEL_DIR, type ModelResolver } from '../models/signal';
import { modelsDir, readManifest } from '../models/registry';
import { METRICS_OFF, type MetricsWriter } from '../activities/metrics/writer';
import { TradingMetrics } from '../activities/metrics/trading';
import { ModelOutcomeTracker } from '../activities/metrics/model-outcomes';
import type { LabelOptions } from '../lib/model-labels';

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

export interface TradingSetup {
  deps: TradingDeps;
  venue: Venue;
  ledger: Ledger;
  symbols: string[];
  timeframe: string;
  account: string;
  exchangeLabel: string;
  mode: SymbolTraderInput['mode'];
}

/**
 * What a trading worker needs, for `trader up` and `trader worker`: the venue (a replay of candle
 * files or store series, see workers/replay.ts; or the configured exchange in paper or live
 * mode, whose closed candles go to the candle store), the feature cache, the ledger recorder.
 */
export function buildTrading(
  cfg: AppConfig,
  stack: Stack,
  log: Logger,
  replayInput?: ReplayInput,
  opts: { strategy?: StrategyName; alerts?: AlertDispatcher; metrics?: MetricsWriter } = {},
): TradingSetup {
  const replay = replayInput !== undefined && ((replayInput.files?.length ?? 0) > 0 || (replayInput.series?.length ?? 0) > 0);
  const ledger = new Ledger(stack.db.sql, { actor: 'trader', log });
  const store = new PostgresPaperStateStore(stack.db.sql);
  const exchangeLabel = replay ? 'replay' : cfg.exchange.id;
  const account = replay ? 'replay' : accountName(cfg);
  const mode: SymbolTraderInput['mode'] = replay ? 'replay' : cfg.mode;
  let venue: Venue;
  let symbols: string[];
  let timeframe: string;
  let features: FeatureCache;
  if (replay) {
    const rv = replayVenue({ files: replayInput.files, series: replayInput.series, store, account, initialCapital: cfg.risk.initialCapital, log });
    venue = rv;
    symbols = [...new Set(rv.series.map((s) => s.symbol))].sort();
    timeframe = rv.series[0].timeframe;
    // Streams from the first recorded candle (up to the asked one), as the backtester's batch does.
    features = new FeatureCache({ source: rv.data.at(Number.MAX_SAFE_INTEGER), history: 'all' });
  } else {
    venue = exchangeVenue(cfg, store, account, log, candleStoreSink(new CandleStore(stack.db.sql), cfg.exchange.id, log));
    symbols = cfg.symbols;
    timeframe = cfg.timeframe;
    features = new FeatureCache({ source: venue.adapter(null) });
  }
  const strategy = opts.strategy ?? (cfg.strategy as StrategyName);
  const resolver = registryResolver(stack.db.sql);
  const deps: TradingDeps = {
    log,
    ledger,
    venue,
    features,
    recorder: (workflowId: string) => new LedgerTradeRecorder(ledger, { workflowId, mode, exchange: venue.exchangeId }),
    initialCapital: cfg.risk.initialCapital,
    client: stack.temporal.client,
    metrics: new TradingMetrics(opts.metrics ?? METRICS_OFF, { account, exchange: exchangeLabel, mode, strategy }, new ModelOutcomeTracker(modelLabels(resolver, modelsDir(cfg.home)))),
  };
  if (strategy !== 'rules') {
    // Models: the registry's champion (or the version a reload names), else the committed
    // bootstrap model. A missing or broken model never throws into trading: the signal says
    // ok:false (no new entries, protective exits continue) and an alert goes out.
    deps.signal = createModelSignalSource({
      strategy,
      resolver,
      modelsRoot: modelsDir(cfg.home),
      fallbackDir: BOOTSTRAP_MODEL_DIR,
      onProblem: (p) => {
        log.warn({ problem: p }, 'model problem: no new entries on the affected symbols');
        opts.alerts?.enqueue(modelFallbackAlert({ symbol: p.symbol, version: p.version, error: p.error, problem: p.key }));
      },
    });
  }
  return { deps, venue, ledger, symbols, timeframe, account, exchangeLabel, mode };
}

/** The labels a model version was trained with (its manifest), to score its live predictions the same way. */
function modelLabels(resolver: ModelResolver, modelsRoot: string): (version: string) => Promise<LabelOptions> {
  return async (version) => {
    const known = await resolver.find(version);
    const bootstrap = readManifest(BOOTSTRAP_MODEL_DIR);
    const dir = known ?? (bootstrap.id === version ? BOOTSTRAP_MODEL_DIR : path.join(modelsRoot, version));
    const { horizon, roundTripCost } = (dir === BOOTSTRAP_MODEL_DIR ? bootstrap : readManifest(dir)).labels;
    return { horizon, roundTripCost };
  };
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

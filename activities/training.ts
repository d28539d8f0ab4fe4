import fs from 'node:fs';
import path from 'node:path';
import { Context } from '@temporalio/activity';
import type { Client } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type postgres from 'postgres';
import type { Logger } from '../infra/logger';
import { CandleCsvError } from '../lib/candle-csv';
import { checkCandles } from '../lib/candle-hygiene';
import type { BuiltinStrategyName } from '../lib/engine/types';
import type { RiskConfigInput } from '../lib/risk';
import { evaluateVersion } from '../models/evaluation';
import { championModelVersion, getModelVersion, promoteModelVersion, registerModelVersion, sha256Hex } from '../models/registry';
import { createModelSignalSource, evictSignalCache } from '../models/signal';
import { promotionDecision } from '../lib/promotion-gate';
import { retrainPoint } from '../lib/metrics';
import type { MetricsWriter } from './metrics/writer';
import { TRAIN_STAGES, trainModelVersion, TrainingInputError, type TrainReport, type TrainStage } from '../models/train';
import { backtestSeries, loadTrainingFiles } from '../models/training-data';
import { MESSAGE_NAMES, type ReloadModelArgs } from '../lib/contracts/messages';
import type { ReloadOutcome, TrainingActivities } from '../lib/contracts/activities';
import { readCandleCsv } from '../infra/candle-files';
import type { MessageOrigin } from '../lib/contracts/trading';
import type { GateEvaluation, ModelScore, PromotionMargin, TrainHeartbeat, TrainedChallenger, GatheredData, RetrainSettings, StoreTrainingSource } from '../lib/contracts/retrain';
import { CandleStore } from '../ledger/candle-store';
import type { CcxtExchangeAdapter } from './exchange/ccxt-adapter';
import { snapshotTrainingWindow } from './market-data/training-window';

/**
 * The RetrainWorkflow's activities, on the `training` task queue (workers/training.ts): gather
 * the candles, train a challenger (long, heartbeating, resumable), score it and the champion on
 * the challenger's held-out period, promote, tell the traders. Every one is safe to retry.
 *
 * Files: a run keeps its data snapshot and training checkpoints under
 * `<workRoot>/<workflow id>/<run id>/`, so a retried activity finds them (and the candles it
 * trains on cannot change under it); the last activity removes them.
 */

export interface TrainingDeps {
  sql: postgres.Sql;
  log: Logger;
  /** Version directories are created here (`<TRADER_HOME>/models`). */
  modelsRoot: string;
  /** Run snapshots and checkpoints (`<TRADER_HOME>/training`). */
  workRoot: string;
  /** Candle CSVs used when a retrain names no data (`<TRADER_HOME>/training-data`). */
  dataDir?: string;
  /** Risk settings for the evaluation backtests (the traders' own; default lib/risk defaults). */
  risk?: RiskConfigInput;
  /** The client reloadTraders signals with (default: the worker's). */
  client?: Client;
  /** Called after each training stage is saved, with the attempt number (tests inject failures here). */
  afterStage?: (stage: TrainStage, attempt: number) => void | Promise<void>;
  /** Metrics to InfluxDB: each evaluation as a `retrain` point (default: off). */
  metrics?: MetricsWriter;
  /** Where a store-sourced retrain downloads missing candles (the worker's: the configured exchange's endpoint). */
  openExchange?: (exchangeId: string) => CcxtExchangeAdapter;
  /** The clock a store window ends at (default Date.now; tests move it). */
  now?: () => number;
}

export const SYMBOL_TRADER_TYPE = 'symbolTraderWorkflow';

function runDir(root: string): string {
  const wf = Context.current().info.workflowExecution;
  if (!wf) throw new Error('training activities run inside a workflow (no workflow execution in the activity info)');
  const safe = (s: string) => s.replace(/[^A-Za-z0-9._-]+/g, '_');
  return path.join(root, safe(wf.workflowId), safe(wf.runId));
}

const nonRetryable = (err: unknown): never => {
  if (err instanceof TrainingInputError || err instanceof CandleCsvError) throw ApplicationFailure.nonRetryable(err.message, 'TrainingInputError');
  throw err;
};

function activityLog(deps: TrainingDeps): Logger {
  const info = Context.current().info;
  return deps.log.child({ workflowId: info.workflowExecution?.workflowId, activity: info.activityType, attempt: info.attempt });
}

/** reloadModel(version) to every running SymbolTraderWorkflow of the client's namespace. */
export async function signalTradersToReload(c: Client, version: string, origin: MessageOrigin): Promise<ReloadOutcome> {
  const out: ReloadOutcome = { signaled: [], failed: [] };
  for await (const wf of c.workflow.list({ query: `WorkflowType = '${SYMBOL_TRADER_TYPE}' AND ExecutionStatus = 'Running'` })) {
    try {
      await c.workflow.getHandle(wf.workflowId).signal<ReloadModelArgs>(MESSAGE_NAMES.reloadModel, { version, ...origin });
      out.signaled.push(wf.workflowId);
    } catch (err) {
      out.failed.push({ workflowId: wf.workflowId, error: (err as Error).message });
    }
  }
  return out;
}

export function createTrainingActivities(deps: TrainingDeps): TrainingActivities {
  const client = (): Client => deps.client ?? Context.current().client;

  /**
   * Scores one version directory on the held-out period: models/evaluation.ts, the same
   * evaluation as the training report's (the served ensemble's AUC and log loss on the period's
   * rows, the gate strategy's out-of-sample backtest).
   */
  async function score(id: string, dir: string, files: string[], from: number, strategy: BuiltinStrategyName): Promise<ModelScore & { rows: number }> {
    const ready = await createModelSignalSource({ dir, strategy }).ready();
    if (!ready.ok) throw new Error(ready.error);
    const ev = await evaluateVersion(dir, backtestSeries(loadTrainingFiles(files)), from, { initialCapital: 10_000, feeBps: 10, slippageBps: 0, risk: deps.risk }, [strategy]);
    if (!ev.classifier) throw new Error(`no held-out rows to score ${id} on`);
    const b = ev.strategies[0];
    return { id, auc: ev.classifier.auc, logLoss: ev.classifier.logLoss, backtestReturn: b.totalReturn, maxDrawdown: b.maxDrawdown, trades: b.trades, buyAndHold: ev.buyAndHold, rows: ev.classifier.rows, sharpe: b.sharpe };
  }

  return {
    /**
     * Copies the candle files into the run's snapshot (validated: readable, named, one timeframe),
     * so every later attempt trains and scores on the same bytes.
     */
    async gatherTrainingData(args: { data: string[] }): Promise<GatheredData> {
      const log = activityLog(deps);
      let files = args.data ?? [];
      if (files.length === 0) {
        const dir = deps.dataDir;
        const listed = dir && fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => f.endsWith('.csv')).sort().map((f) => path.join(dir, f)) : [];
        if (listed.length === 0) {
          throw ApplicationFailure.nonRetryable(`no training data: the retrain names no files and ${dir ?? 'no data directory'} holds no candle CSV`, 'TrainingInputError');
        }
        files = listed;
      }
      const snapshot = path.join(runDir(deps.workRoot), 'data');
      fs.mkdirSync(snapshot, { recursive: true });
      const out: GatheredData['files'] = [];
      for (const f of files) {
        let file;
        try {
          file = readCandleCsv(f);
        } catch (err) {
          return nonRetryable(err);
        }
        const bytes = fs.readFileSync(f);
        const copy = path.join(snapshot, path.basename(f));
        if (out.some((o) => o.path === copy)) throw ApplicationFailure.nonRetryable(`two data files are named ${path.basename(f)}`, 'TrainingInputError');
        fs.writeFileSync(copy, bytes);
        const candles = checkCandles(file.candles, file.timeframeMs).candles;
        out.push({
          source: path.resolve(f),
          path: copy,
          sha256: sha256Hex(bytes),
          symbol: file.symbol,
          timeframe: file.timeframe,
          candles: candles.length,
          from: candles.length ? new Date(candles[0].timestamp).toISOString() : null,
          to: candles.length ? new Date(candles[candles.length - 1].timestamp).toISOString() : null,
        });
      }
      log.info({ files: out.map((f) => `${f.symbol} ${f.timeframe} ${f.candles}`) }, 'training data gathered');
      return { files: out };
    },

    /**
     * The candle store's latest window (downloading what it lacks first) snapshotted into the run,
     * as gatherTrainingData does for files. A retry keeps the window the first attempt chose
     * (carried in the heartbeat), so the run trains on one window whatever the retries.
     */
    async gatherStoreTrainingData(args: { store: StoreTrainingSource }): Promise<GatheredData> {
      const ctx = Context.current();
      const log = activityLog(deps);
      const fixed = (ctx.info.heartbeatDetails as { window?: { since: number; until: number } } | undefined)?.window;
      let gathered: GatheredData;
      try {
        gathered = await snapshotTrainingWindow(
          {
            store: new CandleStore(deps.sql),
            openExchange: deps.openExchange,
            now: deps.now ?? Date.now,
            log,
            onProgress: (window, p) => ctx.heartbeat({ window, ...p }),
            signal: ctx.cancellationSignal,
          },
          args.store,
          path.join(runDir(deps.workRoot), 'data'),
          fixed,
        );
      } catch (err) {
        return nonRetryable(err);
      }
      log.info({ window: gathered.window, files: gathered.files.map((f) => `${f.symbol} ${f.timeframe} ${f.candles}`) }, 'training data gathered from the candle store');
      return gathered;
    },

    /**
     * Trains one model version into `<modelsRoot>/<id>` and registers it as a challenger.
     * Heartbeats carry the progress and the last completed stage; a retry resumes after it.
     */
    async trainChallenger(args: { files: string[]; settings: RetrainSettings; created: string }): Promise<TrainedChallenger> {
      const ctx = Context.current();
      const log = activityLog(deps);
      const last = ctx.info.heartbeatDetails as TrainHeartbeat | undefined;
      const resumeAfter = TRAIN_STAGES.find((s) => s === last?.completed);
      if (resumeAfter) log.info({ resumeAfter }, 'resuming training after the last completed stage');
      let completed: TrainStage | null = resumeAfter ?? null;
      const beat = (b: Omit<TrainHeartbeat, 'completed'>) => ctx.heartbeat({ ...b, completed } satisfies TrainHeartbeat);
      const { extra, ...rest } = args.settings;
      let result;
      try {
        result = await trainModelVersion(args.files, {
          ...(extra ?? {}),
          ...rest,
          modelsRoot: deps.modelsRoot,
          created: new Date(args.created),
          workDir: path.join(runDir(deps.workRoot), 'train'),
          resumeAfter,
          backtest: { initialCapital: 10_000, feeBps: 10, slippageBps: 0, risk: deps.risk as Record<string, unknown> | undefined },
          signal: ctx.cancellationSignal,
          onProgress: (p) => {
            if (p.completed) completed = p.completed;
            beat({ stage: p.stage, done: p.done, total: p.total, detail: p.detail });
          },
          afterStage: async (stage) => {
            completed = stage;
            beat({ stage, done: 1, total: 1, detail: 'saved' });
            await deps.afterStage?.(stage, ctx.info.attempt);
          },
        });
      } catch (err) {
        return nonRetryable(err);
      }
      const existing = await getModelVersion(deps.sql, result.manifest.id);
      if (!existing) await registerModelVersion(deps.sql, result.dir);
      log.info({ id: result.manifest.id, stagesRun: result.stagesRun }, 'challenger trained and registered');
      const r: TrainReport = result.report;
      return {
        id: result.manifest.id,
        dir: result.dir,
        heldOutFrom: r.heldOut.from,
        stagesRun: result.stagesRun,
        resumedAfter: resumeAfter ?? null,
        auc: r.classifiers.test.ensemble?.auc ?? null,
        backtests: Object.fromEntries(r.backtests.strategies.map((b) => [b.strategy, b.totalReturn])),
        buyAndHold: r.backtests.buyAndHold,
        trainingMs: r.timings.totalMs,
      };
    },

    /**
     * The challenger and the champion scored on the same rows and period: the challenger's
     * held-out period, which the challenger never trained on (the champion, trained earlier,
     * may have: then its score is optimistic and the gate only harder to pass).
     */
    async evaluateChallenger(args: { challengerId: string; files: string[]; strategy: BuiltinStrategyName; margin?: PromotionMargin }): Promise<GateEvaluation> {
      const log = activityLog(deps);
      const row = await getModelVersion(deps.sql, args.challengerId);
      if (!row) throw ApplicationFailure.nonRetryable(`challenger ${args.challengerId} is not in the registry`, 'TrainingInputError');
      const report = JSON.parse(fs.readFileSync(path.join(row.artifactPath, 'report.json'), 'utf8')) as TrainReport;
      const from = Date.parse(report.heldOut.from);
      Context.current().heartbeat({ stage: 'challenger' });
      const challenger = await score(row.id, row.artifactPath, args.files, from, args.strategy);
      if (challenger.rows < 20) throw ApplicationFailure.nonRetryable(`only ${challenger.rows} held-out rows to compare models on`, 'TrainingInputError');
      const championRow = await championModelVersion(deps.sql, row.kind);
      let champion: ModelScore | null = null;
      let championProblem: string | undefined;
      if (championRow && championRow.id !== row.id) {
        Context.current().heartbeat({ stage: 'champion' });
        try {
          champion = await score(championRow.id, championRow.artifactPath, args.files, from, args.strategy);
        } catch (err) {
          championProblem = `champion ${championRow.id} cannot be scored: ${(err as Error).message}`;
        } finally {
          await evictSignalCache(championRow.artifactPath);
        }
      }
      await evictSignalCache(row.artifactPath);
      const ev: GateEvaluation = {
        strategy: args.strategy,
        heldOut: { from: report.heldOut.from, to: report.heldOut.to, rows: challenger.rows },
        challenger,
        champion,
        championId: championRow?.id ?? null,
        ...(championProblem ? { championProblem } : {}),
      };
      log.info({ challenger: challenger.id, champion: champion?.id, championProblem }, 'models scored on the held-out period');
      if (deps.metrics?.enabled) {
        // The workflow promotes exactly when this pure gate says so (it calls the same function on this result).
        const decision = promotionDecision(ev, args.margin);
        deps.metrics.write(
          retrainPoint(
            {
              challenger: challenger.id,
              strategy: args.strategy,
              challengerAuc: challenger.auc,
              championAuc: champion?.auc,
              challengerReturn: challenger.backtestReturn,
              championReturn: champion?.backtestReturn,
              promoted: decision.promote,
              heldOutRows: challenger.rows,
              reason: decision.reason,
            },
            Date.now(),
          ),
        );
      }
      return ev;
    },

    async promoteChallenger(args: { id: string }): Promise<{ champion: string; retired: string | null }> {
      const r = await promoteModelVersion(deps.sql, args.id);
      activityLog(deps).info({ champion: r.champion.id, retired: r.retired?.id }, 'model promoted');
      return { champion: r.champion.id, retired: r.retired?.id ?? null };
    },

    /** Sends reloadModel(version) to every running SymbolTraderWorkflow (found by visibility). */
    async reloadTraders(args: { version: string; origin: MessageOrigin }): Promise<ReloadOutcome> {
      const r = await signalTradersToReload(client(), args.version, args.origin);
      activityLog(deps).info({ version: args.version, ...r }, 'traders told to reload the model');
      return r;
    },

    /** Removes the run's snapshot and checkpoints (the version directory stays). */
    async discardRunFiles(): Promise<void> {
      fs.rmSync(runDir(deps.workRoot), { recursive: true, force: true });
    },
  };
}

export type { ReloadOutcome, TrainingActivities };

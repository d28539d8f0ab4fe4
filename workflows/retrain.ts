import { ApplicationFailure, defineQuery, log, proxyActivities, setCurrentDetails, setHandler } from '@temporalio/workflow';
import type { ActivityOptions } from '@temporalio/common';
import type { TrainingActivities } from '../activities/training';

/**
 * RetrainWorkflow, started by a Temporal Schedule (`trader schedule retrain --every 7d`) on the
 * `training` task queue, whose worker (workers/training.ts) runs this workflow and its activities:
 *
 *   gather data -> train a challenger (ensemble + PPO; long, heartbeating, resumable)
 *   -> score challenger and champion on the challenger's held-out period
 *   -> promote only if the challenger wins by the margin -> every running trader reloads it.
 *
 * The promotion gate (promotionDecision below), stated once: the challenger replaces the champion
 * when, on the same held-out rows and period,
 *   ensemble AUC >= champion AUC + 0.005                      (it ranks outcomes better), AND
 *   backtest return of the gate strategy >= champion's - 0    (and it does not trade worse),
 * both out of sample for the challenger. No champion (a fresh registry), or a champion that can no
 * longer be served (files gone, feature schema changed): the challenger is promoted, since
 * something servable must trade. A challenger that loses stays in the registry as `challenger`.
 *
 * Deterministic workflow code only: the decision is a pure function of the activities' results.
 */

export const TRAINING_TASK_QUEUE = 'training';
export const RETRAIN_WORKFLOW_TYPE = 'retrainWorkflow';

export interface PromotionMargin {
  /** The challenger's AUC must exceed the champion's by at least this. */
  auc: number;
  /** The challenger's backtest return may trail the champion's by at most this (0: not worse). */
  returnTolerance: number;
}

export const DEFAULT_PROMOTION_MARGIN: PromotionMargin = { auc: 0.005, returnTolerance: 0 };

/** What the trainer is asked for (models/train.ts settings; `extra` passes anything else, e.g. small forests in tests). */
export interface RetrainSettings {
  seed?: number;
  ppoSteps?: number;
  walkForwardFolds?: number;
  extra?: Record<string, unknown>;
}

export interface RetrainInput {
  /** Candle CSVs readable by the training worker; none: the worker's training data directory. */
  data?: string[];
  settings?: RetrainSettings;
  margin?: Partial<PromotionMargin>;
  /** The strategy whose backtest return the gate compares (default ensemble). */
  gateStrategy?: 'ensemble' | 'ppo' | 'hybrid';
  /** Tell the running traders to reload a promoted model (default true). */
  reloadTraders?: boolean;
}

export interface GatheredData {
  files: { source: string; path: string; sha256: string; symbol: string; timeframe: string; candles: number; from: string | null; to: string | null }[];
}

export interface TrainHeartbeat {
  stage: string;
  done: number;
  total: number;
  detail?: string;
  /** The last stage whose result is saved: a retried attempt resumes after it. */
  completed: string | null;
}

export interface TrainedChallenger {
  id: string;
  dir: string;
  heldOutFrom: string;
  stagesRun: string[];
  resumedAfter: string | null;
  auc: number | null;
  backtests: Record<string, number>;
  buyAndHold: number | null;
  trainingMs: number;
}

export interface ModelScore {
  id: string;
  auc: number;
  logLoss: number;
  backtestReturn: number;
  maxDrawdown: number;
  trades: number;
  buyAndHold: number | null;
}

export interface GateEvaluation {
  strategy: string;
  heldOut: { from: string; to: string; rows: number };
  challenger: ModelScore;
  champion: ModelScore | null;
  championId: string | null;
  championProblem?: string;
}

export interface PromotionDecision {
  promote: boolean;
  reason: string;
}

export interface RetrainResult {
  challenger: TrainedChallenger;
  evaluation: GateEvaluation;
  decision: PromotionDecision;
  margin: PromotionMargin;
  champion: string | null;
  retired: string | null;
  reloaded: string[];
  data: GatheredData['files'];
}

export interface RetrainProgress {
  stage: 'gathering' | 'training' | 'evaluating' | 'promoting' | 'reloading' | 'done';
  challenger?: string;
  decision?: PromotionDecision;
}

export const retrainProgressQuery = defineQuery<RetrainProgress>('retrainProgress');

/** The gate (see the header). Pure, so it is tested without a server. */
export function promotionDecision(ev: GateEvaluation, margin: PromotionMargin = DEFAULT_PROMOTION_MARGIN): PromotionDecision {
  const c = ev.challenger;
  const fmt = (x: number) => x.toFixed(4);
  const pct = (x: number) => `${(x * 100).toFixed(2)} %`;
  if (!ev.champion) {
    return { promote: true, reason: ev.championProblem ? `${ev.championProblem}; the challenger replaces it` : 'no champion yet: the first servable model is promoted' };
  }
  const ch = ev.champion;
  const aucGain = c.auc - ch.auc;
  const returnGap = c.backtestReturn - ch.backtestReturn;
  // A hair of tolerance for float noise: 0.5 + 0.005 computed differently must still pass.
  const aucOk = aucGain >= margin.auc - 1e-12;
  const returnOk = returnGap >= -margin.returnTolerance - 1e-12;
  const facts = `AUC ${fmt(c.auc)} vs ${fmt(ch.auc)} (${aucGain >= 0 ? '+' : ''}${fmt(aucGain)}, needs +${fmt(margin.auc)}); ${ev.strategy} backtest ${pct(c.backtestReturn)} vs ${pct(ch.backtestReturn)}`;
  if (aucOk && returnOk) return { promote: true, reason: `challenger beats champion ${ch.id} out of sample: ${facts}` };
  const why = [!aucOk && 'AUC gain below the margin', !returnOk && 'backtest return worse than the champion'].filter(Boolean).join(' and ');
  return { promote: false, reason: `kept as challenger (${why}): ${facts}` };
}

const quick: ActivityOptions = {
  startToCloseTimeout: '2 minutes',
  retry: { initialInterval: '2 seconds', maximumInterval: '1 minute', maximumAttempts: 10, nonRetryableErrorTypes: ['TrainingInputError'] },
};

// Training runs for minutes (a year of 1h candles: about a minute with the default PPO steps)
// and heartbeats on every progress step; a worker that dies is noticed within the heartbeat
// timeout and the retry resumes after the last saved stage.
const long: ActivityOptions = {
  startToCloseTimeout: '6 hours',
  heartbeatTimeout: '2 minutes',
  retry: { initialInterval: '2 seconds', backoffCoefficient: 2, maximumInterval: '5 minutes', maximumAttempts: 5, nonRetryableErrorTypes: ['TrainingInputError'] },
};

const { gatherTrainingData, promoteChallenger, reloadTraders, discardRunFiles } = proxyActivities<TrainingActivities>(quick);
const { trainChallenger, evaluateChallenger } = proxyActivities<TrainingActivities>(long);

export async function retrainWorkflow(input: RetrainInput = {}): Promise<RetrainResult> {
  const margin: PromotionMargin = { ...DEFAULT_PROMOTION_MARGIN, ...(input.margin ?? {}) };
  if (!(margin.auc >= 0 && margin.returnTolerance >= 0)) throw ApplicationFailure.nonRetryable(`promotion margins must be >= 0, got ${JSON.stringify(margin)}`, 'TrainingInputError');
  const strategy = input.gateStrategy ?? 'ensemble';
  const progress: RetrainProgress = { stage: 'gathering' };
  setHandler(retrainProgressQuery, () => progress);
  const show = (text: string) => setCurrentDetails(`**Retrain**: ${text}`);

  show('gathering candles');
  const gathered = await gatherTrainingData({ data: input.data ?? [] });
  const files = gathered.files.map((f) => f.path);

  progress.stage = 'training';
  show(`training on ${gathered.files.map((f) => `${f.symbol} ${f.timeframe} (${f.candles})`).join(', ')}`);
  const challenger = await trainChallenger({ files, settings: input.settings ?? {}, created: new Date().toISOString() });
  progress.challenger = challenger.id;

  progress.stage = 'evaluating';
  show(`scoring challenger ${challenger.id} against the champion`);
  const evaluation = await evaluateChallenger({ challengerId: challenger.id, files, strategy });
  const decision = promotionDecision(evaluation, margin);
  progress.decision = decision;
  log.info('promotion decision', { challenger: challenger.id, promote: decision.promote, reason: decision.reason });

  let champion = evaluation.championId;
  let retired: string | null = null;
  let reloaded: string[] = [];
  if (decision.promote) {
    progress.stage = 'promoting';
    const p = await promoteChallenger({ id: challenger.id });
    champion = p.champion;
    retired = p.retired;
    if (input.reloadTraders ?? true) {
      progress.stage = 'reloading';
      const r = await reloadTraders({ version: challenger.id, origin: { by: 'retrain', reason: decision.reason.slice(0, 400) } });
      reloaded = r.signaled;
      if (r.failed.length > 0) log.warn('some traders were not told to reload', { failed: r.failed });
    }
  }
  await discardRunFiles();
  progress.stage = 'done';
  show(`${decision.promote ? 'promoted' : 'not promoted'} ${challenger.id}: ${decision.reason}`);
  return { challenger, evaluation, decision, margin, champion, retired, reloaded, data: gathered.files };
}

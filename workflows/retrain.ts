import { ApplicationFailure, defineQuery, log, proxyActivities, setCurrentDetails, setHandler } from '@temporalio/workflow';
import type { ActivityOptions } from '@temporalio/common';
import type { TrainingActivities } from '../lib/contracts/activities';
import { DEFAULT_PROMOTION_MARGIN, promotionDecision } from '../lib/promotion-gate';
import type { GatheredData, PromotionMargin, RetrainInput, RetrainProgress, RetrainResult } from '../lib/contracts/retrain';

/**
 * RetrainWorkflow, started by a Temporal Schedule (`trader schedule retrain --every 7d`) on the
 * `training` task queue, whose worker (workers/training.ts) runs this workflow and its activities:
 *
 *   gather data (files, or the candle store's latest window after downloading what it lacks)
 *   -> train a challenger (ensemble + PPO; long, heartbeating, resumable)
 *   -> score challenger and champion on the challenger's held-out period
 *   -> promote only if the challenger wins by the margin -> every running trader reloads it.
 *
 * The promotion gate (lib/promotion-gate.ts), stated once: the challenger replaces the champion
 * when, on the same held-out rows and period,
 *   ensemble AUC >= champion AUC + 0.005                      (it ranks outcomes better), AND
 *   backtest return of the gate strategy >= champion's - 0    (and it does not trade worse),
 * both out of sample for the challenger. No champion (a fresh registry), or a champion that can no
 * longer be served (files gone, feature schema changed): the challenger is promoted, since
 * something servable must trade. A challenger that loses stays in the registry as `challenger`.
 *
 * Deterministic workflow code only: the decision is a pure function of the activities' results.
 */

export const retrainProgressQuery = defineQuery<RetrainProgress>('retrainProgress');

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

// Filling the store's window can be hundreds of pages behind the exchange's rate limit (a year of
// 1m candles); it heartbeats per page, and a retry resumes where the store stopped.
const download: ActivityOptions = {
  startToCloseTimeout: '2 hours',
  heartbeatTimeout: '2 minutes',
  retry: { initialInterval: '5 seconds', backoffCoefficient: 2, maximumInterval: '5 minutes', maximumAttempts: 10, nonRetryableErrorTypes: ['TrainingInputError'] },
};

const { gatherTrainingData, promoteChallenger, reloadTraders, discardRunFiles } = proxyActivities<TrainingActivities>(quick);
const { trainChallenger, evaluateChallenger } = proxyActivities<TrainingActivities>(long);
const { gatherStoreTrainingData } = proxyActivities<TrainingActivities>(download);

export async function retrainWorkflow(input: RetrainInput = {}): Promise<RetrainResult> {
  const margin: PromotionMargin = { ...DEFAULT_PROMOTION_MARGIN, ...(input.margin ?? {}) };
  if (!(margin.auc >= 0 && margin.returnTolerance >= 0)) throw ApplicationFailure.nonRetryable(`promotion margins must be >= 0, got ${JSON.stringify(margin)}`, 'TrainingInputError');
  const strategy = input.gateStrategy ?? 'ensemble';
  const progress: RetrainProgress = { stage: 'gathering' };
  setHandler(retrainProgressQuery, () => progress);
  const show = (text: string) => setCurrentDetails(`**Retrain**: ${text}`);

  if (input.store && (input.data?.length ?? 0) > 0) throw ApplicationFailure.nonRetryable('give candle files (data) or a candle store source (store), not both', 'TrainingInputError');
  // Only a run given a store source schedules the new activity: histories of file-sourced runs replay unchanged.
  let gathered: GatheredData;
  if (input.store) {
    show('gathering candles from the candle store (downloading what it lacks)');
    gathered = await gatherStoreTrainingData({ store: input.store });
  } else {
    show('gathering candles');
    gathered = await gatherTrainingData({ data: input.data ?? [] });
  }
  const files = gathered.files.map((f) => f.path);

  progress.stage = 'training';
  show(`training on ${gathered.window ? `${gathered.window.since.slice(0, 16)} .. ${gathered.window.until.slice(0, 16)} UTC of ` : ''}${gathered.files.map((f) => `${f.symbol} ${f.timeframe} (${f.candles})`).join(', ')}`);
  const challenger = await trainChallenger({ files, settings: input.settings ?? {}, created: new Date().toISOString() });
  progress.challenger = challenger.id;

  progress.stage = 'evaluating';
  show(`scoring challenger ${challenger.id} against the champion`);
  const evaluation = await evaluateChallenger({ challengerId: challenger.id, files, strategy, margin });
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
  return { challenger, evaluation, decision, margin, champion, retired, reloaded, data: gathered.files, ...(gathered.window ? { window: gathered.window } : {}) };
}

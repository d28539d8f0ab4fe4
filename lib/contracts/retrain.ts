/**
 * What RetrainWorkflow (workflows/retrain.ts) and its activities (activities/training.ts) pass
 * to each other, and what a retrain run returns: plain JSON.
 */

export const TRAINING_TASK_QUEUE = 'training';
export const RETRAIN_WORKFLOW_TYPE = 'retrainWorkflow';
/** The Schedule `trader schedule retrain` creates unless given --id, and the one the Telegram /retrain runs. */
export const DEFAULT_RETRAIN_SCHEDULE_ID = 'retrain';

export interface PromotionMargin {
  /** The challenger's AUC must exceed the champion's by at least this. */
  auc: number;
  /** The challenger's backtest return may trail the champion's by at most this (0: not worse). */
  returnTolerance: number;
}

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
  /** Held-out dataset rows the AUC is over (absent in results recorded before it existed). */
  rows?: number;
  sharpe?: number | null;
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

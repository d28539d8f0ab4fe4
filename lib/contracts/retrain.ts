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

/** Days of candles a store-sourced retrain trains on unless told otherwise: a year (about a minute of training on 1h candles). */
export const DEFAULT_TRAINING_WINDOW_DAYS = 365;

/**
 * Train on the candle store's most recent window: [last closed candle - windowDays, last closed
 * candle), downloading the part the store lacks first, so a scheduled retrain trains on the
 * latest data each time it runs. "Now" is read by the activity, never by the workflow.
 */
export interface StoreTrainingSource {
  exchange: string;
  symbols: string[];
  timeframe: string;
  /** Default DEFAULT_TRAINING_WINDOW_DAYS. */
  windowDays?: number;
  /** Download what the store lacks in the window first (default true); false trains on what is stored. */
  download?: boolean;
}

/** The window a store-sourced retrain trained on (times ISO, until exclusive) and what it downloaded first. */
export interface StoreTrainingWindow {
  exchange: string;
  timeframe: string;
  windowDays: number;
  since: string;
  until: string;
  downloaded: { symbol: string; missingBefore: number; requests: number; inserted: number }[];
}

export interface RetrainInput {
  /** Candle CSVs readable by the training worker; neither these nor `store`: the worker's training data directory. */
  data?: string[];
  /** Train on the candle store's latest window instead of files. */
  store?: StoreTrainingSource;
  settings?: RetrainSettings;
  margin?: Partial<PromotionMargin>;
  /** The strategy whose backtest return the gate compares (default ensemble). */
  gateStrategy?: 'ensemble' | 'ppo' | 'hybrid';
  /** Tell the running traders to reload a promoted model (default true). */
  reloadTraders?: boolean;
}

export interface GatheredData {
  /** `source`: the file copied, or `store:<exchange>` for a store window; `path`: the run's snapshot; sha256: of the snapshot's bytes. */
  files: { source: string; path: string; sha256: string; exchange?: string; symbol: string; timeframe: string; candles: number; from: string | null; to: string | null }[];
  /** Set when the data is the candle store's window. */
  window?: StoreTrainingWindow;
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
  /** The candle store window trained on (store-sourced retrains only). */
  window?: StoreTrainingWindow;
}

export interface RetrainProgress {
  stage: 'gathering' | 'training' | 'evaluating' | 'promoting' | 'reloading' | 'done';
  challenger?: string;
  decision?: PromotionDecision;
}

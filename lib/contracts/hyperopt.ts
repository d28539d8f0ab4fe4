import type { SearchRange } from '../strategy/types';

/**
 * What the hyperopt workflow, its research activities (TypeScript, task queue `research`) and the
 * Optuna sampler (a small Python worker, task queue `optuna`, workers/optuna/) say to each other.
 * Every call is idempotent: a retry after a crash of either worker, or of the server, repeats it
 * with the same keys and gets the same answer, and no trial reaches the study twice.
 */

export const RESEARCH_TASK_QUEUE = 'research';
export const OPTUNA_TASK_QUEUE = 'optuna';

/** Lower is better; each is the negative of the figure it names (profit-drawdown: profit over max drawdown). */
export const LOSS_NAMES = ['sharpe', 'sortino', 'calmar', 'profit-drawdown'] as const;
export type LossName = (typeof LOSS_NAMES)[number];

export const SPACE_NAMES = ['entry', 'exit', 'stop', 'size'] as const;
export type SpaceName = (typeof SPACE_NAMES)[number];

/** A parameter's search range as Optuna takes it (the strategy's `search`, with its space). */
export type ParamDistribution = SearchRange;

// ---- The Optuna worker's activities (Python: workers/optuna/worker.py) ----

export interface OptunaStudyRequest {
  /** The study's name in Optuna's storage: `hyperopt-<runId>`. */
  study: string;
  /** The sampler's seed: every trial is sampled with a seed derived from it and the trial's number. */
  seed: number;
  /** Attributes kept with the study (strategy, data, loss...) for optuna-dashboard. */
  attrs?: Record<string, string | number | boolean>;
}

export interface OptunaAskRequest {
  study: string;
  seed: number;
  space: Record<string, ParamDistribution>;
  /**
   * One key per trial wanted (`<runId>/<n>`, n counting from 0): a key already in the study (a
   * retried ask) gets its trial back instead of a new one.
   */
  keys: string[];
  /** Startup trials sampled at random before TPE takes over (default 10). */
  startupTrials?: number;
}

export interface AskedTrial {
  key: string;
  /** Optuna's trial number. */
  number: number;
  params: Record<string, string | number | boolean>;
}

export interface OptunaTellRequest {
  study: string;
  results: Array<{ key: string; number: number; state: 'complete' | 'fail'; value?: number; attrs?: Record<string, string | number | boolean> }>;
}

export interface OptunaTellResult {
  /** Trials finished by this call. */
  told: number;
  /** Trials that were already finished (a retried tell): left as they were. */
  already: number;
}

export interface OptunaSummaryRequest {
  study: string;
  /** How many of the best complete trials to return. */
  top: number;
}

export interface OptunaSummary {
  complete: number;
  running: number;
  failed: number;
  best: Array<{ number: number; key: string; value: number; params: Record<string, string | number | boolean> }>;
  /** Optuna's parameter importances (fANOVA) over the complete trials; empty with fewer than 2 complete trials or one parameter. */
  importance: Record<string, number>;
}

export interface OptunaActivities {
  optunaCreateStudy(req: OptunaStudyRequest): Promise<{ study: string; created: boolean }>;
  optunaAsk(req: OptunaAskRequest): Promise<AskedTrial[]>;
  optunaTell(req: OptunaTellRequest): Promise<OptunaTellResult>;
  optunaSummary(req: OptunaSummaryRequest): Promise<OptunaSummary>;
}

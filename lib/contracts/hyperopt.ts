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
// The study minimises (a loss: lower is better) and lives in the project's PostgreSQL, schema
// `optuna` (optuna-dashboard opens it). Bad input (an unknown study, an empty space, an unknown
// distribution type, a tell naming a trial the study does not have under that key...) fails the
// activity at once with a non-retryable ApplicationFailure of type OPTUNA_BAD_INPUT.

/** The type of the non-retryable ApplicationFailure the Optuna worker raises for bad input. */
export const OPTUNA_BAD_INPUT = 'OptunaBadInput';

export interface OptunaStudyRequest {
  /** The study's name in Optuna's storage: `hyperopt-<runId>`. */
  study: string;
  /**
   * The sampler's seed (an integer): each parameter of each trial is drawn with a seed derived from
   * it, the trial's number and the parameter's name, so the same asks and tells give the same
   * parameters whatever restarted in between. Kept as the study's user attribute `seed`; creating
   * an existing study with another seed is bad input.
   */
  seed: number;
  /** Attributes kept with the study (strategy, data, loss...) as its user attributes, for optuna-dashboard. */
  attrs?: Record<string, string | number | boolean>;
}

export interface OptunaAskRequest {
  study: string;
  /** The study's seed (as given to optunaCreateStudy). */
  seed: number;
  /** Every trial gets every parameter of it; a retried ask must send the same space. */
  space: Record<string, ParamDistribution>;
  /**
   * One key per trial wanted (`<runId>/<n>`, n counting from 0; distinct): a key already in the
   * study (a retried ask) gets its trial back instead of a new one (kept as the trial's user
   * attribute `key`). The answer is in the order of the keys.
   */
  keys: string[];
  /**
   * Parameters are drawn at random until the study has this many complete trials, by TPE after
   * (default 10). Counted in complete trials, not asked ones: asks in batches stay random until
   * enough of them were told.
   */
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
  /**
   * `key` and `number` as the ask returned them (a mismatch is bad input); `value` (finite)
   * required when `state` is 'complete', ignored for 'fail'; `attrs` become the trial's user
   * attributes.
   */
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
  /** How many of the best complete trials to return (lowest value first). */
  top: number;
}

export interface OptunaSummary {
  complete: number;
  running: number;
  failed: number;
  best: Array<{ number: number; key: string; value: number; params: Record<string, string | number | boolean> }>;
  /**
   * Optuna's parameter importances (fANOVA, seeded with the study's seed; they sum to 1) over the
   * complete trials; empty with fewer than 2 complete trials or one parameter.
   */
  importance: Record<string, number>;
}

export interface OptunaActivities {
  optunaCreateStudy(req: OptunaStudyRequest): Promise<{ study: string; created: boolean }>;
  optunaAsk(req: OptunaAskRequest): Promise<AskedTrial[]>;
  optunaTell(req: OptunaTellRequest): Promise<OptunaTellResult>;
  optunaSummary(req: OptunaSummaryRequest): Promise<OptunaSummary>;
}

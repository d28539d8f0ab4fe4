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

// ---- The hyperopt workflow and its research activities (TypeScript: activities/research) ----

/** The candles of a run: files (every research worker must see the same paths) or candle store series. */
export interface HyperoptData {
  files?: string[];
  store?: { exchange: string; symbols: string[]; timeframe: string; since: number; until: number };
}

/** What every trial of a run shares. */
export interface HyperoptSetup {
  /** A built-in's name or the strategy file's absolute path. */
  strategy: string;
  /** Parameters outside the space (fixed for the run), from --params. */
  baseParams?: Record<string, unknown>;
  data: HyperoptData;
  loss: LossName;
  /** Test folds the search part is scored over (1: the whole part). */
  folds: number;
  /** The holdout's first millisecond (a UTC midnight), fixed when the run begins; null: none. */
  cutoff: number | null;
  initialCapital: number;
  feeBps: number;
  slippageBps: number;
  risk?: Record<string, unknown>;
}

export interface HyperoptInput {
  /** `[A-Za-z0-9_.-]`; the workflow id is `hyperopt/<runId>`, the study `hyperopt-<runId>`. */
  runId: string;
  setup: HyperoptSetup;
  space: Record<string, ParamDistribution>;
  spaces?: SpaceName[];
  trials: number;
  /** Trials asked for and run at once: the search's schedule (and so its answers) depend on it, never on how many workers run them. */
  batchSize: number;
  seed: number;
  startupTrials?: number;
  /** The holdout share asked for (for the report; the cutoff is in setup). */
  holdout: number;
  /** A trial's time limit: a research worker that dies mid-trial is noticed after this long, and its trial runs again (default 60 s). */
  trialTimeoutMs?: number;
  researchTaskQueue?: string;
  optunaTaskQueue?: string;
  /** Continue-as-new after this many batches (default 25). */
  batchesPerRun?: number;
  carried?: HyperoptProgress;
}

export interface HyperoptProgress {
  asked: number;
  complete: number;
  failed: number;
  best: { number: number; loss: number; params: Record<string, unknown> } | null;
  /** The last losses in trial order (null: failed), for the UI's details. */
  recent: Array<number | null>;
}

export interface RunTrialRequest {
  runId: string;
  key: string;
  number: number;
  params: Record<string, unknown>;
  setup: HyperoptSetup;
}

export interface RunTrialResult {
  key: string;
  number: number;
  state: 'complete' | 'fail';
  loss?: number;
  error?: string;
  trades?: number;
}

export interface HyperoptBeginRequest {
  runId: string;
  config: Record<string, unknown>;
  setup: HyperoptSetup;
}

export interface HoldoutFigures {
  loss: number;
  totalReturn: number;
  sharpe: number;
  sortino: number;
  calmar: number;
  maxDrawdown: number;
  trades: number;
  days: number;
  /** Equity at the end of each holdout day (the report's curve). */
  equity: Array<{ time: number; equity: number }>;
}

export interface HyperoptResult {
  runId: string;
  study: string;
  trials: { asked: number; complete: number; failed: number };
  best: {
    number: number;
    params: Record<string, unknown>;
    loss: number;
    /** Figures of the whole search part and of each fold. */
    inSearch: { totalReturn: number; sharpe: number; sortino: number; calmar: number; maxDrawdown: number; trades: number; foldLosses: number[] };
    holdout: HoldoutFigures | null;
  } | null;
  /** The overfitting guard (lib/hyperopt/overfitting.ts), or why it could not be computed. */
  guard: { dsr: number; psr: number; sharpeAnnualized: number | null; thresholdAnnualized: number | null; trialSharpeVariance: number; pbo: number; partitions: number; combinations: number; periods: number; trials: number } | { skipped: string };
  importance: Record<string, number>;
  top: Array<{ number: number; loss: number; params: Record<string, unknown> }>;
}

export interface ResearchActivities {
  hyperoptBegin(req: HyperoptBeginRequest): Promise<{ days: number }>;
  hyperoptRunTrial(req: RunTrialRequest): Promise<RunTrialResult>;
  hyperoptFinish(req: { runId: string; setup: HyperoptSetup; top: OptunaSummary['best']; importance: Record<string, number>; asked: number }): Promise<HyperoptResult>;
}

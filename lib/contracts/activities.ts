import type { Alert, PushOutcome } from '../alerts';
import type { EngineConfig, EnginePositionView, ExecutionReport, OrderIntent, PortfolioView, PreparedCandle, BuiltinStrategyName, SymbolState } from '../engine';
import type { GateEvaluation, GatheredData, PromotionMargin, RetrainSettings, StoreTrainingSource, TrainedChallenger } from './retrain';
import type { DecisionReport, EmergencyCloseResult, EquitySnapshotRecord, MessageOrigin } from './trading';
import type { SymbolTraderInput } from './workflows';

/**
 * The activities the workflows call, as interfaces: the workflows type their proxies from these
 * (workflow code imports lib/ only), and activities/ implements them (createTradingActivities,
 * createAlertActivities, createTrainingActivities and createActivities are declared to return
 * them), so an implementation that drifts from what the workflows call does not compile. The
 * method names are the activity types recorded in workflow histories: never rename one.
 */

// --- trading (activities/trading/) --------------------------------------------------------------

export interface PrepareArgs {
  workflowId: string;
  symbol: string;
  timeframe: string;
  mode: 'paper' | 'live' | 'replay';
  after: number | null;
  fillsSince: number;
  modelVersion: string | null;
  reloadModel: boolean;
  requestedModelVersion?: string;
  /** Workflow time when the step began (the candle became due): a replay's decision latency is measured from it. */
  dueAt?: number;
  /** The previous candle's decision, for the metrics (workflows do no I/O themselves). */
  decided?: DecisionReport;
  /**
   * The strategy to ask on the candle, with the engine's position before it. Absent in workflows
   * that ran before strategies were files: the engine then runs its built-in itself.
   */
  strategy?: StrategyRequest;
}

export interface StrategyCheckArgs {
  symbol: string;
  ref: string;
  params?: Record<string, unknown>;
  timeframe: string;
  by: string;
  reason?: string;
}

export type StrategyCheckResult =
  | { ok: true; ref: string; params: Record<string, unknown>; identity: { name: string; version: string; source: string; params: string } }
  | { ok: false; error: string };

export interface StrategySwitchRecord {
  symbol: string;
  ref: string;
  params: Record<string, unknown>;
  identity: { name: string; version: string; source: string; params: string };
  by: string;
  reason?: string;
}

export interface StrategyRequest {
  /** A built-in's name, a strategy file's name, or a path. */
  ref: string;
  params?: Record<string, unknown>;
  /** +1 on every switch (`trader strategy set`): the worker loads the file afresh for a new revision. */
  revision: number;
  position: EnginePositionView | null;
}

export interface PrepareResult extends PreparedCandle {
  /** The venue's circuit breaker (live and paper over live market data). */
  breaker?: { state: string; since: number; consecutiveFailures: number; lastFailure?: string } | null;
  /** The account as the ledger shows it, for the entry gates (max positions, exposure, drawdown, daily loss). */
  portfolio?: PortfolioView;
  modelVersion?: string | null;
  /** Candle close (replay: `dueAt`) to the moment the decision's inputs were ready, ms (the decision itself follows at once, in workflow code). */
  latencyMs?: number;
  /**
   * The worker's clock when the read returned (epoch ms): the workflow's own clock stands still
   * during the task that waits for the read, so it times its next candle from this.
   */
  readAt?: number;
}

export interface ExecuteArgs {
  workflowId: string;
  symbol: string;
  mode: 'paper' | 'live' | 'replay';
  intents: OrderIntent[];
  asOf: number | null;
  /** The engine before these intents: their follow-ups (an entry's stop and target) are sent in the same call. */
  engine?: { state: SymbolState; cfg: EngineConfig };
}

export interface PortfolioSnapshot {
  /** Cash plus open positions at mark. */
  equity: number;
  /** The starting capital plus the net cash flow of every fill in the ledger. */
  cash: number;
  openPositions: number;
  /** Sum of open notionals at mark, quote currency (the engine divides by equity). */
  totalExposure: number;
  dayStartEquity: number;
  dailyPnl: number;
}

export interface ReconcileReport {
  ok: boolean;
  skipped?: string;
  differences: { symbol: string; kind: string; message: string }[];
}

export interface SymbolStatusCommand {
  workflowId: string;
  status: 'active' | 'paused' | 'reduce-only';
  origin: MessageOrigin;
}

export interface TradingActivities {
  /** The symbol workflow's candle read (a local activity): candle, features, regime, signal, fills, account view. */
  prepareCandle(args: PrepareArgs): Promise<PrepareResult>;
  /** The symbol workflow's orders, sent once each and recorded in the ledger. */
  executeIntents(args: ExecuteArgs): Promise<ExecutionReport>;
  /** A strategy switch checked where it will run (found, type-checks, loads, parameters valid, timeframe supported) and audited. */
  checkStrategy(args: StrategyCheckArgs): Promise<StrategyCheckResult>;
  /** The audit row of a switch the symbol has been told of (written after the signal, so a switch that did not happen has none). */
  recordStrategySwitch(args: StrategySwitchRecord): Promise<void>;
  /** The account's value from the ledger, for the portfolio's limits. */
  portfolioSnapshot(args: { account: string; symbols: string[]; peakEquity?: number | null }): Promise<PortfolioSnapshot>;
  /** One equity check written to the ledger; idempotent per account and check time. */
  recordEquitySnapshot(r: EquitySnapshotRecord): Promise<void>;
  startSymbolWorkflows(args: { workflows: SymbolTraderInput[]; taskQueue: string }): Promise<{ started: string[] }>;
  signalSymbols(args: { commands: SymbolStatusCommand[] }): Promise<{ signaled: string[]; notRunning: string[] }>;
  emergencyCloseSymbols(args: { account: string; workflowIds: string[]; origin: MessageOrigin; alert?: string }): Promise<EmergencyCloseResult[]>;
  /** The ledger compared with the exchange; differences reported, never overwritten. */
  reconcileAccount(args: { symbols: string[] }): Promise<ReconcileReport>;
}

// --- alerts (activities/alerts.ts) --------------------------------------------------------------

/** What became of an alert: the queue's outcome, or logged only (no Telegram configured). */
export type AlertStatus = PushOutcome['status'] | 'logged-only';

export interface AlertActivities {
  /** Validates and enqueues; returns at once (trading never waits on Telegram). */
  sendAlert(input: Alert): Promise<{ status: AlertStatus }>;
}

// --- training (activities/training.ts) ----------------------------------------------------------

export interface ReloadOutcome {
  signaled: string[];
  failed: { workflowId: string; error: string }[];
}

export interface TrainingActivities {
  gatherTrainingData(args: { data: string[] }): Promise<GatheredData>;
  gatherStoreTrainingData(args: { store: StoreTrainingSource }): Promise<GatheredData>;
  trainChallenger(args: { files: string[]; settings: RetrainSettings; created: string }): Promise<TrainedChallenger>;
  evaluateChallenger(args: { challengerId: string; files: string[]; strategy: BuiltinStrategyName; margin?: PromotionMargin }): Promise<GateEvaluation>;
  promoteChallenger(args: { id: string }): Promise<{ champion: string; retired: string | null }>;
  reloadTraders(args: { version: string; origin: MessageOrigin }): Promise<ReloadOutcome>;
  discardRunFiles(): Promise<void>;
}

// --- the system check (activities/index.ts) -----------------------------------------------------

export interface LedgerCheck {
  auditId: string;
  serverVersion: string;
  migrations: number;
}

export interface SystemCheckActivities {
  /** Writes one audit row and reads it back: the ledger is reachable and writable. */
  checkLedger(input: { event: string; workflowId: string }): Promise<LedgerCheck>;
}

import { z } from 'zod';
import type { Candle } from '../candles';
import type { Regime } from '../regime';
import { RiskConfig, type StopOutState, type TradingStatus } from '../risk';
import type { DecisionView, TradeFigures } from '../contracts/trading';

/**
 * The trading engine's shapes. Everything here is plain JSON (numbers, strings, arrays), because
 * the state travels through Temporal's history and continue-as-new, and the inputs and intents
 * are activity payloads.
 */

/** The strategies built into the engine (lib/strategy/builtins); any other name or path is a user's strategy file. */
export const BUILTIN_STRATEGY_NAMES = ['rules', 'ensemble', 'ppo', 'hybrid'] as const;
export type BuiltinStrategyName = (typeof BUILTIN_STRATEGY_NAMES)[number];
/** A strategy reference: a built-in's name, a strategy file's name (strategies/NAME.ts), or a path to a .ts file. */
export const StrategyRef = z.string().min(1).max(500);
export type StrategyRef = z.infer<typeof StrategyRef>;

/** A distance from the entry price: a fraction of it, or a multiple of ATR. */
export type Distance = { pct: number } | { atr: number };
/** A trailing stop: a fraction of the best price or a multiple of ATR, active once the best price is `activateAtPct` above the entry. */
export type TrailingRule = Distance & { activateAtPct?: number };

/** Who answered a decision: name, version, short hashes of its source and of its parameters. */
export interface SignalStrategyIdentity {
  name: string;
  version: string;
  source: string;
  params: string;
}

/**
 * A strategy's answer on one closed candle as the engine reads it (lib/strategy/run.ts makes it
 * from the strategy's StrategyAnswer; it is recorded in the workflow history with the candle).
 */
export interface StrategySignal {
  enter: boolean;
  exit: boolean;
  /** A number for the UI and metrics: -1..1 for the rules, the model's probability or action otherwise. */
  score: number;
  reason: string;
  /** Multiplies the size (model confidence). */
  confidence?: number;
  /** The entry's tag: travels to its trade. */
  tag?: string;
  /** Share of the maximum position size, (0, 1]. */
  size?: number;
  stop?: Distance;
  target?: Distance | null;
  trailing?: TrailingRule;
  /** Set when the strategy failed on this candle (threw, invalid answer, over budget, not loadable): no entries, no strategy exits. */
  error?: string;
  /** Absent for the built-ins' signals computed by the engine itself (histories recorded before strategies were files). */
  strategy?: SignalStrategyIdentity;
}

/** What a model says about the candle that just closed. `ok: false` (or no signal at all) means: no new entries. */
export interface ModelSignal {
  ok: boolean;
  /** Ensemble: probability that price goes up over the model's horizon. */
  probUp?: number;
  /** In [0, 1]; scales the position size. */
  confidence?: number;
  /** PPO: the policy's action. */
  action?: 'long' | 'flat';
  /**
   * Ensemble: the model's own entry and exit thresholds on probUp (its manifest; fitted on its
   * validation data). Absent: the engine's ModelThresholds.
   */
  enterProb?: number;
  exitProb?: number;
  version?: string;
  error?: string;
}

/** Fallback thresholds, for a model signal that does not carry its own (versions before fitted thresholds). */
export const ModelThresholds = z.object({
  /** Ensemble: enter at or above this probability of a rise... */
  enterProb: z.number().gt(0).lt(1).default(0.55),
  /** ...and leave at or below this one. The gap between them keeps a position from flapping. */
  exitProb: z.number().gt(0).lt(1).default(0.45),
});

export const EngineConfigSchema = z
  .object({
    symbol: z.string().min(1),
    /** The strategy's reference (a built-in's name, a strategy file's name or path). */
    strategy: StrategyRef,
    /** Its parameters (validated by the strategy's own schema where it is loaded); absent: its defaults. */
    strategyParams: z.record(z.string(), z.unknown()).optional(),
    risk: RiskConfig,
    timeframeMs: z.number().int().positive(),
    /** INITIAL_CAPITAL / number of symbols: the slice of the account this symbol sizes from. */
    sleeveCapital: z.number().positive(),
    /** Taker fee rate, so an entry never needs more cash than the sleeve holds. */
    feeRate: z.number().min(0).max(0.1).default(0.001),
    model: ModelThresholds.default({ enterProb: 0.55, exitProb: 0.45 }),
    /**
     * How `hybrid` combines its three voices (lib/engine/strategy.ts). `majority` since the
     * fitted thresholds; a workflow whose input was recorded before this field existed has none
     * and keeps `agreement`, the rule it started with, so its history replays.
     */
    hybridRule: z.enum(['majority', 'agreement']).default('majority'),
    /**
     * A trailing stop is re-placed on the exchange only when it has moved up by at least this
     * fraction: each move is a cancel plus a new order, and a 0.01 % move is not worth two calls.
     */
    trailReplaceMinPct: z.number().min(0).max(0.5).default(0.001),
  })
  .refine((c) => c.model.exitProb < c.model.enterProb, { message: 'model.exitProb must be below model.enterProb', path: ['model', 'exitProb'] });
export type EngineConfig = z.infer<typeof EngineConfigSchema>;
export type EngineConfigInput = z.input<typeof EngineConfigSchema>;

/** Validates and fills defaults (risk included); throws a ZodError naming the bad field. */
export function engineConfig(input: EngineConfigInput): EngineConfig {
  return EngineConfigSchema.parse(input);
}

/** The account as the PortfolioWorkflow (or the backtester) sees it when a decision is taken. */
export interface PortfolioView {
  openPositions: number;
  /** Sum of open position notionals at mark, quote currency. */
  totalExposure: number;
  equity: number;
  peakEquity: number;
  dayStartEquity: number;
  dailyPnl: number;
}

export interface DecisionInput {
  /** The candle that just closed. */
  candle: Candle;
  /** FEATURE_SCHEMA order; empty while the features are warming up. */
  features: number[];
  regime: Regime;
  model?: ModelSignal;
  /**
   * The strategy's answer, computed where the candle was read (recorded with it). Absent in
   * histories recorded before strategies were files: the engine then asks the built-in named by
   * EngineConfig.strategy itself, as it did then.
   */
  signal?: StrategySignal;
  /**
   * Account-wide numbers for the entry gate (max concurrent positions, total exposure, drawdown,
   * daily loss). Without it only this symbol's own gates apply (status, cooldown, stoploss guard)
   * and sizing still uses the sleeve.
   */
  portfolio?: PortfolioView;
  /** False when the candle failed hygiene (gap, bad values, stale): nothing is decided on it. Default true. */
  tradable?: boolean;
  problems?: string[];
}

export type OrderTag = 'entry' | 'exit' | 'stop' | 'target' | 'cancel';

export interface OrderIntent {
  tag: OrderTag;
  side: 'buy' | 'sell';
  type: 'market' | 'stop_market' | 'limit';
  qty: number;
  /** Limit price; for a market order the reference price (the decision candle's close). */
  price?: number;
  stopPrice?: number;
  reason: string;
  clientOrderId: string;
  /** For tag 'cancel': the client order id of the order to cancel. */
  cancelClientOrderId?: string;
  /** Entries and signal exits: the strategy that asked (recorded on the order's ledger row). */
  strategy?: SignalStrategyIdentity;
  /** Entries: the strategy's tag for it. */
  entryTag?: string;
}

/** What a strategy asked for an entry beyond the risk config's defaults (lib/strategy StrategyAnswer's hooks). */
export interface EntryPlan {
  stop?: Distance;
  /** null: no target order. */
  target?: Distance | null;
  trailing?: TrailingRule;
  tag?: string;
}

/** One fill of one of our orders, fee in the quote currency. `time` is when it happened (paper: the candle's close). */
export interface EngineFill {
  clientOrderId: string;
  tag: OrderTag;
  side: 'buy' | 'sell';
  qty: number;
  price: number;
  fee: number;
  time: number;
}

export interface OrderRejection {
  clientOrderId: string;
  reason: string;
}

export const EXIT_REASONS = ['stop_loss', 'take_profit', 'trailing_stop', 'signal', 'emergency', 'end_of_data'] as const;
export type ExitReason = (typeof EXIT_REASONS)[number];

export interface ClosedTrade extends TradeFigures {
  side: 'long';
  exitReason: ExitReason;
  entryOrderId: string;
  exitOrderId: string;
  /** The protective stop and target placed at entry (a trailing stop may have moved the stop up since). */
  stopPrice: number | null;
  targetPrice: number | null;
  /** The strategy's tag of the entry, when it gave one. */
  entryTag?: string;
  /** The strategy that entered (absent for entries decided before strategies were files). */
  strategy?: SignalStrategyIdentity;
}

/** The open position as the candle read carries it to the strategy (lib/engine positionForStrategy). */
export interface EnginePositionView {
  qty: number;
  entryPrice: number;
  entryTime: number;
  bestPrice: number;
  stopPrice: number | null;
  targetPrice: number | null;
  tag?: string;
}

/** An order we sent and whose outcome (fill, cancel, refusal) is still to be seen. */
export interface PendingOrder {
  clientOrderId: string;
  tag: Exclude<OrderTag, 'cancel'>;
  /** Decision sequence it belongs to. */
  seq: number;
  /** Exits: what closing the position with it will be called. */
  exitReason?: ExitReason;
  /** Entries: the ATR at decision time, for ATR-based stops. */
  atr?: number;
  /** Entries: the strategy's own stop, target, trailing rule and tag. */
  plan?: EntryPlan;
  /** Entries: the strategy that asked. */
  strategy?: SignalStrategyIdentity;
}

export interface PositionState {
  qty: number;
  entryPrice: number;
  entryTime: number;
  /** Quote currency. */
  entryFee: number;
  entryOrderId: string;
  /** The initial stop loss (never moves). */
  initialStopPrice: number;
  /** The stop resting on the exchange now (the initial one or a trailing replacement). */
  stopPrice: number | null;
  targetPrice: number | null;
  /** lib/risk's trailing level; the resting stop follows it in steps of trailReplaceMinPct. */
  trailingStopPrice: number | null;
  /** Highest high since entry. */
  bestPrice: number;
  stopOrderId: string | null;
  targetOrderId: string | null;
  /** The strategy's trailing rule for this position (absent: the risk config's). */
  trailing?: EntryPlan['trailing'];
  /** The entry's tag. */
  tag?: string;
  /** The strategy that entered. */
  strategy?: SignalStrategyIdentity;
}

export interface SymbolState {
  symbol: string;
  /** Decision sequence: +1 per decision; client order ids derive from it. */
  seq: number;
  /** Bar index (open time / timeframe) of the last decision. */
  bar: number | null;
  lastCandleTime: number | null;
  lastClose: number | null;
  tradingStatus: TradingStatus;
  statusReason: string | null;
  position: PositionState | null;
  pending: PendingOrder[];
  /**
   * Protective orders we asked to cancel, last few: on a live venue a cancel can lose the race
   * with a fill, and that fill must still close the position.
   */
  recentlyCanceled: PendingOrder[];
  stopOuts: StopOutState;
  realizedPnl: number;
  feesPaid: number;
  tradesClosed: number;
  lastDecision: DecisionView | null;
}

export interface EngineContext {
  workflowId: string;
}

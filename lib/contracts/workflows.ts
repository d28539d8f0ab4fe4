import type { EngineConfig, StepCursor, SymbolState } from '../engine';
import type { DecisionReport, KillSwitchView, TradingStatus } from './trading';

/**
 * The inputs and results of the trading workflows (workflows/symbol-trader.ts,
 * workflows/portfolio.ts), and the state they carry across continue-as-new: plain JSON, built
 * by control/ (which starts them) and read by the activities that start symbol workflows.
 */

export interface SymbolTraderInput {
  symbol: string;
  exchange: string;
  account: string;
  mode: 'paper' | 'live' | 'replay';
  timeframe: string;
  timeframeMs: number;
  engine: EngineConfig;
  /** live/paper: wait this long after the close before asking for the candle (exchanges publish late). */
  candleDelayMs: number;
  /** replay only: 'max', or simulated seconds per real second. */
  speed?: 'max' | number;
  /** Events after which the run continues as new (well under Temporal's 10,000 warnings). */
  continueAsNewAfterEvents?: number;
  /** Carried across continue-as-new. */
  carried?: SymbolTraderCarried;
}

export interface SymbolTraderCarried {
  state: SymbolState;
  cursor: StepCursor;
  decisions: number;
  modelVersion: string | null;
  pendingReload?: { version?: string } | null;
  /** The last decision, not yet handed to a candle read for the metrics. */
  pendingReport?: DecisionReport | null;
  /** The strategy this symbol runs now (after `trader strategy set`); absent: the input's engine config's. */
  strategy?: ActiveStrategy;
  /** A switch asked for and not yet taken up by a candle. */
  pendingStrategy?: PendingStrategy | null;
  /** The strategy failure being alerted on (one alert per incident), or null. */
  strategyIncident?: string | null;
}

/** A switch asked for: the strategy, who asked and why, and its `name@version` as the check loaded it (for the alert). */
export interface PendingStrategy extends ActiveStrategy {
  by: string;
  reason?: string;
  label?: string;
}

/** A symbol's strategy: its reference, parameters, and the switch count (the worker reloads the file for a new revision). */
export interface ActiveStrategy {
  ref: string;
  params?: Record<string, unknown>;
  revision: number;
  /** Who answered last (name, version, source and params hashes): for the UI and the state query. */
  identity?: { name: string; version: string; source: string; params: string };
}

export interface SymbolTraderResult {
  symbol: string;
  decisions: number;
  realizedPnl: number;
  tradesClosed: number;
  reason: 'end_of_data';
}

export interface PortfolioInput {
  account: string;
  exchange: string;
  mode: 'paper' | 'live' | 'replay';
  symbols: SymbolTraderInput[];
  taskQueue: string;
  limits: { maxDrawdown: number; dailyLossLimit: number };
  /** How often equity is checked (ms). */
  checkEveryMs: number;
  /** Reconcile the ledger with the exchange at start and every this many checks (default 15). */
  reconcileEveryChecks?: number;
  continueAsNewAfterEvents?: number;
  carried?: PortfolioCarried;
}

export interface PortfolioCarried {
  killSwitch: KillSwitchView;
  peakEquity: number | null;
  equity: number | null;
  requestedStatus: Record<string, TradingStatus>;
  started: boolean;
  /** Symbols the daily loss limit paused, and the UTC day it happened: they resume the next day. */
  dailyPaused?: { day: number; symbols: string[] };
}

/** The paper/live account `trader up` trades (and the CLI and Telegram bot address by default). */
export function accountName(cfg: { mode: string; exchange: { id: string } }): string {
  return `${cfg.mode}-${cfg.exchange.id}`;
}

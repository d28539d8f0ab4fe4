import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';

/**
 * Every message the trading workflows accept, defined once: the workflows, the `trader` CLI and
 * the Telegram bot import these definitions, so a name can never drift between sender and
 * receiver. Pure types and definitions only (this file is bundled into the workflow isolate).
 */

export type TradingStatus = 'active' | 'paused' | 'reduce-only' | 'halted';
export const TRADING_STATUSES: readonly TradingStatus[] = ['active', 'paused', 'reduce-only', 'halted'];

/** Who asked, for the audit trail (`cli:<user>`, `telegram:<user id>`, `portfolio`, ...). */
export interface MessageOrigin {
  by: string;
  reason?: string;
}

export interface OpenPositionView {
  symbol: string;
  side: 'long';
  qty: number;
  entryPrice: number;
  entryTime: number;
  stopPrice: number | null;
  targetPrice: number | null;
  /** Last close seen by the workflow, and the unrealized PnL at it (quote currency). */
  markPrice: number | null;
  unrealizedPnl: number | null;
}

export interface DecisionView {
  /** Decision sequence number (the client order ids derive from it). */
  seq: number;
  /** Open time of the candle the decision was taken on (ms). */
  candleTime: number;
  action: 'hold' | 'enter' | 'exit' | 'blocked';
  reason: string;
  price: number;
  regime?: string;
  signal?: number;
}

export interface SymbolStateView {
  workflowId: string;
  symbol: string;
  exchange: string;
  mode: 'paper' | 'live' | 'replay';
  strategy: string;
  tradingStatus: TradingStatus;
  statusReason?: string;
  position: OpenPositionView | null;
  lastDecision: DecisionView | null;
  decisions: number;
  realizedPnl: number;
  tradesClosed: number;
  /** Open time of the last candle processed (ms), or null before the first. */
  lastCandleTime: number | null;
  /** Replay only: true once the recorded data is exhausted. */
  done: boolean;
  modelVersion?: string | null;
  /** The exchange's circuit breaker as last seen by this symbol ('closed' = healthy). */
  exchangeBreaker?: { state: string; since: number; consecutiveFailures: number; lastFailure?: string } | null;
}

/** What an emergency close did: one entry per position it closed (empty when flat). */
export interface ClosedPositionView {
  symbol: string;
  qty: number;
  entryPrice: number;
  exitPrice: number;
  pnl: number;
  clientOrderId: string;
}

export interface EmergencyCloseResult {
  symbol: string;
  closed: ClosedPositionView[];
  canceledOrders: number;
  tradingStatus: TradingStatus;
  /** Set when this symbol could not be closed (its workflow did not answer). */
  error?: string;
}

// --- SymbolTraderWorkflow ---------------------------------------------------------------------

/** No new entries; protective exits keep working. */
export const pauseSignal = defineSignal<[MessageOrigin]>('pause');
/** Back to `active` (also lifts `reduce-only`; a `halted` symbol resumes only by this signal too). */
export const resumeSignal = defineSignal<[MessageOrigin]>('resume');
/** Only exits from now on (the open position may be closed or reduced, never increased). */
export const reduceOnlySignal = defineSignal<[MessageOrigin]>('reduceOnly');
/** Reload the model at the given version (or the registry's champion when omitted). */
export const reloadModelSignal = defineSignal<[{ version?: string } & MessageOrigin]>('reloadModel');
/** Close the open position at market, cancel working orders, and halt. Returns what it closed. */
export const emergencyCloseUpdate = defineUpdate<EmergencyCloseResult, [MessageOrigin]>('emergencyClose');
export const stateQuery = defineQuery<SymbolStateView>('state');
export const lastDecisionQuery = defineQuery<DecisionView | null>('lastDecision');

// --- PortfolioWorkflow ------------------------------------------------------------------------

export interface KillSwitchView {
  tripped: boolean;
  reason?: string;
  at?: number;
  by?: string;
}

export interface PortfolioStateView {
  workflowId: string;
  account: string;
  symbols: string[];
  equity: number | null;
  peakEquity: number | null;
  drawdown: number | null;
  killSwitch: KillSwitchView;
  /** The status the portfolio last asked of its symbols (what /status shows when a symbol is not running). */
  requestedStatus: Record<string, TradingStatus>;
}

/** Pause (symbol given) one symbol or (no symbol) every symbol. */
export const portfolioPauseSignal = defineSignal<[{ symbol?: string } & MessageOrigin]>('portfolioPause');
export const portfolioResumeSignal = defineSignal<[{ symbol?: string } & MessageOrigin]>('portfolioResume');
export const portfolioReduceOnlySignal = defineSignal<[{ symbol?: string } & MessageOrigin]>('portfolioReduceOnly');
/** Emergency close of every symbol; trips the kill switch. Returns one result per symbol. */
export const portfolioEmergencyUpdate = defineUpdate<EmergencyCloseResult[], [MessageOrigin]>('portfolioEmergency');
export const portfolioStateQuery = defineQuery<PortfolioStateView>('portfolioState');

/** Workflow ids, one place. */
export function symbolWorkflowId(exchange: string, symbol: string): string {
  return `trader/${exchange}/${symbol}`;
}
export function portfolioWorkflowId(account: string): string {
  return `portfolio/${account}`;
}

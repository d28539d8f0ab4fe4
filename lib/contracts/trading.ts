/**
 * The plain shapes the trading workflows exchange with the outside: the state and decision views
 * queries return, who sent a message (and its check), what an emergency close did, and the workflow ids. Plain
 * JSON (they travel in Temporal payloads); the message definitions that carry them are in
 * workflows/messages.ts.
 */

import { z } from 'zod';

export type TradingStatus = 'active' | 'paused' | 'reduce-only' | 'halted';

/** Who asked, for the audit trail (`cli:<user>`, `telegram:<user id>`, `portfolio`, ...). */
export const MessageOrigin = z.object({ by: z.string().min(1).max(100), reason: z.string().optional() });
export type MessageOrigin = z.infer<typeof MessageOrigin>;

export class InvalidMessageError extends Error {
  override name = 'InvalidMessageError';
}

/**
 * Update validators call this (a throw there rejects the update before it enters history);
 * signal handlers, which cannot refuse, check `MessageOrigin.safeParse` and log instead.
 */
export function assertMessageOrigin(message: unknown): asserts message is MessageOrigin {
  if (!MessageOrigin.safeParse(message).success) throw new InvalidMessageError('a message needs { by: "<who>" } (1-100 characters), and its reason, if any, is text');
}

/**
 * The figures of a closed round trip, whoever produced it: the engine (ClosedTrade), the ledger
 * (its trade rows), a report or an audit comparing the two. Quote currency, epoch ms.
 */
export interface TradeFigures {
  symbol: string;
  qty: number;
  entryTime: number;
  entryPrice: number;
  exitTime: number;
  exitPrice: number;
  /** Entry plus exit fee. */
  fees: number;
  /** After fees. */
  pnl: number;
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

/**
 * A decision as the symbol workflow hands it to the next candle read (prepareCandle's arguments),
 * so that an activity writes it to the metrics: workflow code does no I/O, and riding on a call
 * the workflow makes anyway costs no history event.
 */
export interface DecisionReport {
  seq: number;
  /** Open time of the decision candle (ms). */
  candleTime: number;
  /** Its close (ms): when the decision became possible, and the metric point's time. */
  closeTime: number;
  action: DecisionView['action'];
  reason: string;
  price: number;
  /** Intents sent to the exchange while settling this candle (entry, protective orders, exits). */
  ordersSent: number;
  /** Candle close (replay: the step's start) to the decision, ms. Absent when the candle read did not measure it. */
  latencyMs?: number;
  /** Who answered (absent for workflows from before strategies were files). */
  strategy?: { name: string; version: string; source: string; params: string };
}

/** What a strategy switch came to: the symbol, the strategy it runs from its next candle. */
export interface StrategySwitchResult {
  symbol: string;
  ref: string;
  /** `name@version src:<hash> params:<hash>` */
  strategy: string;
}

export interface SymbolStateView {
  workflowId: string;
  symbol: string;
  exchange: string;
  mode: 'paper' | 'live' | 'replay';
  strategy: string;
  /** Who answered the last decision: `name@version src:<hash> params:<hash>` (absent before the first, and for workflows from before strategies were files). */
  strategyIdentity?: string;
  /** A switch asked for, taking effect at the next candle. */
  pendingStrategy?: string;
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
  exchangeBreaker?: ExchangeBreakerView | null;
  /** The candle length (ms); with the two below, what the watchdog needs to tell a stalled symbol. */
  timeframeMs?: number;
  /** Replay: simulated seconds per real second ('max': as fast as it goes); null live and paper. */
  replaySpeed?: number | 'max' | null;
  /** Live and paper: when the next candle step is due (its close plus the exchange's publishing delay); null before the first candle and in replay. */
  nextCandleDueAt?: number | null;
}

export interface ExchangeBreakerView {
  state: string;
  since: number;
  consecutiveFailures: number;
  lastFailure?: string;
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

/**
 * One equity check of the portfolio as the ledger keeps it (the recordEquitySnapshot activity's
 * argument): quote-currency amounts, `ts` the check's time (epoch ms; with the account, what makes
 * a retried write idempotent), `drawdown` a fraction of `peakEquity`.
 */
export interface EquitySnapshotRecord {
  account: string;
  ts: number;
  equity: number;
  cash: number;
  exposure: number;
  peakEquity: number;
  drawdown: number;
}

/** Workflow ids, one place. */
export function symbolWorkflowId(exchange: string, symbol: string): string {
  return `trader/${exchange}/${symbol}`;
}
export function portfolioWorkflowId(account: string): string {
  return `portfolio/${account}`;
}

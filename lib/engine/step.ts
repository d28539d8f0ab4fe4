import type { Candle } from '../candles';
import { applyFill, applyOrderStatus, applyRejection, decide } from './engine';
import type { ClosedTrade, DecisionInput, EnginePositionView, EngineConfig, EngineContext, EngineFill, OrderIntent, OrderRejection, PortfolioView, SymbolState } from './types';
import type { DecisionView } from '../contracts/trading';

/**
 * One candle for one symbol, in the one order both the SymbolTraderWorkflow and the backtester
 * follow (parity depends on it):
 *
 *   prepare (next closed candle, features, regime, model, fills of our resting orders)
 *   -> applyFill for each of those fills (a stop or target hit inside this candle) -> send what
 *      they ask (cancel the sibling)
 *   -> decide on the candle -> send its intents
 *   and after every send: applyFill for immediate fills, applyRejection for refusals,
 *   applyOrderStatus for orders that ended without a fill; repeat while that asks for more.
 *
 * Pure orchestration: the side effects are the ports (activities in the workflow, direct calls in
 * the backtester), so this file is as sandbox-safe as the engine.
 */

/** What prepareCandleStep returns (lib/trading/candle-io.ts; the prepareCandle activity adds to it). */
export interface PreparedCandle {
  /** Replay: no candle after `after` in the recorded data. Live: never. */
  done: boolean;
  /** Absent when no new closed candle is available yet (live: it is late) or at the end. */
  input?: Omit<DecisionInput, 'portfolio'>;
  /** Fills of this workflow's orders since the cursor (inclusive; applyFill ignores repeats). */
  fills: EngineFill[];
  /** Cursor for the next call. */
  fillsSince: number;
  /** Hygiene and data problems, for logs; an untradable candle is also marked in `input`. */
  problems: string[];
}

/** What one send of intents came to on the exchange. */
export interface ExecutionOutcome {
  fills: EngineFill[];
  orders: Array<{ clientOrderId: string; status: string; exchangeOrderId: string }>;
  rejected: OrderRejection[];
}

/**
 * What executeIntentsStep returns (lib/trading/candle-io.ts; the executeIntents activity passes it on): the outcome of the intents it was given
 * and, when it was given the engine state, of what the engine asked for next, sent in the same
 * call (the stop and target of an entry that filled, a market exit after a refused stop): one
 * `next` per round, naming the client order ids of the intents it sent.
 */
export interface ExecutionReport extends ExecutionOutcome {
  next?: FollowUp;
}

export interface FollowUp extends ExecutionOutcome {
  /** Client order ids of the intents this round sent, in order. */
  sent: string[];
  next?: FollowUp;
}

export interface StepCursor {
  /** Open time of the last candle processed, null before the first. */
  after: number | null;
  fillsSince: number;
}

export interface StepPorts {
  /** `state`: the engine before this candle (its position is what the strategy's custom exits see). */
  prepare(cursor: StepCursor, state: SymbolState): Promise<PreparedCandle>;
  /** `state` is the engine's state before the intents are sent, for follow-ups sent in the same call. */
  execute(intents: OrderIntent[], why: string, state: SymbolState): Promise<ExecutionReport>;
  /** The account view for the entry gate, taken after this symbol's fills and before its decision. */
  portfolio?(candle: Candle, state: SymbolState): PortfolioView | undefined | Promise<PortfolioView | undefined>;
}

export interface StepOutcome {
  state: SymbolState;
  cursor: StepCursor;
  done: boolean;
  /** Set when a candle was decided on. */
  candle?: Candle;
  /** False when the candle failed hygiene or had no features (nothing was decided on it). */
  tradable?: boolean;
  decision?: DecisionView;
  closed: ClosedTrade[];
  rejected: OrderRejection[];
  problems: string[];
  /** Intents sent to the exchange in this step. */
  sent: number;
}

/** Rounds of send -> apply -> send: entry -> protective orders -> (refused stop) -> market exit is three. */
export const MAX_SEND_ROUNDS = 5;

export class EngineLoopError extends Error {
  override name = 'EngineLoopError';
}

export async function runCandleStep(state: SymbolState, cursor: StepCursor, ports: StepPorts, cfg: EngineConfig, ctx: EngineContext): Promise<StepOutcome> {
  const prep = await ports.prepare(cursor, state);
  const out: StepOutcome = { state, cursor, done: prep.done, closed: [], rejected: [], problems: prep.problems, sent: 0 };
  if (prep.done || !prep.input) return out;
  out.cursor = { after: prep.input.candle.timestamp, fillsSince: prep.fillsSince };
  out.candle = prep.input.candle;
  out.tradable = prep.input.tradable !== false && prep.input.features.length > 0;

  const intents: OrderIntent[] = [];
  for (const f of prep.fills) {
    const r = applyFill(out.state, f, cfg, ctx);
    out.state = r.state;
    if (r.closed) out.closed.push(r.closed);
    for (const i of r.intents) intents.push(i);
  }
  // Only when there is something to send: every await in workflow code costs (the SDK records a
  // stack trace for each promise it creates), and most candles send nothing.
  if (intents.length > 0) await settle(out, intents, ports, cfg, ctx, 'after fills');

  const portfolio = ports.portfolio ? ports.portfolio(prep.input.candle, out.state) : undefined;
  const view = portfolio instanceof Promise ? await portfolio : portfolio;
  const input: DecisionInput = view ? { ...prep.input, portfolio: view } : prep.input;
  const d = decide(out.state, input, cfg, ctx);
  out.state = d.state;
  out.decision = d.decision;
  if (d.intents.length > 0) await settle(out, d.intents, ports, cfg, ctx, `decision ${d.decision.seq} ${d.decision.action}`);
  return out;
}

export type SettleOutcome = Pick<StepOutcome, 'state' | 'closed' | 'rejected' | 'sent'>;

/**
 * Sends intents and feeds the outcome back to the engine until it asks for nothing more. When a
 * send already sent what the engine asks for next (executeIntents given the state: the stop and
 * target of an entry that filled), its recorded outcome is applied instead of sending them again;
 * anything else is sent (a repeat is harmless: every order is looked up by its client order id
 * before it is placed).
 */
export async function settle(out: SettleOutcome, intents: OrderIntent[], ports: Pick<StepPorts, 'execute'>, cfg: EngineConfig, ctx: EngineContext, why: string): Promise<void> {
  let ahead: FollowUp | undefined;
  for (let round = 0; intents.length > 0; round++) {
    if (round >= MAX_SEND_ROUNDS) throw new EngineLoopError(`${out.state.symbol}: the engine kept emitting orders after ${round} rounds (${why}): ${JSON.stringify(intents)}`);
    let report: ExecutionOutcome & { next?: FollowUp };
    if (ahead && sameIds(ahead.sent, intents)) {
      report = ahead;
    } else {
      report = await ports.execute(intents, why, out.state);
    }
    out.sent += intents.length;
    intents = applyOutcome(out, report, cfg, ctx);
    ahead = report.next;
  }
}

/** Feeds one send's outcome to the engine: fills, then refusals, then orders that ended; returns what it asks to send next. */
export function applyOutcome(out: SettleOutcome, report: ExecutionOutcome, cfg: EngineConfig, ctx: EngineContext): OrderIntent[] {
  const next: OrderIntent[] = [];
  for (const f of report.fills) {
    const r = applyFill(out.state, f, cfg, ctx);
    out.state = r.state;
    if (r.closed) out.closed.push(r.closed);
    for (const i of r.intents) next.push(i);
  }
  for (const rej of report.rejected) {
    const r = applyRejection(out.state, rej, cfg, ctx);
    out.state = r.state;
    out.rejected.push(rej);
    for (const i of r.intents) next.push(i);
  }
  for (const o of report.orders) out.state = applyOrderStatus(out.state, o);
  return next;
}

function sameIds(sent: readonly string[], intents: readonly OrderIntent[]): boolean {
  return sent.length === intents.length && intents.every((i, k) => i.clientOrderId === sent[k]);
}

/** The engine's position as a strategy sees it (EnginePositionView), or null when flat. */
export function positionForStrategy(state: SymbolState): EnginePositionView | null {
  const p = state.position;
  if (!p) return null;
  const v: EnginePositionView = {
    qty: p.qty,
    entryPrice: p.entryPrice,
    entryTime: p.entryTime,
    bestPrice: p.bestPrice,
    stopPrice: p.stopPrice,
    targetPrice: p.targetPrice,
  };
  if (p.tag !== undefined) v.tag = p.tag;
  return v;
}

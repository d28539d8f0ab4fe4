import type { Candle } from '../candles';
import { applyFill, applyOrderStatus, applyRejection, decide } from './engine';
import type { ClosedTrade, DecisionInput, EngineConfig, EngineContext, EngineFill, OrderIntent, OrderRejection, PortfolioView, SymbolState } from './types';
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

/** What prepareCandle returns (activities/trading/core.ts). */
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

/** What executeIntents returns (activities/trading/core.ts). */
export interface ExecutionReport {
  fills: EngineFill[];
  orders: Array<{ clientOrderId: string; status: string; exchangeOrderId: string }>;
  rejected: OrderRejection[];
}

export interface StepCursor {
  /** Open time of the last candle processed, null before the first. */
  after: number | null;
  fillsSince: number;
}

export interface StepPorts {
  prepare(cursor: StepCursor): Promise<PreparedCandle>;
  execute(intents: OrderIntent[], why: string): Promise<ExecutionReport>;
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
  const prep = await ports.prepare(cursor);
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
    intents.push(...r.intents);
  }
  await settle(out, intents, ports, cfg, ctx, 'after fills');

  const portfolio = ports.portfolio ? await ports.portfolio(prep.input.candle, out.state) : undefined;
  const input: DecisionInput = portfolio ? { ...prep.input, portfolio } : prep.input;
  const d = decide(out.state, input, cfg, ctx);
  out.state = d.state;
  out.decision = d.decision;
  await settle(out, d.intents, ports, cfg, ctx, `decision ${d.decision.seq} ${d.decision.action}`);
  return out;
}

/** Sends intents and feeds the outcome back to the engine until it asks for nothing more. */
export async function settle(out: Pick<StepOutcome, 'state' | 'closed' | 'rejected' | 'sent'>, intents: OrderIntent[], ports: Pick<StepPorts, 'execute'>, cfg: EngineConfig, ctx: EngineContext, why: string): Promise<void> {
  for (let round = 0; intents.length > 0; round++) {
    if (round >= MAX_SEND_ROUNDS) throw new EngineLoopError(`${out.state.symbol}: the engine kept emitting orders after ${round} rounds (${why}): ${JSON.stringify(intents)}`);
    const report = await ports.execute(intents, why);
    out.sent += intents.length;
    const next: OrderIntent[] = [];
    for (const f of report.fills) {
      const r = applyFill(out.state, f, cfg, ctx);
      out.state = r.state;
      if (r.closed) out.closed.push(r.closed);
      next.push(...r.intents);
    }
    for (const rej of report.rejected) {
      const r = applyRejection(out.state, rej, cfg, ctx);
      out.state = r.state;
      out.rejected.push(rej);
      next.push(...r.intents);
    }
    for (const o of report.orders) out.state = applyOrderStatus(out.state, o);
    intents = next;
  }
}

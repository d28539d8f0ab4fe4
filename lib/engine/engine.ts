import { FEATURE_SCHEMA } from '../features/schema';
import {
  effectiveStop,
  entryAllowed,
  isStopOut,
  mayReduce,
  NO_STOP_OUTS,
  MAX_STOP_FRACTION,
  protectiveLevels,
  recordStopOut,
  sizePosition,
  TradingStatus,
  updateTrailingStop,
  type ProtectedPosition,
} from '../risk';
import { cancelRequestId, clientOrderId, parseClientOrderId, type OrderCode } from './ids';
import { featureAtr, featureRealizedVol, strategySignal } from './strategy';
import type {
  ClosedTrade,
  DecisionInput,
  Distance,
  EntryPlan,
  StrategySignal,
  EngineConfig,
  EngineContext,
  EngineFill,
  ExitReason,
  OrderIntent,
  OrderRejection,
  PendingOrder,
  PositionState,
  SymbolState,
} from './types';
import type { DecisionView } from '../contracts/trading';

/**
 * The per-symbol trading engine: pure functions from (state, event) to (state, order intents).
 * The SymbolTraderWorkflow and the backtester call exactly these, in the same order (see
 * step.ts), against the same paper exchange, so they produce the same trades.
 *
 * Long-only spot. The position changes only when a fill says so: an intent is a wish, the
 * exchange decides. Stop and target rest on the exchange as real orders (a stop_market sell and
 * a limit sell), so a position stays protected while the worker is down; the engine only keeps
 * them in step with the position (placed after the entry fills, the sibling canceled after one
 * fills, the stop moved up when it trails).
 */

const RECENTLY_CANCELED_KEPT = 6;
/** An entry may spend the sleeve's cash up to this margin for slippage on top of the fee. */
const SLIPPAGE_MARGIN = 0.01;

export function initialSymbolState(cfg: Pick<EngineConfig, 'symbol'>): SymbolState {
  return {
    symbol: cfg.symbol,
    seq: 0,
    bar: null,
    lastCandleTime: null,
    lastClose: null,
    tradingStatus: 'active',
    statusReason: null,
    position: null,
    pending: [],
    recentlyCanceled: [],
    stopOuts: { recentStopOutBars: [], cooldownUntilBar: 0, guardPausedUntilBar: 0 },
    realizedPnl: 0,
    feesPaid: 0,
    tradesClosed: 0,
    lastDecision: null,
  };
}

/** The sleeve's equity: its capital plus what it has realized, plus the open position at `mark`. */
export function sleeveEquity(state: SymbolState, cfg: Pick<EngineConfig, 'sleeveCapital'>, mark?: number): number {
  const p = state.position;
  const unrealized = p && mark !== undefined ? p.qty * (mark - p.entryPrice) - p.entryFee : 0;
  return cfg.sleeveCapital + state.realizedPnl + unrealized;
}

export function setStatus(state: SymbolState, status: TradingStatus, reason: string): SymbolState {
  const parsed = TradingStatus.safeParse(status);
  if (!parsed.success) throw new RangeError(`unknown trading status '${status}' (one of ${TradingStatus.options.join(', ')})`);
  return { ...state, tradingStatus: parsed.data, statusReason: reason };
}

// --- decide -----------------------------------------------------------------------------------

export interface DecideResult {
  state: SymbolState;
  decision: DecisionView;
  intents: OrderIntent[];
}

export function decide(state: SymbolState, input: DecisionInput, cfg: EngineConfig, ctx: EngineContext): DecideResult {
  const c = input.candle;
  const seq = state.seq + 1;
  const bar = Math.floor(c.timestamp / cfg.timeframeMs);
  // Every field written out (the compiler refuses a missing one while SymbolState has no optional
  // field; keep it so): spreading the state here was the single hottest line of a backtest
  // (~9 %), an object literal costs a fraction of it.
  let s: SymbolState = {
    symbol: state.symbol, seq, bar, lastCandleTime: c.timestamp, lastClose: c.close, tradingStatus: state.tradingStatus, statusReason: state.statusReason,
    position: state.position, pending: state.pending, recentlyCanceled: state.recentlyCanceled, stopOuts: state.stopOuts, realizedPnl: state.realizedPnl,
    feesPaid: state.feesPaid, tradesClosed: state.tradesClosed, lastDecision: state.lastDecision,
  };
  const intents: OrderIntent[] = [];

  const usable = input.tradable !== false && input.features.length === FEATURE_SCHEMA.width && input.features.every(Number.isFinite);
  if (!usable) {
    const why = input.features.length === 0 ? 'features warming up' : input.tradable === false ? 'candle failed hygiene' : 'features unusable';
    return decided(s, intents, input, 'hold', [why, ...(input.problems ?? [])].join(': '));
  }
  if (s.tradingStatus === 'halted') return decided(s, intents, input, 'hold', `halted${s.statusReason ? ` (${s.statusReason})` : ''}`);

  const sig = strategySignal(input, cfg);
  const atr = featureAtr(input.features);
  const exiting = s.pending.some((p) => p.tag === 'exit');

  if (s.position) {
    if (exiting) return decided(s, intents, input, 'hold', 'exit order in flight', sig.score);
    if (sig.exit && mayReduce(s.tradingStatus)) {
      s = withExit(s, intents, ctx, seq, 'ex', 'signal', c.close);
      const exit = intents[intents.length - 1];
      if (sig.strategy) exit.strategy = sig.strategy;
      return decided(s, intents, input, 'exit', sig.reason, sig.score);
    }
    // Protective upkeep: the candle has already been matched against the resting stop (its fills
    // were applied before this decision), so it may now move the stop for the next candle.
    const trail = trailStop(s, input, cfg, ctx, seq, intents);
    s = trail.state;
    if (trail.exited) return decided(s, intents, input, 'exit', 'stop level at or above the close', sig.score);
    return decided(s, intents, input, 'hold', trail.moved ? `in position; trailing stop to ${s.position?.stopPrice}` : 'in position', sig.score);
  }

  if (s.pending.some((p) => p.tag === 'entry')) return decided(s, intents, input, 'hold', 'entry order in flight', sig.score);
  if (!sig.enter) return decided(s, intents, input, 'hold', sig.reason, sig.score);

  const portfolio = input.portfolio;
  const equity = sleeveEquity(s, cfg);
  const gate = entryAllowed({
    status: s.tradingStatus,
    openPositions: portfolio?.openPositions ?? 0,
    totalExposure: portfolio?.totalExposure ?? 0,
    equity: portfolio?.equity ?? equity,
    peakEquity: portfolio?.peakEquity ?? equity,
    dayStartEquity: portfolio?.dayStartEquity ?? equity,
    dailyPnl: portfolio?.dailyPnl ?? 0,
    stopOuts: s.stopOuts ?? NO_STOP_OUTS,
    currentBar: bar,
    cfg: cfg.risk,
  });
  if (!gate.allowed) return decided(s, intents, input, 'blocked', gate.reason, sig.score);

  // Sized on the symbol's own sleeve, never the shared account: the decision then does not
  // depend on the order in which symbols closing at the same time are processed.
  const size = sizePosition({
    equity,
    price: c.close,
    atr,
    realizedVol: featureRealizedVol(input.features),
    regime: input.regime.label,
    confidence: sig.confidence,
    fraction: sig.size === undefined ? undefined : sig.size * cfg.risk.maxPositionSize,
    cfg: cfg.risk,
  });
  let qty = size.qty;
  if (qty <= 0) return decided(s, intents, input, 'blocked', size.reason, sig.score);
  if (portfolio) {
    const room = cfg.risk.maxTotalExposure * portfolio.equity - portfolio.totalExposure;
    if (!(room > 0)) return decided(s, intents, input, 'blocked', 'no_exposure_room', sig.score);
    qty = Math.min(qty, room / c.close);
  }
  qty = Math.min(qty, equity / (c.close * (1 + cfg.feeRate + SLIPPAGE_MARGIN)));
  if (!(qty > 0)) return decided(s, intents, input, 'blocked', 'no_equity', sig.score);

  const id = clientOrderId(ctx.workflowId, seq, 'en');
  const entry: OrderIntent = { tag: 'entry', side: 'buy', type: 'market', qty, price: c.close, reason: sig.reason, clientOrderId: id };
  if (sig.strategy) entry.strategy = sig.strategy;
  if (sig.tag !== undefined) entry.entryTag = sig.tag;
  intents.push(entry);
  const pending: PendingOrder = { clientOrderId: id, tag: 'entry', seq };
  if (atr !== undefined) pending.atr = atr;
  const plan = entryPlan(sig);
  if (plan) pending.plan = plan;
  if (sig.strategy) pending.strategy = sig.strategy;
  s = { ...s, pending: [...s.pending, pending] };
  return decided(s, intents, input, 'enter', `${sig.reason}; size ${size.reason}`, sig.score);
}

/**
 * decide's result: the decision recorded on `s`. A module function rather than a closure in
 * decide: under tsx (esbuild keepNames) every named closure costs an Object.defineProperty per
 * call, and decide runs on every candle.
 */
function decided(s: SymbolState, intents: OrderIntent[], input: DecisionInput, action: DecisionView['action'], reason: string, signal?: number): DecideResult {
  const c = input.candle;
  const decision: DecisionView = { seq: s.seq, candleTime: c.timestamp, action, reason, price: c.close, regime: input.regime?.label };
  if (signal !== undefined && Number.isFinite(signal)) decision.signal = signal;
  // `s` is this call's own copy (made in decide, or made from it by the helpers): set, not copied again.
  s.lastDecision = decision;
  return { state: s, decision, intents };
}

/** The strategy's hooks for an entry, or undefined when it asked for nothing beyond the risk config. */
function entryPlan(sig: StrategySignal): EntryPlan | undefined {
  if (sig.stop === undefined && sig.target === undefined && sig.trailing === undefined && sig.tag === undefined) return undefined;
  const plan: EntryPlan = {};
  if (sig.stop !== undefined) plan.stop = sig.stop;
  if (sig.target !== undefined) plan.target = sig.target;
  if (sig.trailing !== undefined) plan.trailing = sig.trailing;
  if (sig.tag !== undefined) plan.tag = sig.tag;
  return plan;
}

/** A distance from the entry: a fraction of it or a multiple of ATR (undefined: no ATR to measure with). */
function distanceOf(d: Distance, entryPrice: number, atr: number | undefined): number | undefined {
  if ('pct' in d) return entryPrice * d.pct;
  return atr !== undefined && Number.isFinite(atr) && atr > 0 ? atr * d.atr : undefined;
}

/** The risk config's stop and target, with the strategy's own distances where it gave them (the stop capped as the risk config's is). */
function entryLevels(entryPrice: number, atr: number | undefined, plan: EntryPlan | undefined, cfg: EngineConfig): { stopPrice: number; takeProfitPrice: number | null } {
  const levels = protectiveLevels({ entryPrice, atr, cfg: cfg.risk });
  let stopPrice = levels.stopPrice;
  let takeProfitPrice: number | null = levels.takeProfitPrice;
  if (plan?.stop) {
    const d = distanceOf(plan.stop, entryPrice, atr);
    if (d !== undefined) stopPrice = entryPrice - Math.min(d, entryPrice * MAX_STOP_FRACTION);
  }
  if (plan?.target === null) takeProfitPrice = null;
  else if (plan?.target) {
    const d = distanceOf(plan.target, entryPrice, atr);
    if (d !== undefined) takeProfitPrice = entryPrice + d;
  }
  return { stopPrice, takeProfitPrice };
}

/** The risk config with a position's own trailing rule in place of the config's. */
function trailingConfig(cfg: EngineConfig, trailing: PositionState['trailing']): EngineConfig['risk'] {
  if (!trailing) return cfg.risk;
  const r = { ...cfg.risk, trailingActivationPct: trailing.activateAtPct ?? cfg.risk.trailingActivationPct };
  if ('pct' in trailing) return { ...r, trailingStopPct: trailing.pct, trailingAtrMult: undefined };
  return { ...r, trailingStopPct: undefined, trailingAtrMult: trailing.atr };
}

/** Cancels every resting protective order, then sells the position at market. */
function withExit(s: SymbolState, intents: OrderIntent[], ctx: EngineContext, seq: number, code: OrderCode, reason: ExitReason, refPrice: number | undefined): SymbolState {
  const p = s.position as PositionState;
  const next = cancelProtective(s, intents, () => true);
  const id = clientOrderId(ctx.workflowId, seq, code);
  const intent: OrderIntent = { tag: 'exit', side: 'sell', type: 'market', qty: p.qty, reason, clientOrderId: id };
  if (refPrice !== undefined) intent.price = refPrice;
  intents.push(intent);
  return {
    ...next,
    position: { ...(next.position as PositionState), stopOrderId: null, targetOrderId: null },
    pending: [...next.pending, { clientOrderId: id, tag: 'exit', seq, exitReason: reason }],
  };
}

/** Emits a cancel for each pending stop/target that `which` selects; they move to recentlyCanceled. */
function cancelProtective(s: SymbolState, intents: OrderIntent[], which: (p: PendingOrder) => boolean): SymbolState {
  const cancel = s.pending.filter((p) => (p.tag === 'stop' || p.tag === 'target') && which(p));
  if (cancel.length === 0) return s;
  for (const p of cancel) {
    intents.push({ tag: 'cancel', side: 'sell', type: p.tag === 'stop' ? 'stop_market' : 'limit', qty: 0, reason: `cancel ${p.tag}`, clientOrderId: cancelRequestId(p.clientOrderId), cancelClientOrderId: p.clientOrderId });
  }
  const ids = new Set(cancel.map((p) => p.clientOrderId));
  return {
    ...s,
    pending: s.pending.filter((p) => !ids.has(p.clientOrderId)),
    recentlyCanceled: [...(s.recentlyCanceled ?? []), ...cancel].slice(-RECENTLY_CANCELED_KEPT),
  };
}

function protectedOf(p: PositionState): ProtectedPosition {
  const out: ProtectedPosition = { side: 'long', entryPrice: p.entryPrice, stopPrice: p.initialStopPrice, bestPrice: p.bestPrice };
  if (p.targetPrice !== null) out.takeProfitPrice = p.targetPrice;
  if (p.trailingStopPrice !== null) out.trailingStopPrice = p.trailingStopPrice;
  return out;
}

function trailStop(s: SymbolState, input: DecisionInput, cfg: EngineConfig, ctx: EngineContext, seq: number, intents: OrderIntent[]): { state: SymbolState; moved: boolean; exited: boolean } {
  const p = s.position as PositionState;
  const next = updateTrailingStop(protectedOf(p), input.candle, trailingConfig(cfg, p.trailing), featureAtr(input.features));
  let pos: PositionState = { ...p, bestPrice: next.bestPrice, trailingStopPrice: next.trailingStopPrice ?? null };
  let state: SymbolState = { ...s, position: pos };
  const stop = effectiveStop(next);
  // No stop resting (canceled behind our back, or never placed): put one back.
  const missing = p.stopOrderId === null;
  const current = p.stopPrice ?? -Infinity;
  if (!missing && (stop.reason !== 'trailing_stop' || !(stop.price > current * (1 + cfg.trailReplaceMinPct)))) return { state, moved: false, exited: false };
  if (stop.price >= input.candle.close) {
    // The exchange would refuse a sell stop at or above the market (it would trigger at once).
    return { state: withExit(state, intents, ctx, seq, 'ex', stop.reason, input.candle.close), moved: false, exited: true };
  }
  state = cancelProtective(state, intents, (o) => o.tag === 'stop');
  const id = clientOrderId(ctx.workflowId, seq, 'st');
  intents.push({ tag: 'stop', side: 'sell', type: 'stop_market', qty: pos.qty, stopPrice: stop.price, reason: stop.reason, clientOrderId: id });
  pos = { ...pos, stopPrice: stop.price, stopOrderId: id };
  return { state: { ...state, position: pos, pending: [...state.pending, { clientOrderId: id, tag: 'stop', seq, exitReason: stop.reason }] }, moved: true, exited: false };
}

// --- fills --------------------------------------------------------------------------------------

export interface ApplyFillResult {
  state: SymbolState;
  closed?: ClosedTrade;
  intents: OrderIntent[];
}

/** The pending order a fill belongs to, or undefined when the fill is not (or no longer) ours to apply. */
function orderOfFill(state: SymbolState, fill: EngineFill, ctx: EngineContext): PendingOrder | undefined {
  const pending = state.pending.find((p) => p.clientOrderId === fill.clientOrderId);
  if (pending) return pending;
  if (!state.position || fill.side !== 'sell') return undefined;
  // Only an order placed for this position (same or later seq than its entry) may close it.
  const entrySeq = parseClientOrderId(state.position.entryOrderId)?.seq ?? 0;
  const canceled = (state.recentlyCanceled ?? []).find((p) => p.clientOrderId === fill.clientOrderId && p.seq >= entrySeq);
  if (canceled) return canceled;
  // emergencyIntents cannot record its order (it returns intents only); its id is derived from the current seq.
  if (fill.clientOrderId === clientOrderId(ctx.workflowId, state.seq, 'em')) return { clientOrderId: fill.clientOrderId, tag: 'exit', seq: state.seq, exitReason: 'emergency' };
  return undefined;
}

/**
 * Applies one fill. Idempotent: a fill of an order that is no longer pending (already applied, or
 * not ours) changes nothing, so the caller may hand in the same fill twice (fills are looked up
 * from a time cursor, inclusive).
 */
export function applyFill(state: SymbolState, fill: EngineFill, cfg: EngineConfig, ctx: EngineContext): ApplyFillResult {
  const order = orderOfFill(state, fill, ctx);
  const unchanged: ApplyFillResult = { state, intents: [] };
  if (!order || !(fill.qty > 0) || !(fill.price > 0)) return unchanged;
  const intents: OrderIntent[] = [];

  if (order.tag === 'entry') {
    if (fill.side !== 'buy' || state.position) return unchanged;
    const levels = entryLevels(fill.price, order.atr, order.plan, cfg);
    const stopId = clientOrderId(ctx.workflowId, order.seq, 'st');
    const targetId = levels.takeProfitPrice === null ? null : clientOrderId(ctx.workflowId, order.seq, 'tp');
    intents.push({ tag: 'stop', side: 'sell', type: 'stop_market', qty: fill.qty, stopPrice: levels.stopPrice, reason: 'stop_loss', clientOrderId: stopId });
    if (targetId !== null) intents.push({ tag: 'target', side: 'sell', type: 'limit', qty: fill.qty, price: levels.takeProfitPrice as number, reason: 'take_profit', clientOrderId: targetId });
    const position: PositionState = {
      qty: fill.qty,
      entryPrice: fill.price,
      entryTime: fill.time,
      entryFee: fill.fee,
      entryOrderId: fill.clientOrderId,
      initialStopPrice: levels.stopPrice,
      stopPrice: levels.stopPrice,
      targetPrice: levels.takeProfitPrice,
      trailingStopPrice: null,
      bestPrice: fill.price,
      stopOrderId: stopId,
      targetOrderId: targetId,
    };
    if (order.plan?.trailing) position.trailing = order.plan.trailing;
    if (order.plan?.tag !== undefined) position.tag = order.plan.tag;
    if (order.strategy) position.strategy = order.strategy;
    const pending: PendingOrder[] = [
      ...state.pending.filter((p) => p.clientOrderId !== fill.clientOrderId),
      { clientOrderId: stopId, tag: 'stop' as const, seq: order.seq, exitReason: 'stop_loss' as const },
    ];
    if (targetId !== null) pending.push({ clientOrderId: targetId, tag: 'target' as const, seq: order.seq, exitReason: 'take_profit' as const });
    return { state: { ...state, position, pending, feesPaid: state.feesPaid + fill.fee }, intents };
  }

  // A sell: it closes the position (orders fill whole; every exit is for the whole position).
  const p = state.position;
  if (!p || fill.side !== 'sell') return unchanged;
  const reason: ExitReason = order.exitReason ?? (order.tag === 'target' ? 'take_profit' : order.tag === 'stop' ? 'stop_loss' : 'signal');
  const qty = Math.min(fill.qty, p.qty);
  const entryFee = p.entryFee * (qty / p.qty);
  const pnl = (fill.price - p.entryPrice) * qty - entryFee - fill.fee;
  const closed: ClosedTrade = {
    symbol: state.symbol,
    side: 'long',
    qty,
    entryTime: p.entryTime,
    entryPrice: p.entryPrice,
    exitTime: fill.time,
    exitPrice: fill.price,
    fees: entryFee + fill.fee,
    pnl,
    exitReason: reason,
    entryOrderId: p.entryOrderId,
    exitOrderId: fill.clientOrderId,
    stopPrice: p.initialStopPrice ?? null,
    targetPrice: p.targetPrice ?? null,
  };
  if (p.tag !== undefined) closed.entryTag = p.tag;
  if (p.strategy) closed.strategy = p.strategy;
  let stopOuts = state.stopOuts ?? NO_STOP_OUTS;
  if ((reason === 'stop_loss' || reason === 'trailing_stop') && isStopOut({ side: 'long', entryPrice: p.entryPrice }, { reason, price: fill.price })) {
    const last = stopOuts.recentStopOutBars[stopOuts.recentStopOutBars.length - 1] ?? 0;
    // The candle the fill happened in: a paper fill is stamped with the candle's close.
    const bar = Math.max(last, Math.floor((fill.time - 1) / cfg.timeframeMs));
    stopOuts = recordStopOut(stopOuts, bar, cfg.risk);
  }
  let next: SymbolState = {
    ...state,
    position: null,
    stopOuts,
    realizedPnl: state.realizedPnl + pnl,
    feesPaid: state.feesPaid + fill.fee,
    tradesClosed: state.tradesClosed + 1,
    pending: state.pending.filter((o) => o.clientOrderId !== fill.clientOrderId),
    recentlyCanceled: (state.recentlyCanceled ?? []).filter((o) => o.clientOrderId !== fill.clientOrderId),
  };
  // The sibling (target after a stop, stop after a target, both after a market exit) goes.
  next = cancelProtective(next, intents, () => true);
  return { state: next, closed, intents };
}

/**
 * An order the exchange refused (permanent error: below minimum, stop already through the market,
 * unfunded). The order is forgotten; a refused stop leaves the position unprotected, so it is
 * closed at market instead (reason: the stop's own).
 */
export function applyRejection(state: SymbolState, rejection: OrderRejection, cfg: EngineConfig, ctx: EngineContext): { state: SymbolState; intents: OrderIntent[] } {
  const order = state.pending.find((p) => p.clientOrderId === rejection.clientOrderId);
  if (!order) return { state, intents: [] };
  const intents: OrderIntent[] = [];
  let s: SymbolState = { ...state, pending: state.pending.filter((p) => p !== order) };
  const p = s.position;
  if (order.tag === 'stop' && p) {
    s = { ...s, position: { ...p, stopOrderId: null, stopPrice: null } };
    s = withExit(s, intents, ctx, order.seq, 'sx', order.exitReason ?? 'stop_loss', s.lastClose ?? undefined);
  } else if (order.tag === 'target' && p) {
    s = { ...s, position: { ...p, targetOrderId: null, targetPrice: null } };
  }
  void cfg;
  return { state: s, intents };
}

/**
 * What the exchange said about an order (executeIntents' `orders`). An order of ours that ended
 * without a fill (canceled by someone else, expired, rejected after acceptance) is forgotten; a
 * stop that went that way is put back by the next decision (see trailStop).
 */
export function applyOrderStatus(state: SymbolState, update: { clientOrderId: string; status: string }): SymbolState {
  if (update.status !== 'canceled' && update.status !== 'expired' && update.status !== 'rejected') return state;
  const order = state.pending.find((p) => p.clientOrderId === update.clientOrderId);
  if (!order) return state;
  let s: SymbolState = { ...state, pending: state.pending.filter((p) => p !== order) };
  const p = s.position;
  if (p && order.tag === 'stop' && p.stopOrderId === order.clientOrderId) s = { ...s, position: { ...p, stopOrderId: null } };
  if (p && order.tag === 'target' && p.targetOrderId === order.clientOrderId) s = { ...s, position: { ...p, targetOrderId: null } };
  return s;
}

// --- emergency ----------------------------------------------------------------------------------

/**
 * Cancel every working order, then sell the position at market. Returns intents only: the exit
 * fill is recognised by its id (derived from the current decision seq). Set the status to
 * `halted` with setStatus afterwards.
 */
export function emergencyIntents(state: SymbolState, ctx: EngineContext): OrderIntent[] {
  const intents: OrderIntent[] = [];
  for (const p of state.pending) {
    if (p.tag === 'exit') continue; // an exit in flight is already doing the job
    const type = p.tag === 'stop' ? 'stop_market' : p.tag === 'target' ? 'limit' : 'market';
    intents.push({ tag: 'cancel', side: p.tag === 'entry' ? 'buy' : 'sell', type, qty: 0, reason: 'emergency close', clientOrderId: cancelRequestId(p.clientOrderId), cancelClientOrderId: p.clientOrderId });
  }
  const pos = state.position;
  if (pos && !state.pending.some((p) => p.tag === 'exit')) {
    const intent: OrderIntent = { tag: 'exit', side: 'sell', type: 'market', qty: pos.qty, reason: 'emergency', clientOrderId: clientOrderId(ctx.workflowId, state.seq, 'em') };
    if (state.lastClose !== null) intent.price = state.lastClose;
    intents.push(intent);
  }
  return intents;
}

/** Client order ids the engine is waiting on (fills to look for). */
export function watchedOrderIds(state: SymbolState): string[] {
  return [...state.pending, ...(state.recentlyCanceled ?? [])].map((p) => p.clientOrderId);
}

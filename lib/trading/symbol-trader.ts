import { circuitBreakerOpenAlert, orderRejectedAlert, strategyChangedAlert, strategyFailedAlert, strategyRecoveredAlert, tradeClosedAlert, tradeOpenedAlert, type Alert } from '../alerts';
import { parseClientOrderId } from '../engine/ids';
import { builtinParams, emergencyIntents, initialSymbolState, positionForStrategy, setStatus, type EngineConfig, type EngineContext, type OrderIntent, type PortfolioView, type PreparedCandle, type StepCursor, type StepOutcome, type SymbolState } from '../engine';
import type { Log } from '../log';
import { MessageOrigin, type DecisionReport, type EmergencyCloseResult, type ExchangeBreakerView, type SymbolStateView, type TradingStatus } from '../contracts/trading';
import type { ActiveStrategy, PendingStrategy, SymbolTraderCarried, SymbolTraderInput, SymbolTraderResult } from '../contracts/workflows';
import { isBuiltinStrategy } from '../strategy/builtins';
import { identityLabel, identityName, sameIdentity } from '../strategy/run';
import type { PrepareArgs } from '../contracts/activities';
import { continueAsNewDue, type RunHistory } from './continue-as-new';

/**
 * One symbol's trader without Temporal: everything SymbolTraderWorkflow (workflows/symbol-trader.ts)
 * knows and decides besides waiting and calling activities. It holds the engine state and what
 * the workflow keeps beside it (candle cursor, decision count, model version, a reload asked
 * for, the exchange's breaker, the account view), answers the state query, writes the Temporal
 * UI's current details, validates and applies status changes, says how long to wait for the next
 * candle, which alerts a candle step raises, and what a new run carries over.
 *
 * Pure and synchronous, so it runs in the workflow sandbox and in a unit test alike; the shell
 * calls it in the same order whether or not the history is being replayed, which keeps its
 * commands deterministic. The candle step itself is lib/engine's runCandleStep, which the shell
 * calls with this trader's state and cursor.
 *
 * Metrics: the candle read writes what it sees (regime, model signal, fills, trades); the decision,
 * taken in workflow code, rides to the metrics in the arguments of the next candle read
 * (`decided`), so measuring it costs no history event.
 */

type Mode = SymbolTraderInput['mode'];

/** What the candle read asks for: the prepareCandle activity's arguments (lib/contracts). */
export type CandleReadRequest = PrepareArgs;

/** What the candle read returns: the engine's prepared candle and what the trader watches beside it. */
export interface CandleRead extends PreparedCandle {
  breaker?: ExchangeBreakerView | null;
  /** The account as the ledger shows it (live and paper), for the entry gates. */
  portfolio?: PortfolioView;
  modelVersion?: string | null;
  /** Candle close (replay: `dueAt`) to the moment the decision's inputs were ready, ms. */
  latencyMs?: number;
  /** The worker's clock when the read returned (epoch ms); absent in reads recorded before it existed. */
  readAt?: number;
}

/** An order batch: the executeIntents activity's arguments. */
export interface OrderBatch {
  workflowId: string;
  symbol: string;
  mode: Mode;
  intents: OrderIntent[];
  /** Replay: the close of the candle the orders belong to (the simulated exchange's clock); live: null. */
  asOf: number | null;
  /** The engine before these orders: their follow-ups (an entry's stop and target) go out in the same activity. */
  engine?: { state: SymbolState; cfg: EngineConfig };
}

/** An emergency close under way: what it sends, and the outcome lib/engine's `settle` fills in. */
export interface EmergencyClose {
  intents: OrderIntent[];
  canceledOrders: number;
  outcome: Pick<StepOutcome, 'state' | 'closed' | 'rejected' | 'sent'>;
}

// Live: how soon to ask again for a candle the exchange has not published yet.
const LATE_CANDLE_RETRY_MS = 5_000;

export class SymbolTrader {
  /** The engine's state: position, protective orders, stop-out counters, decision sequence, status. */
  state: SymbolState;
  cursor: StepCursor;
  readonly ctx: EngineContext;
  private decisions: number;
  private modelVersion: string | null;
  /** A reload asked for and not yet carried by a candle read; carried across continue-as-new. */
  private pendingReload: { version?: string } | null;
  private reloadInRead: { version?: string } | null = null;
  /** The last decision until a candle read has carried it to the metrics; carried across continue-as-new. */
  private pendingReport: DecisionReport | null;
  private reportInRead: DecisionReport | null = null;
  private stepDueAt: number | undefined;
  /** The strategy the candle reads ask for; carried across continue-as-new. */
  private strategy: ActiveStrategy;
  /** A switch asked for (`trader strategy set`), taken up by the next candle step. */
  private pendingStrategy: PendingStrategy | null;
  /** The failure being alerted on, so one incident is one alert. */
  private strategyIncident: string | null;
  /** A switch taken up by the step under way, announced when it ends. */
  private switched: { from: string; to: string; by: string; reason?: string } | null = null;
  private readLatencyMs: number | undefined;
  private breaker: ExchangeBreakerView | null = null;
  private account: PortfolioView | undefined;
  /** Open time of the candle the step under way read; its orders execute at its close in replay. */
  private stepCandleTime: number | null = null;
  /** When the last candle read returned, by the worker's clock (recorded in history with the read). */
  private readAt: number | null = null;
  private late = false;
  /** The strategy's error on this step's candle (null: it answered; undefined: no answer read). */
  private stepSignalError: string | null | undefined;
  private done = false;
  private publishedStatus: TradingStatus | null = null;

  constructor(
    private readonly input: SymbolTraderInput,
    readonly workflowId: string,
    private readonly log: Log,
  ) {
    const c: SymbolTraderCarried = input.carried ?? { state: initialSymbolState(input.engine), cursor: { after: null, fillsSince: 0 }, decisions: 0, modelVersion: null };
    this.state = c.state;
    this.cursor = c.cursor;
    this.decisions = c.decisions;
    this.modelVersion = c.modelVersion;
    this.pendingReload = c.pendingReload ?? null;
    this.pendingReport = c.pendingReport ?? null;
    const engine = input.engine;
    // A built-in carries the parameters its config held before strategies had their own (hybrid's rule, the model thresholds).
    const params = isBuiltinStrategy(engine.strategy) ? builtinParams(engine) : engine.strategyParams;
    this.strategy = c.strategy ?? { ref: engine.strategy, ...(params ? { params } : {}), revision: 0 };
    this.pendingStrategy = c.pendingStrategy ?? null;
    this.strategyIncident = c.strategyIncident ?? null;
    this.ctx = { workflowId };
  }

  get status(): TradingStatus {
    return this.state.tradingStatus;
  }

  // --- messages ---------------------------------------------------------------------------------

  /**
   * pause / resume / reduceOnly (and halted, after an emergency close). A signal cannot be
   * refused, so one without a valid origin is logged and ignored. True when the status changed.
   */
  changeStatus(to: TradingStatus, origin: MessageOrigin): boolean {
    if (!MessageOrigin.safeParse(origin).success) {
      this.log.warn({ symbol: this.input.symbol, to, origin: String(JSON.stringify(origin)).slice(0, 200) }, 'ignored a status change without a valid origin { by: "<who>" }');
      return false;
    }
    if (this.state.tradingStatus === to) return false;
    this.log.info({ symbol: this.input.symbol, from: this.state.tradingStatus, to, by: origin.by, reason: origin.reason }, 'trading status changed');
    this.state = setStatus(this.state, to, `${origin.reason ?? 'requested'} by ${origin.by}`);
    return true;
  }

  /**
   * Switch to another strategy (or version, or parameters) from the next candle. The portfolio
   * checked it on a worker first (it loads, its parameters are valid), so this only refuses a
   * malformed message. True when accepted.
   */
  requestStrategy(message: { ref?: unknown; params?: unknown; label?: unknown; by?: unknown; reason?: unknown } | undefined): boolean {
    const ref = message?.ref;
    const params = message?.params;
    if (typeof ref !== 'string' || ref.length === 0 || ref.length > 500 || (params !== undefined && (params === null || typeof params !== 'object' || Array.isArray(params)))) {
      this.log.warn({ symbol: this.input.symbol, ref: String(ref).slice(0, 100) }, 'ignored a strategy switch that is not { ref, params?: object }');
      return false;
    }
    if (!MessageOrigin.safeParse(message).success) {
      this.log.warn({ symbol: this.input.symbol, ref }, 'ignored a strategy switch without a valid origin { by: "<who>" }');
      return false;
    }
    const by = String(message?.by);
    const reason = typeof message?.reason === 'string' ? message.reason : undefined;
    const current = this.pendingStrategy ?? this.strategy;
    const label = typeof message?.label === 'string' ? message.label.slice(0, 100) : undefined;
    this.pendingStrategy = { ref, ...(params ? { params: params as Record<string, unknown> } : {}), revision: current.revision + 1, by, ...(reason !== undefined ? { reason } : {}), ...(label !== undefined ? { label } : {}) };
    this.log.info({ symbol: this.input.symbol, ref, by, reason }, 'strategy switch asked for: from the next candle');
    return true;
  }

  /** The strategy the next reads ask for (a pending switch taken up). */
  private takeUpStrategySwitch(): void {
    const next = this.pendingStrategy;
    if (!next) return;
    const { by, reason, label, ...active } = next;
    this.switched = { from: this.strategyLabel(), to: label ?? active.ref, by, ...(reason !== undefined ? { reason } : {}) };
    this.strategy = active;
    this.pendingStrategy = null;
    this.strategyIncident = null;
  }

  private strategyLabel(): string {
    const id = this.strategy.identity;
    return id ? identityName(id) : this.strategy.ref;
  }

  /** The next candle read asks for this model version (or the registry's champion). */
  requestReload(message: { version?: unknown; by?: unknown } | undefined): void {
    const version = message?.version;
    if (version !== undefined && typeof version !== 'string') {
      this.log.warn({ symbol: this.input.symbol, version: String(version).slice(0, 100) }, 'ignored a model reload whose version is not text');
      return;
    }
    this.pendingReload = version === undefined ? {} : { version };
  }

  /**
   * The TradingStatus search attribute to upsert, once per change (null when it is already
   * published). The first call of a run returns the status: each run publishes it once.
   */
  statusToPublish(): TradingStatus | null {
    if (this.publishedStatus === this.status) return null;
    this.publishedStatus = this.status;
    return this.status;
  }

  // --- the candle step ----------------------------------------------------------------------------

  /**
   * How long to sleep before the next candle step (null: step at once). `workflowNow` is the
   * workflow's clock, which stands still for a whole workflow task at the time the server started
   * it: in the task that ran the candle read (a local activity, inside the task) that is before
   * the task reached the worker and before the read, and a timer computed from it fires late by
   * both. So the later of it and the time the read returned (by the worker's clock, recorded in
   * history with the read, so a replay computes the same timer) is taken as now. After a regular
   * activity (orders) a new task has started and its clock is the later one.
   */
  msToNextCandle(workflowNow: number): number | null {
    const { mode, speed, timeframeMs, candleDelayMs } = this.input;
    if (mode === 'replay') return speed !== undefined && speed !== 'max' ? Math.max(1, Math.round(timeframeMs / speed)) : null;
    const now = this.readAt !== null && this.readAt > workflowNow ? this.readAt : workflowNow;
    // Before the first read, the candle that closed last (at once, once its delay has passed).
    const due = this.nextCandleDueAt() ?? Math.floor(now / timeframeMs) * timeframeMs + candleDelayMs;
    return due > now ? due - now : null;
  }

  /**
   * Live and paper: the close of the candle after the last one read, plus the delay exchanges
   * need to publish it. Null before the first read, and in replay (its clock is the candles').
   */
  private nextCandleDueAt(): number | null {
    const { mode, timeframeMs, candleDelayMs } = this.input;
    if (mode === 'replay' || this.cursor.after === null) return null;
    return this.cursor.after + 2 * timeframeMs + candleDelayMs;
  }

  /**
   * Live: the exchange had not published the closed candle yet; ask again after this long rather
   * than spinning (the due time is already past). Null when the last step read a candle, and in replay.
   */
  msToRetryLateCandle(): number | null {
    return this.late && this.input.mode !== 'replay' ? Math.max(LATE_CANDLE_RETRY_MS, this.input.candleDelayMs) : null;
  }

  /** A candle step begins (workflow time): a replay measures its decision latency from here. */
  stepBegins(now: number): void {
    this.stepDueAt = now;
  }

  candleRead(cursor: StepCursor, state: SymbolState = this.state): CandleReadRequest {
    this.stepCandleTime = null;
    this.takeUpStrategySwitch();
    this.reloadInRead = this.pendingReload;
    this.reportInRead = this.pendingReport;
    return {
      workflowId: this.workflowId,
      symbol: this.input.symbol,
      timeframe: this.input.timeframe,
      mode: this.input.mode,
      after: cursor.after,
      fillsSince: cursor.fillsSince,
      modelVersion: this.modelVersion,
      reloadModel: this.pendingReload !== null,
      requestedModelVersion: this.pendingReload?.version,
      ...(this.stepDueAt !== undefined ? { dueAt: this.stepDueAt } : {}),
      ...(this.pendingReport ? { decided: this.pendingReport } : {}),
      strategy: { ref: this.strategy.ref, ...(this.strategy.params ? { params: this.strategy.params } : {}), revision: this.strategy.revision, position: positionForStrategy(state) },
    };
  }

  /** Takes in what the candle read saw besides the candle; returns an alert when the exchange's breaker just opened. */
  candleReadDone(read: CandleRead): Alert | null {
    // A reload asked for while the read ran is newer than the one it carried: keep it for the next.
    if (this.pendingReload === this.reloadInRead) this.pendingReload = null;
    this.reloadInRead = null;
    // The read wrote the decision it carried.
    if (this.pendingReport === this.reportInRead) this.pendingReport = null;
    this.reportInRead = null;
    this.readLatencyMs = read.latencyMs;
    if (read.modelVersion !== undefined) this.modelVersion = read.modelVersion;
    if (read.readAt !== undefined) this.readAt = read.readAt;
    this.account = read.portfolio;
    this.stepCandleTime = read.input?.candle.timestamp ?? null;
    const id = read.input?.signal?.strategy;
    if (id && !sameIdentity(this.strategy.identity, id)) this.strategy = { ...this.strategy, identity: { name: id.name, version: id.version, source: id.source, params: id.params } };
    this.stepSignalError = read.input?.signal ? (read.input.signal.error ?? null) : undefined;
    if (read.breaker === undefined) return null;
    const was = this.breaker;
    const b = read.breaker;
    this.breaker = b;
    if (!b || b.state === 'closed' || was?.state === b.state || this.input.mode === 'replay') return null;
    return circuitBreakerOpenAlert({ exchange: this.input.exchange, operation: `breaker ${b.state} after ${b.consecutiveFailures} failures`, error: b.lastFailure ?? 'unknown' });
  }

  /** The account view for the entry gate, as the last candle read saw it. */
  accountView(): PortfolioView | undefined {
    return this.account;
  }

  /**
   * The executeIntents arguments for `intents`. With the engine's `state` (before they are sent),
   * the activity also sends what the engine asks for on their outcome (lib/trading/candle-io.ts).
   */
  orderBatch(intents: OrderIntent[], state?: SymbolState): OrderBatch {
    const candleTime = this.stepCandleTime ?? this.state.lastCandleTime;
    const asOf = this.input.mode === 'replay' && candleTime !== null ? candleTime + this.input.timeframeMs : null;
    const batch: OrderBatch = { workflowId: this.workflowId, symbol: this.input.symbol, mode: this.input.mode, intents, asOf };
    if (state) batch.engine = { state, cfg: this.input.engine };
    return batch;
  }

  /** The activity's summary in the Temporal UI: why, and what is sent. */
  orderSummary(intents: OrderIntent[], why: string): string {
    return `${why}: ${intents.map((i) => `${i.tag} ${i.side} ${i.qty}`).join(', ')}`.slice(0, 200);
  }

  /**
   * Takes in a finished candle step; returns the alerts it raises for the operators (none in
   * replay). A status change that arrived while the step ran (a pause while orders were being
   * placed) is kept: the engine never changes the status, so the outcome carries the status the
   * step started with. `keepsStatusChange` is asked only then; false replays workflows that ran
   * before this was fixed, where the outcome overwrote the change (while the TradingStatus search
   * attribute went on showing it, so nothing is published for it here either). An order the
   * exchange refused is alerted; `alertsRejections` is asked only then, false for workflows that
   * ran before (they sent no alert for it).
   */
  stepped(out: StepOutcome, keepsStatusChange: () => boolean = () => true, alertsRejections: () => boolean = () => true): Alert[] {
    const before = this.state;
    const changedDuringStep = before.tradingStatus !== out.state.tradingStatus || before.statusReason !== out.state.statusReason;
    if (changedDuringStep && keepsStatusChange()) {
      this.state = { ...out.state, tradingStatus: before.tradingStatus, statusReason: before.statusReason };
    } else {
      this.state = out.state;
      if (changedDuringStep) this.publishedStatus = out.state.tradingStatus;
    }
    this.cursor = out.cursor;
    this.stepCandleTime = null;
    if (out.decision) {
      this.decisions++;
      const d = out.decision;
      this.pendingReport = { seq: d.seq, candleTime: d.candleTime, closeTime: d.candleTime + this.input.timeframeMs, action: d.action, reason: d.reason, price: d.price, ordersSent: out.sent, latencyMs: this.readLatencyMs };
      if (this.strategy.identity) this.pendingReport.strategy = this.strategy.identity;
    }
    this.late = !out.done && !out.candle;
    this.done = out.done;
    const symbol = this.input.symbol;
    for (const t of out.closed) this.log.info({ symbol, pnl: t.pnl, exitReason: t.exitReason }, 'trade closed');
    if (out.problems.length > 0) this.log.warn({ symbol, problems: out.problems }, 'candle problems');
    const strategyAlerts = this.strategyAlerts();
    if (this.input.mode === 'replay') return [];
    const mode = this.input.mode;
    const p = out.state.position;
    const opened = p && p.entryOrderId !== before.position?.entryOrderId ? p : null;
    const rejected = out.rejected.length > 0 && alertsRejections() ? out.rejected : [];
    return [
      ...strategyAlerts,
      ...rejected.map((r) => orderRejectedAlert({ symbol, clientOrderId: r.clientOrderId, tag: parseClientOrderId(r.clientOrderId)?.tag, reason: r.reason, mode })),
      ...out.closed.map((t) => tradeClosedAlert({ symbol, qty: t.qty, entryPrice: t.entryPrice, exitPrice: t.exitPrice, pnl: t.pnl, reason: t.exitReason, clientOrderId: t.exitOrderId, mode })),
      ...(opened ? [tradeOpenedAlert({ symbol, qty: opened.qty, price: opened.entryPrice, stopPrice: opened.stopPrice, targetPrice: opened.targetPrice, clientOrderId: opened.entryOrderId, mode })] : []),
    ];
  }

  /** A switch taken up, a strategy failing (once per incident) or answering again. Logged always; alerted except in replay. */
  private strategyAlerts(): Alert[] {
    const symbol = this.input.symbol;
    const mode = this.input.mode;
    const out: Alert[] = [];
    if (this.switched) {
      this.log.info({ symbol, ...this.switched }, 'strategy switched');
      out.push(strategyChangedAlert({ symbol, ...this.switched }));
      this.switched = null;
    }
    const error = this.stepSignalError;
    this.stepSignalError = undefined;
    if (error === undefined) return out;
    const label = this.strategyLabel();
    if (error !== null && this.strategyIncident === null) {
      this.strategyIncident = error;
      this.log.warn({ symbol, strategy: label, error }, 'strategy failed: no new entries on this symbol; protective exits continue');
      out.push(strategyFailedAlert({ symbol, strategy: label, error, mode }));
    } else if (error === null && this.strategyIncident !== null) {
      this.strategyIncident = null;
      this.log.info({ symbol, strategy: label }, 'strategy answers again');
      out.push(strategyRecoveredAlert({ symbol, strategy: label, mode }));
    }
    return out;
  }

  // --- emergency close ------------------------------------------------------------------------------

  /** Market exit of the open position and cancels of the resting orders, to send with `settle`. */
  emergencyClose(): EmergencyClose {
    const intents = emergencyIntents(this.state, this.ctx);
    return { intents, canceledOrders: intents.filter((i) => i.tag === 'cancel').length, outcome: { state: this.state, closed: [], rejected: [], sent: 0 } };
  }

  /** Takes in the settled close, halts the symbol, and says what was closed. */
  emergencyClosed(close: EmergencyClose, origin: MessageOrigin): EmergencyCloseResult {
    this.state = close.outcome.state;
    this.changeStatus('halted', { by: origin.by, reason: origin.reason ?? 'emergency close' });
    const symbol = this.input.symbol;
    for (const r of close.outcome.rejected) this.log.error({ symbol, clientOrderId: r.clientOrderId, reason: r.reason }, 'emergency exit refused by the exchange');
    return {
      symbol,
      closed: close.outcome.closed.map((t) => ({ symbol, qty: t.qty, entryPrice: t.entryPrice, exitPrice: t.exitPrice, pnl: t.pnl, clientOrderId: t.exitOrderId })),
      canceledOrders: close.canceledOrders,
      tradingStatus: this.status,
    };
  }

  // --- what operators see -------------------------------------------------------------------------

  view(): SymbolStateView {
    const { state: s, input } = this;
    const p = s.position;
    return {
      workflowId: this.workflowId,
      symbol: input.symbol,
      exchange: input.exchange,
      mode: input.mode,
      strategy: this.strategy.ref,
      ...(this.strategy.identity ? { strategyIdentity: identityLabel(this.strategy.identity) } : {}),
      ...(this.pendingStrategy ? { pendingStrategy: this.pendingStrategy.ref } : {}),
      tradingStatus: s.tradingStatus,
      statusReason: s.statusReason ?? undefined,
      position: p
        ? {
            symbol: input.symbol,
            side: 'long',
            qty: p.qty,
            entryPrice: p.entryPrice,
            entryTime: p.entryTime,
            stopPrice: p.stopPrice ?? null,
            targetPrice: p.targetPrice ?? null,
            markPrice: s.lastClose,
            unrealizedPnl: s.lastClose === null ? null : (s.lastClose - p.entryPrice) * p.qty,
          }
        : null,
      lastDecision: s.lastDecision ?? null,
      decisions: this.decisions,
      realizedPnl: s.realizedPnl,
      tradesClosed: s.tradesClosed,
      lastCandleTime: s.lastCandleTime,
      done: this.done,
      modelVersion: this.modelVersion,
      exchangeBreaker: this.breaker,
      timeframeMs: input.timeframeMs,
      replaySpeed: input.mode === 'replay' ? (input.speed ?? 'max') : null,
      nextCandleDueAt: this.nextCandleDueAt(),
    };
  }

  /** The Temporal UI's "current details" (markdown): the symbol at a glance. */
  details(): string {
    const v = this.view();
    const p = v.position;
    const pos = p ? `LONG ${p.qty} @ ${p.entryPrice} (stop ${p.stopPrice ?? '-'}, target ${p.targetPrice ?? '-'}, uPnL ${p.unrealizedPnl?.toFixed(2) ?? '-'})` : 'flat';
    const d = v.lastDecision ? `${v.lastDecision.action} (${v.lastDecision.reason}) at ${new Date(v.lastDecision.candleTime).toISOString()}` : 'none yet';
    return [
      `**${v.symbol}** on ${v.exchange}, ${v.mode}, strategy ${v.strategyIdentity ?? v.strategy}${v.pendingStrategy ? ` (switching to ${v.pendingStrategy} at the next candle)` : ''}${this.strategyIncident ? ` — FAILING: ${this.strategyIncident.slice(0, 120)}` : ''}`,
      `Status: **${v.tradingStatus}**${v.statusReason ? ` (${v.statusReason})` : ''}`,
      `Position: ${pos}`,
      `Last decision: ${d}`,
      `Realized PnL: ${v.realizedPnl.toFixed(2)} over ${v.tradesClosed} trades; ${v.decisions} decisions`,
    ].join('\n');
  }

  // --- runs -----------------------------------------------------------------------------------------

  shouldContinueAsNew(run: RunHistory): boolean {
    return continueAsNewDue(run, this.input.continueAsNewAfterEvents);
  }

  /** What the next run starts from. */
  carried(): SymbolTraderCarried {
    return {
      state: this.state,
      cursor: this.cursor,
      decisions: this.decisions,
      modelVersion: this.modelVersion,
      pendingReload: this.pendingReload,
      pendingReport: this.pendingReport,
      strategy: this.strategy,
      pendingStrategy: this.pendingStrategy,
      strategyIncident: this.strategyIncident,
    };
  }

  result(): SymbolTraderResult {
    return { symbol: this.input.symbol, decisions: this.decisions, realizedPnl: this.state.realizedPnl, tradesClosed: this.state.tradesClosed, reason: 'end_of_data' };
  }
}

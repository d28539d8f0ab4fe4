import { Context } from '@temporalio/activity';
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { WorkflowIdConflictPolicy } from '@temporalio/common';
import type { Logger } from '../../infra/logger';
import type { Ledger } from '../../ledger';
import type { EngineConfig, ExecutionReport, ModelSignal, OrderIntent, PortfolioView, PreparedCandle, SymbolState } from '../../lib/engine';
import type { Candle } from '../../lib/candles';
import { emergencyCloseUpdate, pauseSignal, reduceOnlySignal, resumeSignal } from '../../workflows/messages';
import { ExchangeKey, ModeKey, SymbolKey, TradingStatusKey } from '../../workflows/search-attributes';
import { executeIntents as executeCore, prepareCandle as prepareCore, type ReplayFeed, type TradeRecorder } from '../../lib/trading/candle-io';
import type { FeatureCache } from '../../lib/features/cache';
import { reconcile } from './reconcile';
import type { ExchangeAdapter } from '../../lib/exchange/types';
import { symbolWorkflowId, type DecisionReport, type EmergencyCloseResult, type EquitySnapshotRecord, type MessageOrigin } from '../../lib/contracts/trading';
import { timeframeToMs } from '../../lib/candles';
import type { LedgerTradeRecorder } from './recorder';
import { MeteredTradeRecorder } from './metered-recorder';
import type { TradingMetrics } from '../metrics/trading';
import { ExchangeError } from '../../lib/exchange/errors';
import { decAdd, toDecimalString } from '../../lib/decimal';
import type { SymbolTraderInput } from '../../lib/contracts/workflows';

const STATUS_SIGNALS = { active: resumeSignal, paused: pauseSignal, 'reduce-only': reduceOnlySignal } as const;

/**
 * The trading activities: thin Temporal wrappers over activities/trading/core.ts (the code the
 * backtester runs too) plus the portfolio's supervision calls. Everything here is idempotent:
 * a retry after a crash sees the same exchange and ledger state and does nothing twice.
 */

/** Where orders go and candles come from, for one process. */
export interface Venue {
  mode: 'paper' | 'live' | 'replay';
  exchangeId: string;
  /**
   * The adapter for `symbol`; replay: on the given clock (the close of the candle being
   * processed), live/paper: the wall clock (clock null).
   */
  adapter(clock: (() => number) | null, symbol?: string): ExchangeAdapter;
  /** Replay: every recorded candle of a series. */
  replayCandles?(symbol: string, timeframe: string): Candle[];
}

export type SignalSource = (symbol: string, features: number[], candle: Candle, opts: { version?: string | null; reload?: boolean }) => Promise<ModelSignal>;

export interface TradingDeps {
  log: Logger;
  ledger: Ledger;
  venue: Venue;
  features: FeatureCache;
  /** The recorder that writes orders and fills to the ledger for one workflow. */
  recorder(workflowId: string): LedgerTradeRecorder;
  signal?: SignalSource;
  initialCapital: number;
  /** The Temporal client the portfolio's supervision activities use (the worker's own, by default). */
  client?: Client;
  /** Metrics to InfluxDB (absent or off: nothing is measured). */
  metrics?: TradingMetrics;
}

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

function activityLog(deps: TradingDeps, extra: Record<string, unknown>): Logger {
  const info = Context.current().info;
  return deps.log.child({ workflowId: info.workflowExecution?.workflowId, runId: info.workflowExecution?.runId, activity: info.activityType, ...extra });
}

export function createTradingActivities(deps: TradingDeps) {
  const client = (): Client => deps.client ?? Context.current().client;
  const metrics = deps.metrics?.enabled ? deps.metrics : undefined;
  /** The ledger recorder, metered when metrics are on; `clock` stamps what has no time of its own. */
  const recorderFor = (workflowId: string, clock: () => number): TradeRecorder & { tradesClosed?: number } =>
    metrics ? new MeteredTradeRecorder(deps.recorder(workflowId), metrics, clock) : deps.recorder(workflowId);

  /**
   * The account from the ledger: cash (the starting capital plus what every fill paid or
   * received, fees included, one exact sum) plus the open positions marked at the venue's last 1m
   * close. Every symbol asks at its candle close, usually all at once: calls that arrive while one
   * is computing share its result instead of repeating the reads.
   */
  let inFlight: Promise<PortfolioSnapshot> | null = null;
  async function computeSnapshot(): Promise<PortfolioSnapshot> {
    const now = new Date();
    const dayStart = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate()));
    const exchange = deps.venue.exchangeId;
    const [pnl, positions, flow] = await Promise.all([deps.ledger.realizedPnl(dayStart), deps.ledger.openPositions(), deps.ledger.cashFlow(exchange)]);
    const open = positions.filter((p) => p.exchange === exchange);
    const marks = await Promise.all(
      open.map(async (p) => {
        const entry = Number(p.avgEntryPrice ?? 0);
        if (deps.venue.mode === 'replay') return entry;
        try {
          const [last] = await deps.venue.adapter(null, p.symbol).fetchCandles(p.symbol, '1m', undefined, 1);
          return last ? last.close : entry;
        } catch {
          // Marking at entry is the safe fallback: the drawdown check then sees realized losses only.
          return entry;
        }
      }),
    );
    const exposure = open.reduce((sum, p, i) => sum + marks[i] * Number(p.qty), 0);
    const cash = Number(decAdd(toDecimalString(deps.initialCapital), flow));
    const dailyPnl = Number(pnl.since);
    const equity = cash + exposure;
    return { equity, cash, openPositions: open.length, totalExposure: exposure, dayStartEquity: equity - dailyPnl, dailyPnl };
  }
  let inFlightSince = 0;
  function sharedSnapshot(): Promise<PortfolioSnapshot> {
    if (!inFlight) {
      inFlightSince = Date.now();
      inFlight = computeSnapshot().finally(() => {
        inFlight = null;
      });
    }
    return inFlight;
  }

  /**
   * The account's peak equity as this process last saw it, for the drawdown metric: the portfolio
   * workflow's own (durable) peak whenever it asks, higher equities seen in between.
   */
  let peakEquity = deps.initialCapital;
  function measureEquity(snap: PortfolioSnapshot, time: number, workflowPeak?: number | null): void {
    if (!metrics) return;
    peakEquity = workflowPeak !== undefined && workflowPeak !== null ? Math.max(workflowPeak, snap.equity) : Math.max(peakEquity, snap.equity);
    metrics.equity({ ...snap, peakEquity }, time);
  }

  /** After a trade closed: the account valued afresh (not a computation that began before the close committed). */
  async function measureEquityAfterTrade(log: Logger): Promise<void> {
    if (!metrics) return;
    const at = Date.now();
    try {
      measureEquity(await computeSnapshot(), at);
    } catch (err) {
      log.warn({ err }, 'could not value the account for the equity metric');
    }
  }

  async function portfolioSnapshot(args: { account: string; symbols: string[]; peakEquity?: number | null }): Promise<PortfolioSnapshot> {
    const pending = sharedSnapshot();
    // Stamped when the (possibly shared) valuation began reading the ledger, so that a point
    // stamped later than a trade's commit always includes that trade.
    const at = inFlightSince;
    const snap = await pending;
    measureEquity(snap, at, args.peakEquity);
    return snap;
  }

  return {
    async prepareCandle(args: PrepareArgs): Promise<PrepareResult> {
      // Built when something is logged: a child logger (bindings, redaction paths) every candle
      // was a measurable part of the read's CPU, and most candles log nothing.
      let childLog: Logger | undefined;
      const log = (): Logger => (childLog ??= activityLog(deps, { symbol: args.symbol }));
      if (args.decided) metrics?.decision(args.symbol, args.decided);
      let exchange: ExchangeAdapter;
      let replay: ReplayFeed | undefined;
      let clock: () => number = Date.now;
      if (deps.venue.mode === 'replay') {
        let now = 0;
        exchange = deps.venue.adapter(() => now, args.symbol);
        replay = { candles: (s, tf) => deps.venue.replayCandles!(s, tf), setNow: (ms) => void (now = Math.max(now, ms)) };
        clock = () => now;
      } else {
        exchange = deps.venue.adapter(null, args.symbol);
      }
      const signal = deps.signal;
      const recorder = recorderFor(args.workflowId, clock);
      const breakerView = (): PrepareResult['breaker'] => {
        const b = exchange.breakerState?.();
        return b ? { state: b.state, since: b.since, consecutiveFailures: b.consecutiveFailures, lastFailure: b.lastFailure } : null;
      };
      let res: PreparedCandle;
      try {
        res = await prepareCore(
          {
            exchange,
            features: deps.features,
            replay,
            recorder,
            signal: signal ? (symbol: string, features: number[], candle: Candle) => signal(symbol, features, candle, { version: args.reloadModel ? (args.requestedModelVersion ?? null) : args.modelVersion, reload: args.reloadModel }) : undefined,
          },
          { workflowId: args.workflowId, symbol: args.symbol, timeframe: args.timeframe, after: args.after, fillsSince: args.fillsSince },
        );
      } catch (err) {
        // Live: the exchange is unreachable (its retries spent, or our breaker open). Nothing is
        // read, so nothing is decided; the workflow sees the breaker and asks again a few seconds
        // later, as for a candle not yet published. (Failing the activity instead would hide the
        // breaker from the workflow, its alert and `trader status`, behind activity retries.)
        if (deps.venue.mode === 'replay' || !(err instanceof ExchangeError) || !err.retryable) throw err;
        const problem = `exchange unavailable, nothing decided: ${err.name}: ${err.message}`.slice(0, 500);
        log().warn({ error: problem }, 'candle read failed: the exchange is unavailable');
        return { done: false, fills: [], fillsSince: args.fillsSince, problems: [problem], breaker: breakerView(), modelVersion: args.modelVersion };
      }
      if (res.problems.length > 0) log().warn({ problems: res.problems }, 'candle problems: not trading on the affected candles');
      const breaker = breakerView();
      if (metrics && res.input) {
        await metrics.candle(args.workflowId, args.symbol, res.input.candle, timeframeToMs(args.timeframe), res.input.regime, res.input.model).catch((err: unknown) => log().warn({ err }, 'candle metrics failed'));
      }
      if (recorder.tradesClosed) await measureEquityAfterTrade(log());
      // When the decision's inputs are ready: it is taken at once, in the workflow, from this result.
      const latency = (): number | undefined => {
        if (!res.input) return undefined;
        const from = deps.venue.mode === 'replay' ? args.dueAt : res.input.candle.timestamp + timeframeToMs(args.timeframe);
        return from === undefined ? undefined : Math.max(0, Date.now() - from);
      };
      if (!res.input || deps.venue.mode === 'replay') {
        // Replay: the account view comes from the sleeves alone (as in the backtester), not from a
        // ledger that other symbols, replayed at their own pace, are writing ahead or behind.
        return { ...res, breaker, modelVersion: res.input?.model?.version ?? args.modelVersion, latencyMs: latency(), readAt: Date.now() };
      }
      const snap = await sharedSnapshot();
      const portfolio: PortfolioView = { ...snap, peakEquity: Math.max(snap.equity, deps.initialCapital) };
      return { ...res, breaker, portfolio, modelVersion: res.input.model?.version ?? args.modelVersion, latencyMs: latency(), readAt: Date.now() };
    },

    async executeIntents(args: ExecuteArgs): Promise<ExecutionReport> {
      const log = activityLog(deps, { symbol: args.symbol });
      const asOf = args.asOf;
      const exchange = deps.venue.adapter(asOf === null ? null : () => asOf, args.symbol);
      const recorder = recorderFor(args.workflowId, asOf === null ? Date.now : () => asOf);
      const engine = args.engine ? { ...args.engine, ctx: { workflowId: args.workflowId } } : undefined;
      const res = await executeCore({ exchange, recorder }, { symbol: args.symbol, intents: args.intents, engine });
      log.info({ intents: args.intents.map((i) => `${i.tag}:${i.side}:${i.qty}`), fills: res.fills.length, rejected: res.rejected.length }, 'orders executed');
      if (recorder.tradesClosed) await measureEquityAfterTrade(log);
      return res;
    },

    portfolioSnapshot,

    /** Writes one equity check to the ledger; idempotent per account and check time. */
    async recordEquitySnapshot(r: EquitySnapshotRecord): Promise<void> {
      const amount = (x: number) => toDecimalString(Math.max(0, x));
      await deps.ledger.snapshotEquity({
        account: r.account,
        ts: new Date(r.ts),
        equity: toDecimalString(r.equity),
        // Spot: cash and notionals are never below zero; a float sum may land a hair under it.
        cash: toDecimalString(Math.abs(r.cash) < 1e-9 ? 0 : r.cash),
        exposure: amount(r.exposure),
        peakEquity: amount(r.peakEquity),
        drawdown: toDecimalString(Math.min(1, Math.max(0, r.drawdown))),
      });
    },

    async startSymbolWorkflows(args: { workflows: SymbolTraderInput[]; taskQueue: string }): Promise<{ started: string[] }> {
      const c = client();
      const started: string[] = [];
      for (const input of args.workflows) {
        const opts = symbolTraderStartOptions(input, args.taskQueue);
        await c.workflow.start('symbolTraderWorkflow', { ...opts, workflowIdConflictPolicy: WorkflowIdConflictPolicy.USE_EXISTING });
        started.push(opts.workflowId);
      }
      return { started };
    },

    /**
     * Compares the ledger with the exchange for every symbol and reports differences (one audit
     * row each, see reconcile.ts); it never overwrites the ledger. Not in replay: there the
     * exchange's clock is each symbol's own candle, and asking it "now" would fill resting
     * orders against candles the workflow has not reached.
     */
    async reconcileAccount(args: { symbols: string[] }): Promise<{ ok: boolean; skipped?: string; differences: { symbol: string; kind: string; message: string }[] }> {
      const log = activityLog(deps, {});
      if (deps.venue.mode === 'replay') return { ok: true, skipped: 'replay', differences: [] };
      const differences: { symbol: string; kind: string; message: string }[] = [];
      for (const symbol of args.symbols) {
        const res = await reconcile(deps.ledger, deps.venue.adapter(null, symbol), [symbol], { ledgerExchange: deps.venue.exchangeId });
        differences.push(...res.differences.map((d) => ({ symbol: d.symbol, kind: d.kind, message: d.message })));
      }
      if (differences.length > 0) log.warn({ differences }, 'reconciliation found differences between the ledger and the exchange');
      return { ok: differences.length === 0, differences };
    },

    /**
     * The portfolio's status commands to its symbols, all at once: one signal per symbol from the
     * worker's client, in parallel. (SignalExternalWorkflowExecution commands from the workflow
     * go through the server's transfer queue one after another, each waking the portfolio again:
     * measured 0.2-0.4 s per symbol on the dev server, over 3 s for nine; see bench/kill-switch.ts.)
     * Idempotent: a symbol already in the status ignores the repeat. A symbol that is not running
     * is reported, not retried (the portfolio applies the status when it starts it).
     */
    async signalSymbols(args: { commands: { workflowId: string; status: 'active' | 'paused' | 'reduce-only'; origin: MessageOrigin }[] }): Promise<{ signaled: string[]; notRunning: string[] }> {
      const c = client();
      const settled = await Promise.allSettled(args.commands.map((cmd) => c.workflow.getHandle(cmd.workflowId).signal(STATUS_SIGNALS[cmd.status], cmd.origin)));
      const signaled: string[] = [];
      const notRunning: string[] = [];
      const failed: string[] = [];
      settled.forEach((r, i) => {
        const id = args.commands[i].workflowId;
        if (r.status === 'fulfilled') signaled.push(id);
        else if (r.reason instanceof WorkflowNotFoundError) notRunning.push(id);
        else failed.push(`${id}: ${(r.reason as Error)?.message ?? String(r.reason)}`);
      });
      // Retried as a whole: the symbols already signaled ignore the repeat.
      if (failed.length > 0) throw new Error(`could not signal ${failed.join('; ')}`);
      return { signaled, notRunning };
    },

    async emergencyCloseSymbols(args: { account: string; workflowIds: string[]; origin: MessageOrigin; alert?: string }): Promise<EmergencyCloseResult[]> {
      const log = activityLog(deps, {});
      const c = client();
      const results = await Promise.all(
        args.workflowIds.map(async (id): Promise<EmergencyCloseResult> => {
          try {
            return await c.workflow.getHandle(id).executeUpdate(emergencyCloseUpdate, { args: [args.origin] });
          } catch (err) {
            log.error({ err, workflowId: id }, 'emergency close of a symbol failed');
            return { symbol: id.split('/').slice(2).join('/'), closed: [], canceledOrders: 0, tradingStatus: 'halted', error: String((err as Error).message ?? err) } as EmergencyCloseResult;
          }
        }),
      );
      await deps.ledger.audit('killswitch.emergency_close', { by: args.origin.by, reason: args.origin.reason, results });
      return results;
    },
  };
}

/**
 * How a SymbolTraderWorkflow is started (id, search attributes, the summary and details the
 * Temporal UI shows): the portfolio's startSymbolWorkflows activity and the benchmarks share it.
 */
export function symbolTraderStartOptions(input: SymbolTraderInput, taskQueue: string) {
  return {
    workflowId: symbolWorkflowId(input.exchange, input.symbol),
    taskQueue,
    args: [input] as [SymbolTraderInput],
    typedSearchAttributes: [
      { key: SymbolKey, value: input.symbol },
      { key: ExchangeKey, value: input.exchange },
      { key: ModeKey, value: input.mode },
      { key: TradingStatusKey, value: 'active' },
    ],
    staticSummary: `${input.symbol} ${input.timeframe} on ${input.exchange} (${input.mode}, strategy ${input.engine.strategy})`,
    staticDetails: `Trades ${input.symbol} on ${input.exchange} in ${input.mode} mode with strategy \`${input.engine.strategy}\` on ${input.timeframe} candles. Sleeve ${input.engine.sleeveCapital}.`,
  };
}

export type TradingActivities = ReturnType<typeof createTradingActivities>;
export const TRADING_ACTIVITY_NAMES = ['prepareCandle', 'executeIntents', 'portfolioSnapshot', 'recordEquitySnapshot', 'startSymbolWorkflows', 'signalSymbols', 'emergencyCloseSymbols', 'reconcileAccount'] as const satisfies readonly (keyof TradingActivities)[];

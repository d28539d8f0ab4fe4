import {
  condition,
  continueAsNew,
  log,
  proxyActivities,
  proxyLocalActivities,
  setCurrentDetails,
  setDefaultQueryHandler,
  setHandler,
  sleep,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { ActivityOptions, LocalActivityOptions } from '@temporalio/common';
import {
  emergencyIntents,
  initialSymbolState,
  runCandleStep,
  setStatus,
  settle,
  type EngineConfig,
  type OrderIntent,
  type PortfolioView,
  type StepCursor,
  type StepOutcome,
  type StepPorts,
  type SymbolState,
} from '../lib/engine';
import type { TradingActivities } from '../activities/trading';
import type { AlertActivities } from '../activities/alerts';
import { circuitBreakerOpenAlert, tradeClosedAlert, tradeOpenedAlert } from '../lib/alerts';
import { emergencyCloseUpdate, lastDecisionQuery, pauseSignal, reduceOnlySignal, reloadModelSignal, resumeSignal, stateQuery } from './messages';
import { TradingStatusKey } from './search-attributes';
import type { SymbolTraderCarried, SymbolTraderInput, SymbolTraderResult } from '../lib/contracts/workflows';
import type { ClosedPositionView, DecisionView, EmergencyCloseResult, MessageOrigin, SymbolStateView, TradingStatus } from '../lib/contracts/trading';

/**
 * One durable trader per symbol (id `trader/<exchange>/<SYMBOL>`).
 *
 * Each candle: a durable timer to the candle's close (live: close + a small delay; replay: as
 * fast as the speed allows), then one LOCAL activity that reads the closed candle, its feature
 * vector, the regime, the model's signal and the fills of our resting orders (a marker, not three
 * events, and nothing large: a candle and ~40 numbers), then the PURE decision (lib/engine, the
 * same code the backtester runs) here in workflow code, then, only when there is something to
 * send, one REGULAR activity that places the orders (idempotent per client order id, looked up
 * before it is sent) and records them in the ledger. A candle without orders costs
 * about 6 history events, an entry about 18 (the entry, then its stop and target); measured
 * 6.59 events per candle on average by `npm run bench -- decision-latency`.
 *
 * State (position, protective orders, stop-out counters, decision sequence, status) lives in
 * the engine's SymbolState and carries across continue-as-new.
 */

const DEFAULT_CONTINUE_AFTER = 4000;

// Reading market data, features and model output: fast, read-only except the paper exchange's
// idempotent catch-up, safe to repeat. Local: a marker event instead of three (measured: bench
// decision-latency), and no task-queue round trip.
const prepareOptions: LocalActivityOptions = {
  startToCloseTimeout: '30 seconds',
  localRetryThreshold: '10 seconds',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '30 seconds' },
};

// Placing orders stays a regular activity: its scheduling is recorded before it runs, so after
// a crash the retry finds the order by client order id instead of placing a second one.
const executeOptions: ActivityOptions = {
  startToCloseTimeout: '60 seconds',
  scheduleToCloseTimeout: '10 minutes',
  retry: {
    initialInterval: '2 seconds',
    backoffCoefficient: 2,
    maximumInterval: '1 minute',
    // Permanent exchange errors come back as `rejected` results, not failures; these are bugs.
    nonRetryableErrorTypes: ['ConfigError', 'InvalidIntentError'],
  },
};

const { prepareCandle } = proxyLocalActivities<TradingActivities>(prepareOptions);
const { sendAlert } = proxyActivities<AlertActivities>({ startToCloseTimeout: '10 seconds', retry: { maximumAttempts: 3 } });
const { executeIntents } = proxyActivities<TradingActivities>(executeOptions);

export async function symbolTraderWorkflow(input: SymbolTraderInput): Promise<SymbolTraderResult> {
  const info = workflowInfo();
  const wfId = info.workflowId;
  const ctx = { workflowId: wfId };
  const c: SymbolTraderCarried = input.carried ?? {
    state: initialSymbolState(input.engine),
    cursor: { after: null, fillsSince: 0 },
    decisions: 0,
    modelVersion: null,
  };
  let state = c.state;
  let lastDecision: DecisionView | null = state.lastDecision ?? null;
  let breaker: SymbolStateView['exchangeBreaker'] = null;
  let late = false;
  let busy = false;
  let done = false;
  // A reload asked for and not yet passed to a candle read; carried across continue-as-new.
  let pendingReload: { version?: string } | null = c.pendingReload ?? null;

  const status = (): TradingStatus => state.tradingStatus;
  const publish = (): void => {
    upsertSearchAttributes([{ key: TradingStatusKey, value: status() }]);
    setCurrentDetails(details());
  };

  const view = (): SymbolStateView => ({
    workflowId: wfId,
    symbol: input.symbol,
    exchange: input.exchange,
    mode: input.mode,
    strategy: input.engine.strategy,
    tradingStatus: status(),
    statusReason: state.statusReason ?? undefined,
    position: state.position
      ? {
          symbol: input.symbol,
          side: 'long',
          qty: state.position.qty,
          entryPrice: state.position.entryPrice,
          entryTime: state.position.entryTime,
          stopPrice: state.position.stopPrice ?? null,
          targetPrice: state.position.targetPrice ?? null,
          markPrice: state.lastClose,
          unrealizedPnl: state.lastClose === null ? null : (state.lastClose - state.position.entryPrice) * state.position.qty,
        }
      : null,
    lastDecision,
    decisions: c.decisions,
    realizedPnl: state.realizedPnl,
    tradesClosed: state.tradesClosed,
    lastCandleTime: state.lastCandleTime,
    done,
    modelVersion: c.modelVersion,
    exchangeBreaker: breaker,
  });

  const details = (): string => {
    const v = view();
    const pos = v.position
      ? `LONG ${v.position.qty} @ ${v.position.entryPrice} (stop ${v.position.stopPrice ?? '-'}, target ${v.position.targetPrice ?? '-'}, uPnL ${v.position.unrealizedPnl?.toFixed(2) ?? '-'})`
      : 'flat';
    const d = v.lastDecision ? `${v.lastDecision.action} (${v.lastDecision.reason}) at ${new Date(v.lastDecision.candleTime).toISOString()}` : 'none yet';
    return [
      `**${input.symbol}** on ${input.exchange}, ${input.mode}, strategy ${input.engine.strategy}`,
      `Status: **${v.tradingStatus}**${v.statusReason ? ` (${v.statusReason})` : ''}`,
      `Position: ${pos}`,
      `Last decision: ${d}`,
      `Realized PnL: ${v.realizedPnl.toFixed(2)} over ${v.tradesClosed} trades; ${v.decisions} decisions`,
    ].join('\n');
  };

  const changeStatus = (to: TradingStatus, origin: MessageOrigin): void => {
    if (state.tradingStatus === to) return;
    log.info('trading status changed', { symbol: input.symbol, from: state.tradingStatus, to, by: origin.by, reason: origin.reason });
    state = setStatus(state, to, `${origin.reason ?? 'requested'} by ${origin.by}`);
    publish();
  };

  const validateOrigin = (origin: MessageOrigin): void => {
    if (!origin || typeof origin.by !== 'string' || origin.by.length === 0 || origin.by.length > 100) {
      throw new Error('a message needs { by: "<who>" } (1-100 characters)');
    }
  };

  setHandler(pauseSignal, (o) => changeStatus('paused', o));
  setHandler(resumeSignal, (o) => changeStatus('active', o));
  setHandler(reduceOnlySignal, (o) => changeStatus('reduce-only', o));
  setHandler(reloadModelSignal, (o) => {
    pendingReload = o.version === undefined ? {} : { version: o.version };
  });
  setHandler(stateQuery, view);
  setHandler(lastDecisionQuery, () => lastDecision);
  setDefaultQueryHandler((name) => {
    throw new Error(`unknown query ${name}; this workflow answers: state, lastDecision`);
  });

  let lastPortfolio: PortfolioView | undefined;
  const asOfFor = (candleTime: number | null): number | null => (input.mode === 'replay' && candleTime !== null ? candleTime + input.timeframeMs : null);
  const ports = (asOf: () => number | null): StepPorts => ({
    prepare: async (cursor) => {
      const prep = await prepareCandle({
        workflowId: wfId,
        symbol: input.symbol,
        timeframe: input.timeframe,
        mode: input.mode,
        after: cursor.after,
        fillsSince: cursor.fillsSince,
        modelVersion: c.modelVersion,
        reloadModel: pendingReload !== null,
        requestedModelVersion: pendingReload?.version,
      });
      pendingReload = null;
      if (prep.modelVersion !== undefined) c.modelVersion = prep.modelVersion;
      lastPortfolio = prep.portfolio;
      if (prep.breaker !== undefined) {
        if (prep.breaker && prep.breaker.state !== 'closed' && breaker?.state !== prep.breaker.state && input.mode !== 'replay') {
          const b = prep.breaker;
          await sendAlert(circuitBreakerOpenAlert({ exchange: input.exchange, operation: `breaker ${b.state} after ${b.consecutiveFailures} failures`, error: b.lastFailure ?? 'unknown' })).catch(() => undefined);
        }
        breaker = prep.breaker;
      }
      return prep;
    },
    execute: (intents: OrderIntent[], why: string) =>
      executeIntents.executeWithOptions({ ...executeOptions, summary: `${why}: ${intents.map((i) => `${i.tag} ${i.side} ${i.qty}`).join(', ')}`.slice(0, 200) }, [
        { workflowId: wfId, symbol: input.symbol, mode: input.mode, intents, asOf: asOf() },
      ]),
    portfolio: () => lastPortfolio,
  });

  const withLock = async <T>(fn: () => Promise<T>): Promise<T> => {
    await condition(() => !busy);
    busy = true;
    try {
      return await fn();
    } finally {
      busy = false;
    }
  };

  setHandler(
    emergencyCloseUpdate,
    async (origin): Promise<EmergencyCloseResult> =>
      withLock(async () => {
        const intents = emergencyIntents(state, ctx);
        const canceledOrders = intents.filter((i) => i.tag === 'cancel').length;
        const out: Pick<StepOutcome, 'state' | 'closed' | 'rejected' | 'sent'> = { state, closed: [], rejected: [], sent: 0 };
        await settle(out, intents, ports(() => asOfFor(state.lastCandleTime)), input.engine, ctx, 'emergency close');
        state = out.state;
        changeStatus('halted', { by: origin.by, reason: origin.reason ?? 'emergency close' });
        const closed: ClosedPositionView[] = out.closed.map((t) => ({ symbol: input.symbol, qty: t.qty, entryPrice: t.entryPrice, exitPrice: t.exitPrice, pnl: t.pnl, clientOrderId: t.exitOrderId }));
        for (const r of out.rejected) log.error('emergency exit refused by the exchange', { symbol: input.symbol, clientOrderId: r.clientOrderId, reason: r.reason });
        return { symbol: input.symbol, closed, canceledOrders, tradingStatus: status() };
      }),
    { validator: validateOrigin },
  );

  publish();

  for (;;) {
    // Halted: nothing to do until someone resumes.
    await condition(() => state.tradingStatus !== 'halted');

    // Wait for the next candle to close.
    if (input.mode === 'replay') {
      if (input.speed !== undefined && input.speed !== 'max') await sleep(Math.max(1, Math.round(input.timeframeMs / input.speed)));
    } else {
      const now = Date.now();
      const last = c.cursor.after ?? Math.floor(now / input.timeframeMs) * input.timeframeMs - 2 * input.timeframeMs;
      const due = last + 2 * input.timeframeMs + input.candleDelayMs; // close of the candle after `last`, plus the delay
      if (due > now) await sleep(due - now);
    }
    if (state.tradingStatus === 'halted') continue;

    const stepDone = await withLock(async () => {
      let stepCandle: number | null = null;
      const p = ports(() => asOfFor(stepCandle));
      const prepare = p.prepare;
      p.prepare = async (cursor) => {
        const prep = await prepare(cursor);
        stepCandle = prep.input?.candle.timestamp ?? null;
        return prep;
      };
      const state0 = state;
      const out = await runCandleStep(state, c.cursor, p, input.engine, ctx);
      state = out.state;
      c.cursor = out.cursor;
      if (out.decision) {
        lastDecision = out.decision;
        c.decisions++;
      }
      for (const t of out.closed) log.info('trade closed', { symbol: input.symbol, pnl: t.pnl, exitReason: t.exitReason });
      if (input.mode !== 'replay') {
        // Operators' Telegram feed; enqueue-only, and a failure never stops trading.
        const opened = out.state.position && out.state.position.entryOrderId !== state0?.position?.entryOrderId ? out.state.position : null;
        const alerts = [
          ...out.closed.map((t) => tradeClosedAlert({ symbol: input.symbol, qty: t.qty, entryPrice: t.entryPrice, exitPrice: t.exitPrice, pnl: t.pnl, reason: t.exitReason, clientOrderId: t.exitOrderId, mode: input.mode })),
          ...(opened ? [tradeOpenedAlert({ symbol: input.symbol, qty: opened.qty, price: opened.entryPrice, stopPrice: opened.stopPrice, targetPrice: opened.targetPrice, clientOrderId: opened.entryOrderId, mode: input.mode })] : []),
        ];
        for (const a of alerts) await sendAlert(a).catch((err: unknown) => log.warn('alert not sent', { error: String(err) }));
      }
      if (out.problems.length > 0) log.warn('candle problems', { symbol: input.symbol, problems: out.problems });
      if (out.decision) setCurrentDetails(details());
      late = !out.done && !out.candle;
      return out.done;
    });
    if (stepDone) break;
    // Live: the exchange has not published the closed candle yet. Ask again shortly rather than
    // spinning (the due time computed above is already past).
    if (late && input.mode !== 'replay') await sleep(Math.max(5_000, input.candleDelayMs));

    if (workflowInfo().historyLength > (input.continueAsNewAfterEvents ?? DEFAULT_CONTINUE_AFTER) || workflowInfo().continueAsNewSuggested) {
      await condition(() => !busy);
      await condition(() => true); // let in-flight handlers settle
      return continueAsNew<typeof symbolTraderWorkflow>({ ...input, carried: { ...c, state, pendingReload } });
    }
  }

  done = true;
  setCurrentDetails(details());
  // Replay: stay queryable until the data is exhausted and messages have been handled.
  await condition(() => !busy);
  return { symbol: input.symbol, decisions: c.decisions, realizedPnl: state.realizedPnl, tradesClosed: state.tradesClosed, reason: 'end_of_data' };
}


/**
 * TEST DOUBLE of the trading workflows, for the TradingControl and Telegram unit tests only.
 *
 * It implements exactly the messages of workflows/messages.ts (the same definitions the real
 * SymbolTraderWorkflow and PortfolioWorkflow register) with trivial state: a symbol holds an
 * optional position it was started with; pause/resume/reduce-only change its status (and the
 * TradingStatus search attribute); the emergency update "sells" the position at its mark price.
 * The portfolio fans status signals out to the symbols and runs the emergency close through an
 * activity that sends the symbols' update, then raises the kill-switch alert.
 *
 * The end-to-end test switches to the real workflows in workflows/ when they are available.
 */
import { condition, getExternalWorkflowHandle, proxyActivities, setHandler, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import type { createAlertActivities } from '../../activities/alerts';
import { killSwitchTrippedAlert } from '../../lib/alerts';
import {
  emergencyCloseUpdate,
  lastDecisionQuery,
  pauseSignal,
  portfolioEmergencyUpdate,
  portfolioPauseSignal,
  portfolioReduceOnlySignal,
  portfolioResumeSignal,
  portfolioStateQuery,
  reduceOnlySignal,
  resumeSignal,
  stateQuery,
  symbolWorkflowId,
  type EmergencyCloseResult,
  type KillSwitchView,
  type MessageOrigin,
  type OpenPositionView,
  type SymbolStateView,
  type TradingStatus,
} from '../../workflows/messages';
import { TradingStatusKey } from '../../workflows/search-attributes';

export interface DoubleSymbolInput {
  symbol: string;
  exchange: string;
  position?: { qty: number; entryPrice: number; markPrice: number };
}

export interface DoublePortfolioInput {
  account: string;
  exchange: string;
  symbols: string[];
}

export interface DoubleActivities extends ReturnType<typeof createAlertActivities> {
  closeSymbols(args: { workflowIds: string[]; origin: MessageOrigin }): Promise<EmergencyCloseResult[]>;
}

const { closeSymbols, sendAlert } = proxyActivities<DoubleActivities>({ startToCloseTimeout: '30 seconds', retry: { maximumAttempts: 3 } });

export async function symbolTraderWorkflow(input: DoubleSymbolInput): Promise<void> {
  let status: TradingStatus = 'active';
  let statusReason: string | undefined;
  let position: OpenPositionView | null = input.position
    ? {
        symbol: input.symbol,
        side: 'long',
        qty: input.position.qty,
        entryPrice: input.position.entryPrice,
        entryTime: 1_700_000_000_000,
        stopPrice: input.position.entryPrice * 0.98,
        targetPrice: input.position.entryPrice * 1.04,
        markPrice: input.position.markPrice,
        unrealizedPnl: (input.position.markPrice - input.position.entryPrice) * input.position.qty,
      }
    : null;
  let realizedPnl = 0;
  let tradesClosed = 0;
  let emergencies = 0;

  const set = (to: TradingStatus, o: MessageOrigin) => {
    status = to;
    statusReason = `${o.reason ?? 'requested'} by ${o.by}`;
    upsertSearchAttributes([{ key: TradingStatusKey, value: to }]);
  };
  setHandler(pauseSignal, (o) => set('paused', o));
  setHandler(resumeSignal, (o) => set('active', o));
  setHandler(reduceOnlySignal, (o) => set('reduce-only', o));
  setHandler(emergencyCloseUpdate, (o) => {
    emergencies += 1;
    const closed = position
      ? [{ symbol: input.symbol, qty: position.qty, entryPrice: position.entryPrice, exitPrice: position.markPrice!, pnl: position.unrealizedPnl!, clientOrderId: `${workflowInfo().workflowId}/emergency/${emergencies}` }]
      : [];
    if (position) {
      realizedPnl += position.unrealizedPnl!;
      tradesClosed += 1;
      position = null;
    }
    set('halted', o);
    return { symbol: input.symbol, closed, canceledOrders: 0, tradingStatus: status };
  });
  setHandler(
    stateQuery,
    (): SymbolStateView => ({
      workflowId: workflowInfo().workflowId,
      symbol: input.symbol,
      exchange: input.exchange,
      mode: 'paper',
      strategy: 'test-double',
      tradingStatus: status,
      statusReason,
      position,
      lastDecision: null,
      decisions: 0,
      realizedPnl,
      tradesClosed,
      lastCandleTime: null,
      done: false,
    }),
  );
  setHandler(lastDecisionQuery, () => null);
  await condition(() => false);
}

export async function portfolioWorkflow(input: DoublePortfolioInput): Promise<void> {
  let killSwitch: KillSwitchView = { tripped: false };
  const requestedStatus: Record<string, TradingStatus> = Object.fromEntries(input.symbols.map((s) => [s, 'active' as TradingStatus]));
  const fanOut = async (symbol: string | undefined, to: TradingStatus, o: MessageOrigin) => {
    const signal = to === 'paused' ? pauseSignal : to === 'reduce-only' ? reduceOnlySignal : resumeSignal;
    for (const s of symbol ? [symbol] : input.symbols) {
      requestedStatus[s] = to;
      // A symbol that is not running keeps the request in requestedStatus.
      await getExternalWorkflowHandle(symbolWorkflowId(input.exchange, s))
        .signal(signal, { by: o.by, reason: o.reason })
        .catch(() => undefined);
    }
  };
  setHandler(portfolioPauseSignal, (m) => fanOut(m.symbol, 'paused', m));
  setHandler(portfolioReduceOnlySignal, (m) => fanOut(m.symbol, 'reduce-only', m));
  setHandler(portfolioResumeSignal, (m) => {
    if (!m.symbol) killSwitch = { tripped: false };
    return fanOut(m.symbol, 'active', m);
  });
  setHandler(portfolioStateQuery, () => ({
    workflowId: workflowInfo().workflowId,
    account: input.account,
    symbols: input.symbols,
    equity: 10_000,
    peakEquity: 10_000,
    drawdown: 0,
    killSwitch,
    requestedStatus,
  }));
  setHandler(portfolioEmergencyUpdate, async (origin) => {
    killSwitch = { tripped: true, reason: origin.reason ?? 'emergency close', at: Date.now(), by: origin.by };
    for (const s of input.symbols) requestedStatus[s] = 'halted';
    const results = await closeSymbols({ workflowIds: input.symbols.map((s) => symbolWorkflowId(input.exchange, s)), origin });
    await sendAlert(killSwitchTrippedAlert({ account: input.account, reason: killSwitch.reason!, by: origin.by }));
    return results;
  });
  await condition(() => false);
}

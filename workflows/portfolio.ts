import {
  condition,
  continueAsNew,
  getExternalWorkflowHandle,
  log,
  patched,
  proxyActivities,
  proxyLocalActivities,
  setCurrentDetails,
  setHandler,
  sleep,
  workflowInfo,
} from '@temporalio/workflow';
import type { TradingActivities } from '../activities/trading';
import type { AlertActivities } from '../activities/alerts';
import { drawdownWarningAlert, killSwitchTrippedAlert } from '../lib/alerts';
import { pauseSignal, portfolioEmergencyUpdate, portfolioPauseSignal, portfolioReduceOnlySignal, portfolioResumeSignal, portfolioStateQuery, reduceOnlySignal, resumeSignal } from './messages';
import type { PortfolioCarried, PortfolioInput } from '../lib/contracts/workflows';
import { symbolWorkflowId, type EmergencyCloseResult, type KillSwitchView, type MessageOrigin, type PortfolioStateView, type TradingStatus } from '../lib/contracts/trading';

/**
 * The portfolio actor (id `portfolio/<account>`): owns what no single symbol can see. It starts
 * and supervises one SymbolTraderWorkflow per configured symbol, fans operator commands out to
 * them, watches account equity and drawdown from the ledger, and trips the kill switch (an
 * emergency close of every symbol, then `halted`) when MAX_DRAWDOWN or the daily loss limit
 * breaks. The kill switch is workflow state: it survives worker restarts and continue-as-new,
 * and only an operator's `resume` (all symbols) re-arms it.
 */

const { reconcileAccount } = proxyActivities<TradingActivities>({
  startToCloseTimeout: '5 minutes',
  retry: { initialInterval: '5 seconds', maximumInterval: '1 minute', maximumAttempts: 5 },
});
const { startSymbolWorkflows, emergencyCloseSymbols } = proxyActivities<TradingActivities>({
  startToCloseTimeout: '2 minutes',
  retry: { initialInterval: '1 second', maximumInterval: '30 seconds' },
});
const { sendAlert } = proxyActivities<AlertActivities>({
  startToCloseTimeout: '10 seconds',
  retry: { maximumAttempts: 3 },
});
const { portfolioSnapshot } = proxyLocalActivities<TradingActivities>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1 second', maximumInterval: '30 seconds' },
});

export async function portfolioWorkflow(input: PortfolioInput): Promise<void> {
  const wfId = workflowInfo().workflowId;
  const symbols = input.symbols.map((s) => s.symbol);
  const ids = new Map(input.symbols.map((s) => [s.symbol, symbolWorkflowId(s.exchange, s.symbol)]));
  const c: PortfolioCarried = input.carried ?? {
    killSwitch: { tripped: false },
    peakEquity: null,
    equity: null,
    requestedStatus: Object.fromEntries(symbols.map((s) => [s, 'active' as TradingStatus])),
    started: false,
  };
  let busy = false;
  const signals: Promise<void>[] = [];

  const view = (): PortfolioStateView => ({
    workflowId: wfId,
    account: input.account,
    symbols,
    equity: c.equity,
    peakEquity: c.peakEquity,
    drawdown: c.equity !== null && c.peakEquity ? Math.max(0, (c.peakEquity - c.equity) / c.peakEquity) : null,
    killSwitch: c.killSwitch,
    requestedStatus: c.requestedStatus,
  });
  const publish = (): void => {
    const v = view();
    setCurrentDetails(
      [
        `**Portfolio ${input.account}** (${input.mode}, ${input.exchange}): ${symbols.join(', ')}`,
        `Kill switch: ${v.killSwitch.tripped ? `**TRIPPED** (${v.killSwitch.reason}, by ${v.killSwitch.by})` : 'armed'}`,
        `Equity: ${v.equity?.toFixed(2) ?? '-'}; peak ${v.peakEquity?.toFixed(2) ?? '-'}; drawdown ${v.drawdown === null ? '-' : (v.drawdown * 100).toFixed(2) + ' %'}`,
      ].join('\n'),
    );
  };

  const targets = (symbol?: string): string[] => {
    if (symbol === undefined) return symbols;
    if (!ids.has(symbol)) throw new Error(`unknown symbol ${symbol}; this portfolio trades ${symbols.join(', ')}`);
    return [symbol];
  };
  const fanOut = (symbol: string | undefined, to: TradingStatus, origin: MessageOrigin): void => {
    let list: string[];
    try {
      list = targets(symbol);
    } catch (err) {
      log.warn('ignored a command for an unknown symbol', { symbol, by: origin.by });
      return;
    }
    const signal = to === 'paused' ? pauseSignal : to === 'reduce-only' ? reduceOnlySignal : resumeSignal;
    for (const s of list) {
      c.requestedStatus[s] = to;
      signals.push(
        getExternalWorkflowHandle(ids.get(s)!)
          .signal(signal, { by: origin.by, reason: origin.reason })
          .catch((err: unknown) => log.warn('could not signal a symbol workflow (not running?)', { symbol: s, error: String(err) })),
      );
    }
    publish();
  };

  setHandler(portfolioPauseSignal, (m) => fanOut(m.symbol, 'paused', m));
  setHandler(portfolioReduceOnlySignal, (m) => fanOut(m.symbol, 'reduce-only', m));
  setHandler(portfolioResumeSignal, (m) => {
    if (c.killSwitch.tripped) {
      if (m.symbol !== undefined) {
        log.warn('resume of one symbol refused: the kill switch is tripped; resume all symbols to re-arm it', { symbol: m.symbol, by: m.by });
        return;
      }
      log.warn('kill switch re-armed by operator', { by: m.by, was: c.killSwitch.reason });
      c.killSwitch = { tripped: false };
      c.peakEquity = c.equity; // drawdown is measured from here on
    }
    fanOut(m.symbol, 'active', m);
  });
  setHandler(portfolioStateQuery, view);

  const trip = async (reason: string, by: string): Promise<EmergencyCloseResult[]> => {
    await condition(() => !busy);
    busy = true;
    try {
      if (!c.killSwitch.tripped) c.killSwitch = { tripped: true, reason, at: Date.now(), by };
      for (const s of symbols) c.requestedStatus[s] = 'halted';
      publish();
      log.error('kill switch tripped: closing every position', { reason, by });
      // Alerting never blocks the kill switch: the activity only enqueues, and a failure is logged.
      await sendAlert(killSwitchTrippedAlert({ account: input.account, reason, by })).catch((err: unknown) => log.warn('could not raise the kill-switch alert', { error: String(err) }));
      return await emergencyCloseSymbols({ account: input.account, workflowIds: [...ids.values()], origin: { by, reason }, alert: `Kill switch tripped: ${reason}` });
    } finally {
      busy = false;
    }
  };

  setHandler(portfolioEmergencyUpdate, (origin) => trip(origin.reason ?? 'emergency close', origin.by), {
    validator: (o) => {
      if (!o || typeof o.by !== 'string' || !o.by) throw new Error('a message needs { by: "<who>" }');
    },
  });

  if (!c.started) {
    await startSymbolWorkflows({ workflows: input.symbols, taskQueue: input.taskQueue });
    c.started = true;
  }
  publish();

  const reconcileNow = async (): Promise<void> => {
    try {
      const r = await reconcileAccount({ symbols });
      if (!r.ok) {
        const text = `Reconciliation for ${input.account}: ${r.differences.length} difference(s) between the ledger and the exchange (nothing was changed): ${r.differences
          .slice(0, 5)
          .map((d) => d.message)
          .join('; ')}`;
        await sendAlert({ severity: 'warning', key: `reconcile/${input.account}`, text: text.slice(0, 3900) }).catch(() => undefined);
      }
    } catch (err) {
      log.warn('reconciliation failed', { error: String(err) });
    }
  };
  const reconciles = patched('reconcile-on-timer');
  if (reconciles) await reconcileNow();
  for (let checks = 1; ; checks++) {
    if (reconciles && checks % (input.reconcileEveryChecks ?? 15) === 0) await reconcileNow();
    const snap = await portfolioSnapshot({ account: input.account, symbols });
    c.equity = snap.equity;
    c.peakEquity = Math.max(c.peakEquity ?? snap.equity, snap.equity);
    const dd = c.peakEquity > 0 ? (c.peakEquity - snap.equity) / c.peakEquity : 0;
    const daily = snap.dayStartEquity > 0 ? -snap.dailyPnl / snap.dayStartEquity : 0;
    publish();
    if (!c.killSwitch.tripped && dd >= 0.8 * input.limits.maxDrawdown && dd < input.limits.maxDrawdown) {
      await sendAlert(drawdownWarningAlert({ account: input.account, drawdown: dd, limit: input.limits.maxDrawdown })).catch(() => undefined);
    }
    if (!c.killSwitch.tripped && dd >= input.limits.maxDrawdown) {
      await trip(`drawdown ${(dd * 100).toFixed(2)} % reached MAX_DRAWDOWN ${(input.limits.maxDrawdown * 100).toFixed(2)} %`, 'portfolio');
    } else if (!c.killSwitch.tripped && daily >= input.limits.dailyLossLimit && !c.dailyPaused) {
      // The daily loss limit pauses entries until the next UTC day rather than closing everything.
      const paused = symbols.filter((s) => c.requestedStatus[s] === 'active');
      for (const s of paused) fanOut(s, 'paused', { by: 'portfolio', reason: `daily loss ${(daily * 100).toFixed(2)} % reached the limit` });
      c.dailyPaused = { day: Math.floor(Date.now() / 86_400_000), symbols: paused };
    }
    if (c.dailyPaused && Math.floor(Date.now() / 86_400_000) !== c.dailyPaused.day) {
      // A new UTC day: what the daily limit paused (and nobody changed since) trades again.
      for (const s of c.dailyPaused.symbols) if (c.requestedStatus[s] === 'paused' && !c.killSwitch.tripped) fanOut(s, 'active', { by: 'portfolio', reason: 'new UTC day after the daily loss limit' });
      c.dailyPaused = undefined;
    }
    await Promise.all(signals.splice(0));
    await sleep(input.checkEveryMs);
    const info = workflowInfo();
    if (info.historyLength > (input.continueAsNewAfterEvents ?? 4000) || info.continueAsNewSuggested) {
      await condition(() => !busy);
      return continueAsNew<typeof portfolioWorkflow>({ ...input, carried: c });
    }
  }
}

import { ApplicationFailure, allHandlersFinished, condition, continueAsNew, getExternalWorkflowHandle, log, proxyActivities, proxyLocalActivities, setCurrentDetails, setHandler, sleep, workflowInfo } from '@temporalio/workflow';
import { WorkflowLock } from '../lib/trading/workflow-lock';
import { identityLabel, identityName } from '../lib/strategy/run';
import type { Alert } from '../lib/alerts';
import { messageFirstLog } from '../lib/log';
import { PortfolioSupervisor, type SymbolCommand } from '../lib/trading/portfolio-supervisor';
import { assertMessageOrigin, symbolWorkflowId, type EmergencyCloseResult } from '../lib/contracts/trading';
import type { PortfolioInput } from '../lib/contracts/workflows';
import type { AlertActivities, TradingActivities } from '../lib/contracts/activities';
import { pauseSignal, portfolioEmergencyUpdate, portfolioSetStrategyUpdate, setStrategySignal, portfolioPauseSignal, portfolioReduceOnlySignal, portfolioResumeSignal, portfolioStateQuery, reduceOnlySignal, resumeSignal } from './messages';
import { runPatches } from './patches';

/**
 * The portfolio actor (id `portfolio/<account>`): a shell over PortfolioSupervisor
 * (lib/trading/portfolio-supervisor.ts). It starts and supervises one SymbolTraderWorkflow per
 * configured symbol, fans operator commands out to them, watches account equity and drawdown
 * from the ledger, and trips the kill switch (an emergency close of every symbol, then `halted`)
 * when MAX_DRAWDOWN breaks; the daily loss limit pauses entries until the next UTC day. The kill
 * switch is workflow state: it survives worker restarts and continue-as-new, and only an
 * operator's `resume` (all symbols) re-arms it.
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
// Local: the signals go out within the workflow task that took the command, with no task-queue
// round trip; a worker crash mid-way repeats them on retry, which the symbols ignore. Retried for
// two minutes at most, so an unreachable symbol cannot hold up the equity checks for longer.
const { signalSymbols } = proxyLocalActivities<TradingActivities>({
  startToCloseTimeout: '10 seconds',
  scheduleToCloseTimeout: '2 minutes',
  retry: { initialInterval: '200 milliseconds', maximumInterval: '10 seconds' },
});

// A record for operators (/balance, trader status, trader equity), never a reason to hold up the
// equity checks: a few tries, then the check goes on without it.
const { recordEquitySnapshot } = proxyLocalActivities<TradingActivities>({
  startToCloseTimeout: '10 seconds',
  retry: { initialInterval: '1 second', maximumAttempts: 3 },
});

// A strategy switch is checked where it will run (a trading worker loads it) before the symbol hears of it.
const { checkStrategy, recordStrategySwitch } = proxyActivities<TradingActivities>({
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '1 second', maximumInterval: '10 seconds', maximumAttempts: 5 },
});

const STATUS_SIGNALS = { paused: pauseSignal, 'reduce-only': reduceOnlySignal, active: resumeSignal } as const;

export async function portfolioWorkflow(input: PortfolioInput): Promise<void> {
  // First: the run's patches are asked for before any activity (workflows/patches.ts says why).
  const patched = runPatches();
  const portfolio = new PortfolioSupervisor(input, workflowInfo().workflowId, messageFirstLog(log));
  // One kill switch trip at a time (the drawdown check and an operator's emergency may coincide).
  const lock = new WorkflowLock();
  const signals: Promise<void>[] = [];

  const publish = (): void => setCurrentDetails(portfolio.details());
  // Alerting never blocks the kill switch: the activity only enqueues, and a failure is logged.
  const raise = (alert: Alert): Promise<unknown> => sendAlert(alert).catch((err: unknown) => log.warn('alert not sent', { key: alert.key, error: String(err) }));
  // Commands reach each symbol in the order they were given: a stop then a resume never lands the other way round.
  const fanOut = new WorkflowLock();
  const command = (commands: SymbolCommand[]): void => {
    if (commands.length === 0) return;
    // A local activity signals every symbol at once (bench/kill-switch.ts); asked only when there
    // is something to send, so histories of runs without commands keep their commands.
    if (patched('status-commands-by-activity')) {
      signals.push(
        fanOut.run(async () => {
          try {
            const r = await signalSymbols({ commands: commands.map((c) => ({ workflowId: c.workflowId, status: c.status, origin: c.origin })) });
            if (r.notRunning.length > 0) log.warn('symbol workflows not running; their status applies when they start', { notRunning: r.notRunning });
          } catch (err) {
            log.warn('could not signal the symbol workflows', { symbols: commands.map((c) => c.symbol), error: String(err) });
          }
        }),
      );
    } else {
      for (const c of commands) {
        signals.push(
          getExternalWorkflowHandle(c.workflowId)
            .signal(STATUS_SIGNALS[c.status], c.origin)
            .catch((err: unknown) => log.warn('could not signal a symbol workflow (not running?)', { symbol: c.symbol, error: String(err) })),
        );
      }
    }
    publish();
  };
  const trip = (reason: string, by: string): Promise<EmergencyCloseResult[]> =>
    lock.run(async () => {
      const alert = portfolio.trip(reason, by, Date.now());
      publish();
      if (patched('close-alongside-trip-alert')) {
        // The positions first: the alert goes out alongside the close, not ahead of it.
        const [results] = await Promise.all([emergencyCloseSymbols(portfolio.emergencyCloseArgs(reason, by)), raise(alert)]);
        return results;
      }
      await raise(alert);
      return emergencyCloseSymbols(portfolio.emergencyCloseArgs(reason, by));
    });
  const reconcile = async (): Promise<void> => {
    try {
      const differences = portfolio.reconciled(await reconcileAccount({ symbols: portfolio.symbols }));
      if (differences) await raise(differences);
    } catch (err) {
      log.warn('reconciliation failed', { error: String(err) });
    }
  };

  setHandler(portfolioPauseSignal, (m) => command(portfolio.requestStatus(m, 'paused')));
  setHandler(portfolioReduceOnlySignal, (m) => command(portfolio.requestStatus(m, 'reduce-only')));
  setHandler(portfolioResumeSignal, (m) => command(portfolio.resume(m)));
  setHandler(portfolioStateQuery, () => portfolio.view());
  setHandler(
    portfolioSetStrategyUpdate,
    async (m) => {
      const target = input.symbols.find((s) => s.symbol === m.symbol) as (typeof input.symbols)[number];
      const check = await checkStrategy({ symbol: m.symbol, ref: m.ref, ...(m.params ? { params: m.params } : {}), timeframe: target.timeframe, by: m.by, ...(m.reason !== undefined ? { reason: m.reason } : {}) });
      if (!check.ok) throw ApplicationFailure.nonRetryable(check.error, 'StrategyRefused');
      const id = check.identity;
      const label = identityName(id);
      try {
        await getExternalWorkflowHandle(symbolWorkflowId(target.exchange, target.symbol)).signal(setStrategySignal, { ref: check.ref, ...(m.params ? { params: m.params } : {}), label, by: m.by, ...(m.reason !== undefined ? { reason: m.reason } : {}) });
      } catch (err) {
        throw ApplicationFailure.nonRetryable(`${m.symbol}'s workflow is not running (${String(err)}); nothing changed: start it (trader up) and switch again`, 'StrategyRefused');
      }
      await recordStrategySwitch({ symbol: m.symbol, ref: check.ref, params: check.params, identity: id, by: m.by, ...(m.reason !== undefined ? { reason: m.reason } : {}) });
      log.info('strategy switch passed on', { symbol: m.symbol, strategy: label, by: m.by });
      return { symbol: m.symbol, ref: check.ref, strategy: identityLabel(id) };
    },
    {
      validator: (message) => {
        const m = message;
        assertMessageOrigin(message);
        if (!m || typeof m.symbol !== 'string' || !input.symbols.some((s) => s.symbol === m.symbol)) throw new Error(`unknown symbol ${String(m?.symbol)}: this portfolio trades ${input.symbols.map((s) => s.symbol).join(', ')}`);
        if (typeof m.ref !== 'string' || m.ref.trim() === '' || m.ref.length > 500) throw new Error('strategy: a built-in name, a strategy file name or a path is required');
        if (m.params !== undefined && (m.params === null || typeof m.params !== 'object' || Array.isArray(m.params))) throw new Error('params: a JSON object');
      },
    },
  );
  setHandler(portfolioEmergencyUpdate, (origin) => trip(origin.reason ?? 'emergency close', origin.by), { validator: assertMessageOrigin });

  if (!portfolio.started) {
    await startSymbolWorkflows({ workflows: input.symbols, taskQueue: input.taskQueue });
    portfolio.markStarted();
  }
  publish();

  const reconciles = patched('reconcile-on-timer');
  if (reconciles) await reconcile();
  for (let checks = 1; ; checks++) {
    if (reconciles && portfolio.reconcileDue(checks)) await reconcile();
    const snap = await portfolioSnapshot(portfolio.snapshotRequest());
    const now = Date.now();
    const check = portfolio.check(snap, now);
    publish();
    // Histories recorded before equity snapshots were written replay without the activity.
    if (patched('equity-snapshots')) {
      await recordEquitySnapshot(portfolio.equityRecord(snap, now)).catch((err: unknown) => log.warn('equity snapshot not recorded', { error: String(err) }));
    }
    if (check.warning) await raise(check.warning);
    if (check.trip) await trip(check.trip, 'portfolio');
    command(check.commands);
    await Promise.all(signals.splice(0));
    await sleep(input.checkEveryMs);
    if (portfolio.shouldContinueAsNew(workflowInfo())) {
      await condition(allHandlersFinished);
      return continueAsNew<typeof portfolioWorkflow>({ ...input, carried: portfolio.carried() });
    }
  }
}

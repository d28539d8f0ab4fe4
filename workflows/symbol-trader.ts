import { allHandlersFinished, condition, continueAsNew, log, proxyActivities, proxyLocalActivities, setCurrentDetails, setDefaultQueryHandler, setHandler, sleep, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import type { ActivityOptions, LocalActivityOptions } from '@temporalio/common';
import { runCandleStep, settle, type StepPorts } from '../lib/engine';
import type { Alert } from '../lib/alerts';
import { messageFirstLog } from '../lib/log';
import { SymbolTrader } from '../lib/trading/symbol-trader';
import { WorkflowLock } from '../lib/trading/workflow-lock';
import { assertMessageOrigin, type MessageOrigin, type TradingStatus } from '../lib/contracts/trading';
import type { SymbolTraderInput, SymbolTraderResult } from '../lib/contracts/workflows';
import type { AlertActivities, TradingActivities } from '../lib/contracts/activities';
import { emergencyCloseUpdate, lastDecisionQuery, pauseSignal, reduceOnlySignal, reloadModelSignal, resumeSignal, setStrategySignal, stateQuery } from './messages';
import { TradingStatusKey } from '../lib/contracts/search-attributes';
import { runPatches } from './patches';

/**
 * One durable trader per symbol (id `trader/<exchange>/<SYMBOL>`): a shell over SymbolTrader
 * (lib/trading/symbol-trader.ts), which holds the state and the logic.
 *
 * Each candle: a durable timer to the candle's close (live: close + a small delay; replay: as
 * fast as the speed allows), then one LOCAL activity that reads the closed candle, its feature
 * vector, the regime, the model's signal and the fills of our resting orders (a marker, not three
 * events, and nothing large: a candle and ~40 numbers), then the PURE decision (lib/engine, the
 * same code the backtester runs) here in workflow code, then, only when there is something to
 * send, one REGULAR activity that places the orders (idempotent per client order id, looked up
 * before it is sent) and records them in the ledger, and with them what the engine asks for on
 * their outcome: an entry's stop and target go out in the same activity as soon as it fills
 * (patch `follow-ups-in-one-activity`; before it, a second activity placed them). A candle without
 * orders costs about 6 history events, an entry about 12 (`npm run bench -- decision-latency`).
 *
 * The step awaits only what it must: the SDK records a stack trace for every promise workflow
 * code creates (for its stack-trace query), which made promises most of the worker's CPU for a
 * candle in a CPU profile of the decision-latency bench.
 */

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
  // First: the run's patches are asked for before any activity (workflows/patches.ts says why).
  const patched = runPatches();
  const trader = new SymbolTrader(input, workflowInfo().workflowId, messageFirstLog(log));
  // One candle step or emergency close at a time: each reads the engine state, awaits orders, and writes it back.
  const lock = new WorkflowLock();

  const publish = (): void => {
    const status = trader.statusToPublish();
    if (status) upsertSearchAttributes([{ key: TradingStatusKey, value: status }]);
    setCurrentDetails(trader.details());
  };
  // Operators' Telegram feed: the activity only enqueues, and a failure never stops trading.
  const raise = (alert: Alert): Promise<unknown> => sendAlert(alert).catch((err: unknown) => log.warn('alert not sent', { key: alert.key, error: String(err) }));
  const ports: StepPorts = {
    prepare: (cursor, state) =>
      prepareCandle(trader.candleRead(cursor, state)).then((read) => {
        const breakerOpened = trader.candleReadDone(read);
        return breakerOpened ? raise(breakerOpened).then(() => read) : read;
      }),
    // With the engine state, the activity sends the follow-ups itself (settle() then applies them
    // from its report): workflows that sent their first batch without it keep sending follow-ups
    // in a second activity, as their histories recorded.
    execute: (intents, why, state) =>
      executeIntents.executeWithOptions({ ...executeOptions, summary: trader.orderSummary(intents, why) }, [trader.orderBatch(intents, patched('follow-ups-in-one-activity') ? state : undefined)]),
    portfolio: () => trader.accountView(),
  };

  const statusSignal = (to: TradingStatus) => (origin: MessageOrigin) => {
    if (trader.changeStatus(to, origin)) publish();
  };
  setHandler(pauseSignal, statusSignal('paused'));
  setHandler(resumeSignal, statusSignal('active'));
  setHandler(reduceOnlySignal, statusSignal('reduce-only'));
  setHandler(reloadModelSignal, (message) => trader.requestReload(message));
  setHandler(setStrategySignal, (message) => {
    if (trader.requestStrategy(message)) publish();
  });
  setHandler(stateQuery, () => trader.view());
  setHandler(lastDecisionQuery, () => trader.view().lastDecision);
  setDefaultQueryHandler((name) => {
    throw new Error(`unknown query ${name}; this workflow answers: state, lastDecision`);
  });
  setHandler(
    emergencyCloseUpdate,
    (origin) =>
      lock.run(async () => {
        const close = trader.emergencyClose();
        await settle(close.outcome, close.intents, ports, input.engine, trader.ctx, 'emergency close');
        const result = trader.emergencyClosed(close, origin);
        publish();
        return result;
      }),
    { validator: assertMessageOrigin },
  );

  // Alerts go out in order, then the step is published (the UI shows the position they announce).
  const raiseAll = (alerts: Alert[]): Promise<unknown> => alerts.reduce((sent: Promise<unknown>, a) => sent.then(() => raise(a)), Promise.resolve());
  const candleStep = (): Promise<boolean> => {
    trader.stepBegins(Date.now());
    return runCandleStep(trader.state, trader.cursor, ports, input.engine, trader.ctx).then((out) => {
      const alerts = trader.stepped(out, () => patched('keep-status-changed-during-step'), () => patched('alert-order-rejected'));
      const done = (): boolean => {
        publish();
        return out.done;
      };
      return alerts.length === 0 ? done() : raiseAll(alerts).then(done);
    });
  };

  publish();
  for (;;) {
    // Halted: nothing to do until someone resumes.
    if (trader.status === 'halted') await condition(() => trader.status !== 'halted');
    const wait = trader.msToNextCandle(Date.now());
    if (wait !== null) await sleep(wait);
    if (trader.status === 'halted') continue;
    if (await lock.run(candleStep)) break;
    const retry = trader.msToRetryLateCandle();
    if (retry !== null) await sleep(retry);
    if (trader.shouldContinueAsNew(workflowInfo())) {
      await condition(allHandlersFinished);
      return continueAsNew<typeof symbolTraderWorkflow>({ ...input, carried: trader.carried() });
    }
  }
  // Replay: the data is exhausted; messages still being handled finish first.
  await condition(allHandlersFinished);
  return trader.result();
}

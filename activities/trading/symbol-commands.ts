import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { WorkflowIdConflictPolicy } from '@temporalio/common';
import { Context } from '@temporalio/activity';
import { MESSAGE_NAMES, STATUS_SIGNAL_NAMES, type CommandArgs } from '../../lib/contracts/messages';
import type { SymbolStatusCommand, TradingActivities } from '../../lib/contracts/activities';
import { ExchangeKey, ModeKey, SymbolKey, TradingStatusKey } from '../../lib/contracts/search-attributes';
import { symbolWorkflowId, type EmergencyCloseResult, type MessageOrigin } from '../../lib/contracts/trading';
import type { SymbolTraderInput } from '../../lib/contracts/workflows';
import { activityLog, type TradingDeps } from './deps';

/**
 * The portfolio's commands to its symbol workflows, sent from the worker's Temporal client:
 * start them, change their trading status, close them in an emergency. The messages go by their
 * names (lib/contracts/messages.ts): activities do not import workflow code.
 */
export function createSymbolCommandActivities(deps: TradingDeps): Pick<TradingActivities, 'startSymbolWorkflows' | 'signalSymbols' | 'emergencyCloseSymbols'> {
  const client = (): Client => deps.client ?? Context.current().client;
  return {
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
     * The portfolio's status commands to its symbols, all at once: one signal per symbol from the
     * worker's client, in parallel. (SignalExternalWorkflowExecution commands from the workflow
     * go through the server's transfer queue one after another, each waking the portfolio again:
     * measured 0.2-0.4 s per symbol on the dev server, over 3 s for nine; see bench/kill-switch.ts.)
     * Idempotent: a symbol already in the status ignores the repeat. A symbol that is not running
     * is reported, not retried (the portfolio applies the status when it starts it).
     */
    async signalSymbols(args: { commands: SymbolStatusCommand[] }): Promise<{ signaled: string[]; notRunning: string[] }> {
      const c = client();
      const settled = await Promise.allSettled(args.commands.map((cmd) => c.workflow.getHandle(cmd.workflowId).signal<CommandArgs>(STATUS_SIGNAL_NAMES[cmd.status], cmd.origin)));
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
            return await c.workflow.getHandle(id).executeUpdate<EmergencyCloseResult, CommandArgs>(MESSAGE_NAMES.emergencyClose, { args: [args.origin] });
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

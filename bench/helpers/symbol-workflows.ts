import type { Client, WorkflowHandle } from '@temporalio/client';
import { ExchangeKey, ModeKey, SymbolKey, TradingStatusKey } from '../../workflows/search-attributes';
import { symbolWorkflowId } from '../../lib/contracts/trading';
import type { SymbolTraderInput, SymbolTraderResult } from '../../lib/contracts/workflows';

/**
 * Starts a SymbolTraderWorkflow with the options the PortfolioWorkflow's startSymbolWorkflows
 * activity uses (activities/trading/index.ts): same id, search attributes and summary. The bench
 * starts them from the client so that N of them start at once.
 */
export async function startSymbolTrader(client: Client, taskQueue: string, input: SymbolTraderInput): Promise<WorkflowHandle> {
  return client.workflow.start('symbolTraderWorkflow', {
    workflowId: symbolWorkflowId(input.exchange, input.symbol),
    taskQueue,
    args: [input],
    typedSearchAttributes: [
      { key: SymbolKey, value: input.symbol },
      { key: ExchangeKey, value: input.exchange },
      { key: ModeKey, value: input.mode },
      { key: TradingStatusKey, value: 'active' },
    ],
    staticSummary: `${input.symbol} ${input.timeframe} on ${input.exchange} (${input.mode}, strategy ${input.engine.strategy})`,
  });
}

export type { SymbolTraderResult };

import type { Client, WorkflowHandle } from '@temporalio/client';
import { symbolTraderStartOptions } from '../../activities/trading';
import type { SymbolTraderInput, SymbolTraderResult } from '../../lib/contracts/workflows';

/**
 * Starts a SymbolTraderWorkflow exactly as the PortfolioWorkflow's startSymbolWorkflows activity
 * does (the same symbolTraderStartOptions). The bench starts them from the client so that N of
 * them start at once.
 */
export async function startSymbolTrader(client: Client, taskQueue: string, input: SymbolTraderInput): Promise<WorkflowHandle> {
  return client.workflow.start('symbolTraderWorkflow', symbolTraderStartOptions(input, taskQueue));
}

export type { SymbolTraderResult };

import { proxyActivities, sleep, workflowInfo } from '@temporalio/workflow';
import type { Duration } from '@temporalio/common';
import type { LedgerCheck, SystemCheckActivities } from '../lib/contracts/activities';

const { checkLedger } = proxyActivities<SystemCheckActivities>({
  startToCloseTimeout: '30 seconds',
  retry: { maximumAttempts: 5, initialInterval: '1 second' },
});

export interface SystemCheckResult {
  workflowId: string;
  first: LedgerCheck;
  second: LedgerCheck;
}

/**
 * Proves the whole stack end to end at start-up: Temporal schedules a task, a worker runs it,
 * the activity writes to the ledger, a durable timer fires, and the ledger is reached again.
 * `trader up` runs it once per start and reports the result.
 */
export async function systemCheckWorkflow(input: { pause: Duration }): Promise<SystemCheckResult> {
  const first = await checkLedger({ event: 'system_check.started', workflowId: workflowInfo().workflowId });
  await sleep(input.pause);
  const second = await checkLedger({ event: 'system_check.finished', workflowId: workflowInfo().workflowId });
  return { workflowId: workflowInfo().workflowId, first, second };
}

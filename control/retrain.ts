import { ScheduleNotFoundError, ScheduleOverlapPolicy, type Client, type ScheduleDescription } from '@temporalio/client';
import { DEFAULT_RETRAIN_SCHEDULE_ID, RETRAIN_WORKFLOW_TYPE } from '../lib/contracts/retrain';

/**
 * Running a retrain now, outside its timetable: the operator surfaces (the Telegram /retrain)
 * trigger the Schedule `trader schedule retrain` made, so an on-demand run is the same workflow
 * with the same input, id pattern and task queue as a scheduled one, and shows up in the
 * schedule's history.
 *
 * Never two retrains side by side: a run already in progress is reported instead of triggering,
 * and the trigger itself asks for overlap SKIP (ScheduleHandle.trigger() defaults to ALLOW_ALL),
 * so a scheduled run that starts in between makes the trigger skip rather than run beside it.
 */

export interface RetrainScheduleView {
  scheduleId: string;
  everyMs: number[];
  paused: boolean;
  nextRunAt: Date | null;
  lastRun: { workflowId: string; takenAt: Date } | null;
  /** Workflow ids of the runs in progress (at most one under overlap SKIP). */
  running: string[];
}

export type RetrainTrigger =
  | { outcome: 'started'; scheduleId: string; workflowId: string; runId: string; paused: boolean }
  | { outcome: 'already-running'; scheduleId: string; workflowId: string }
  | { outcome: 'no-schedule'; scheduleId: string }
  /** Triggered, but no new run (nor a skip) was visible on the schedule in time. */
  | { outcome: 'unconfirmed'; scheduleId: string; waitedMs: number };

/** A schedule of that id that starts something other than RetrainWorkflow: triggering it would run the wrong thing. */
export class NotARetrainSchedule extends Error {
  override name = 'NotARetrainSchedule';
  constructor(
    readonly scheduleId: string,
    readonly actual: string,
  ) {
    super(`schedule ${scheduleId} starts ${actual}, not ${RETRAIN_WORKFLOW_TYPE}: nothing was triggered`);
  }
}

async function describeRetrain(client: Client, scheduleId: string): Promise<ScheduleDescription | null> {
  try {
    const d = await client.schedule.getHandle(scheduleId).describe();
    if (d.action.type !== 'startWorkflow' || d.action.workflowType !== RETRAIN_WORKFLOW_TYPE) throw new NotARetrainSchedule(scheduleId, d.action.type === 'startWorkflow' ? d.action.workflowType : d.action.type);
    return d;
  } catch (err) {
    if (err instanceof ScheduleNotFoundError) return null;
    throw err;
  }
}

/** The retrain schedule as an operator reads it; null when it does not exist. */
export async function retrainScheduleView(client: Client, scheduleId = DEFAULT_RETRAIN_SCHEDULE_ID): Promise<RetrainScheduleView | null> {
  const d = await describeRetrain(client, scheduleId);
  if (!d) return null;
  const last = d.info.recentActions.at(-1);
  return {
    scheduleId,
    everyMs: (d.spec.intervals ?? []).map((i) => i.every),
    paused: d.state.paused,
    nextRunAt: d.info.nextActionTimes[0] ?? null,
    lastRun: last ? { workflowId: last.action.workflow.workflowId, takenAt: last.takenAt } : null,
    running: d.info.runningActions.map((a) => a.workflow.workflowId),
  };
}

/**
 * Starts one retrain now through the schedule and names the run it started. The trigger RPC
 * returns nothing, so the run is found afterwards: the schedule's recent actions gain an entry
 * that was not there before (a paused schedule is triggered all the same; pausing stops the
 * timetable, not an operator).
 */
export async function triggerRetrainNow(client: Client, opts: { scheduleId?: string; confirmWithinMs?: number; pollMs?: number } = {}): Promise<RetrainTrigger> {
  const scheduleId = opts.scheduleId ?? DEFAULT_RETRAIN_SCHEDULE_ID;
  const confirmWithinMs = opts.confirmWithinMs ?? 10_000;
  const before = await describeRetrain(client, scheduleId);
  if (!before) return { outcome: 'no-schedule', scheduleId };
  if (before.info.runningActions.length > 0) return { outcome: 'already-running', scheduleId, workflowId: before.info.runningActions[0].workflow.workflowId };
  const runKey = (w: { workflowId: string; firstExecutionRunId: string }) => `${w.workflowId}\n${w.firstExecutionRunId}`;
  const seen = new Set(before.info.recentActions.map((a) => runKey(a.action.workflow)));
  const skippedBefore = before.info.numActionsSkippedOverlap;

  const handle = client.schedule.getHandle(scheduleId);
  try {
    await handle.trigger(ScheduleOverlapPolicy.SKIP);
  } catch (err) {
    if (err instanceof ScheduleNotFoundError) return { outcome: 'no-schedule', scheduleId }; // deleted in between
    throw err;
  }
  const started = Date.now();
  for (;;) {
    const d = await handle.describe();
    const fresh = d.info.recentActions.filter((a) => !seen.has(runKey(a.action.workflow)));
    if (fresh.length > 0) {
      // A timetable run that began in the same moment is fresh too; under SKIP ours was then
      // skipped, and the latest fresh run is the one in progress either way.
      const ours = fresh[fresh.length - 1].action.workflow;
      return { outcome: 'started', scheduleId, workflowId: ours.workflowId, runId: ours.firstExecutionRunId, paused: d.state.paused };
    }
    if (d.info.numActionsSkippedOverlap > skippedBefore && d.info.runningActions.length > 0) {
      return { outcome: 'already-running', scheduleId, workflowId: d.info.runningActions[0].workflow.workflowId };
    }
    const waited = Date.now() - started;
    if (waited >= confirmWithinMs) return { outcome: 'unconfirmed', scheduleId, waitedMs: waited };
    await new Promise((r) => setTimeout(r, opts.pollMs ?? 200));
  }
}

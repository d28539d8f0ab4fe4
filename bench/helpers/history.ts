import type { Client, WorkflowHandle } from '@temporalio/client';
import type { OrderIntent } from '../../lib/engine';
import type { PrepareResult } from '../../activities/trading';

/**
 * Reads SymbolTraderWorkflow histories back into candle steps, for the benchmarks: every figure
 * they print is measured between server-side event times, so nothing here trusts a clock of
 * the bench process.
 *
 * A step is one pass of the workflow's loop: TimerFired (the candle is due) -> prepareCandle
 * (a local activity's marker, or a regular activity's completion) -> zero or more executeIntents
 * -> the next TimerStarted (or the run's end), which is when the workflow had finished with it.
 */

type HistoryEvent = NonNullable<Awaited<ReturnType<WorkflowHandle['fetchHistory']>>['events']>[number];
type Payload = { metadata?: Record<string, Uint8Array> | null; data?: Uint8Array | null };

export interface ExecuteCall {
  intents: OrderIntent[];
  scheduledMs: number;
  /** ActivityTaskCompleted: the orders are on the exchange and in the ledger. */
  completedMs: number | null;
}

export interface CandleStep {
  runId: string;
  /** TimerFired: the candle became due. Null for a step that did not wait (a live start-up catching up). */
  dueMs: number | null;
  /** When the prepared candle was in history: the local activity's marker, or the regular activity's completion. */
  preparedMs: number | null;
  prepare: PrepareResult | null;
  /** How prepareCandle ran in this step. */
  prepareKind: 'local' | 'regular' | null;
  executes: ExecuteCall[];
  /** The next TimerStarted, or the end of the run: the workflow was done with the candle. */
  endMs: number | null;
  /** History events of the step, TimerFired through the TimerStarted (or run end) that closes it. */
  events: number;
  /** The timer this step waited on: as asked (startToFireTimeout) and as it took (TimerStarted -> TimerFired). */
  timer: { requestedMs: number; actualMs: number } | null;
}

export interface RunHistory {
  runId: string;
  events: HistoryEvent[];
}

export function eventMs(e: HistoryEvent): number {
  const t = e.eventTime;
  if (!t) throw new Error(`history event ${e.eventId} has no time`);
  return Number(t.seconds ?? 0) * 1000 + (t.nanos ?? 0) / 1e6;
}

function decodePayload(p: Payload | undefined | null): unknown {
  if (!p?.data) return undefined;
  const encoding = p.metadata?.encoding ? Buffer.from(p.metadata.encoding).toString() : 'json/plain';
  if (encoding === 'binary/null') return null;
  if (encoding !== 'json/plain') throw new Error(`cannot read a ${encoding} payload (the bench expects the default JSON converter)`);
  return JSON.parse(Buffer.from(p.data).toString('utf8'));
}

/** Every run of a workflow, oldest first, by following continue-as-new links back from the latest. */
export async function fetchRuns(client: Client, workflowId: string): Promise<RunHistory[]> {
  const runs: RunHistory[] = [];
  let runId: string | null | undefined = (await client.workflow.getHandle(workflowId).describe()).runId;
  for (let guard = 0; runId && guard < 1000; guard++) {
    const history = await client.workflow.getHandle(workflowId, runId).fetchHistory();
    const events = (history.events ?? []) as HistoryEvent[];
    const started = events[0]?.workflowExecutionStartedEventAttributes;
    if (!started) throw new Error(`${workflowId}: history of run ${runId} does not begin with WorkflowExecutionStarted`);
    runs.unshift({ runId, events });
    runId = started.continuedExecutionRunId;
  }
  return runs;
}

/** Runs `fn` over `items` with at most `limit` in flight. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (x: T, i: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i], i);
    }
  });
  await Promise.all(workers);
  return out;
}

/** The candle steps of one run. */
export function candleSteps(run: RunHistory): CandleStep[] {
  const steps: CandleStep[] = [];
  const scheduled = new Map<string, { name: string; input: unknown; ms: number }>();
  let cur: CandleStep | null = null;
  let timerStart: { ms: number; requestedMs: number } | null = null;
  const open = (dueMs: number | null): CandleStep => {
    cur = { runId: run.runId, dueMs, preparedMs: null, prepare: null, prepareKind: null, executes: [], endMs: null, events: 0, timer: null };
    steps.push(cur);
    return cur;
  };
  const end = (ms: number) => {
    if (cur && cur.endMs === null) {
      cur.endMs = ms;
      cur.events++;
    }
    cur = null;
  };
  for (const e of run.events) {
    const ms = eventMs(e);
    // Counted before the event is looked at; the event that opens a step is counted below.
    if (cur && !e.timerStartedEventAttributes && !e.timerFiredEventAttributes) (cur as CandleStep).events++;
    if (e.timerFiredEventAttributes) {
      const step = open(ms);
      step.events++;
      if (timerStart) step.timer = { requestedMs: timerStart.requestedMs, actualMs: ms - timerStart.ms };
      timerStart = null;
    } else if (e.timerStartedEventAttributes) {
      end(ms);
      const d = e.timerStartedEventAttributes.startToFireTimeout;
      timerStart = { ms, requestedMs: Number(d?.seconds ?? 0) * 1000 + (d?.nanos ?? 0) / 1e6 };
    } else if (e.markerRecordedEventAttributes) {
      const m = e.markerRecordedEventAttributes;
      // Patch markers (patched('...')) are markers too, and carry no activity type.
      if (m.markerName !== 'core_local_activity') continue;
      const data = decodePayload(m.details?.data?.payloads?.[0]) as { activityType?: string; activity_type?: string } | undefined;
      const type = data?.activityType ?? data?.activity_type;
      if (type !== undefined && type !== 'prepareCandle') continue;
      const step: CandleStep = cur && (cur as CandleStep).prepare === null ? cur : open(null);
      step.prepare = decodePayload(m.details?.result?.payloads?.[0]) as PrepareResult;
      step.preparedMs = ms;
      step.prepareKind = 'local';
    } else if (e.activityTaskScheduledEventAttributes) {
      const a = e.activityTaskScheduledEventAttributes;
      const name = a.activityType?.name ?? '?';
      scheduled.set(String(e.eventId), { name, input: decodePayload(a.input?.payloads?.[0]), ms });
      if (name === 'prepareCandle' && (!cur || (cur as CandleStep).prepare !== null)) open(null);
      if (name === 'executeIntents' && cur) {
        const args = scheduled.get(String(e.eventId))!.input as { intents?: OrderIntent[] } | undefined;
        (cur as CandleStep).executes.push({ intents: args?.intents ?? [], scheduledMs: ms, completedMs: null });
      }
    } else if (e.activityTaskCompletedEventAttributes) {
      const a = e.activityTaskCompletedEventAttributes;
      const s = scheduled.get(String(a.scheduledEventId));
      if (!s || !cur) continue;
      const step = cur as CandleStep;
      if (s.name === 'prepareCandle') {
        step.prepare = decodePayload(a.result?.payloads?.[0]) as PrepareResult;
        step.preparedMs = ms;
        step.prepareKind = 'regular';
      } else if (s.name === 'executeIntents') {
        const call = step.executes.find((x) => x.scheduledMs === s.ms && x.completedMs === null);
        if (call) call.completedMs = ms;
      }
    } else if (e.workflowExecutionCompletedEventAttributes || e.workflowExecutionContinuedAsNewEventAttributes || e.workflowExecutionTerminatedEventAttributes || e.workflowExecutionFailedEventAttributes) {
      end(ms);
    }
  }
  return steps;
}

/** A step that decided on a candle (prepare returned one). */
export function decided(s: CandleStep): boolean {
  return s.prepare?.input !== undefined && s.endMs !== null;
}

/** The first executeIntents of the step that placed an order (cancels alone do not count). */
export function firstOrderCall(s: CandleStep): ExecuteCall | undefined {
  return s.executes.find((x) => x.intents.some((i) => i.tag !== 'cancel'));
}

// --- statistics -----------------------------------------------------------------------------------

/** Nearest-rank percentile (p in 0..100) of finite and infinite values alike; NaN for none. */
export function percentile(xs: readonly number[], p: number): number {
  if (xs.length === 0) return NaN;
  const sorted = [...xs].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[rank - 1];
}

export interface Summary {
  n: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
}

export function summarize(xs: readonly number[]): Summary {
  const finite = xs.filter(Number.isFinite);
  return {
    n: xs.length,
    p50: percentile(xs, 50),
    p90: percentile(xs, 90),
    p99: percentile(xs, 99),
    max: xs.length ? Math.max(...xs) : NaN,
    mean: finite.length ? finite.reduce((a, b) => a + b, 0) / finite.length : NaN,
  };
}

export function fmtMs(x: number): string {
  if (Number.isNaN(x)) return '-';
  if (!Number.isFinite(x)) return 'never';
  return x >= 10_000 ? `${(x / 1000).toFixed(1)} s` : `${x.toFixed(1)} ms`;
}

export function fmtSummary(s: Summary): string {
  return `n=${s.n}  p50 ${fmtMs(s.p50)}  p90 ${fmtMs(s.p90)}  p99 ${fmtMs(s.p99)}  max ${fmtMs(s.max)}`;
}

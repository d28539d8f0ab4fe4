import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { type Client, ScheduleAlreadyRunning, ScheduleOverlapPolicy, type ScheduleDescription, type ScheduleOptionsStartWorkflowAction } from '@temporalio/client';
import { withTemporalClient } from '../connect';
import { z } from 'zod';
import { loadConfig } from '../../infra/config';
import { UsageError } from '../../infra/errors';
import { DEFAULT_RETRAIN_SCHEDULE_ID, DEFAULT_TRAINING_WINDOW_DAYS, RETRAIN_WORKFLOW_TYPE, TRAINING_TASK_QUEUE, type RetrainInput } from '../../lib/contracts/retrain';
import { parseWindowDays, storeSeries, type SeriesDefaults } from '../candle-args';

/**
 * `trader schedule retrain --every 7d [--exchange ID] [--symbols A,B] [--timeframe TF] [--window 365d] [--no-download]
 *                         [--seed N] [--ppo-steps N] [--id ID]`
 * `trader schedule retrain --every 7d --data FILE... [--seed N] [--ppo-steps N] [--id ID]`
 * `trader schedule list`
 *
 * A Temporal Schedule that starts RetrainWorkflow on the `training` task queue every interval,
 * overlap SKIP (a retrain still running when the next is due makes the next one skip, never
 * queue up behind it or run beside it). Running the command again updates the schedule in
 * place (same id), so it is safe in a provisioning script.
 *
 * By default each run trains on the candle store's most recent window (--window, default
 * DEFAULT_TRAINING_WINDOW_DAYS days) of EXCHANGE, SYMBOLS and TIMEFRAME as configured when the
 * command runs (written into the schedule, so `trader schedule list` and the Temporal UI show
 * what it trains on), downloading what the store lacks first: a weekly schedule trains on the
 * latest week too. `--data FILE...` trains on fixed files instead, which the training worker
 * must be able to read.
 */

const UNIT_MS: Record<string, number> = { m: 60_000, h: 3_600_000, d: 86_400_000, w: 7 * 86_400_000 };

/** '30m', '12h', '7d', '2w' -> milliseconds (at least one minute, at most a year). */
export function parseEvery(text: string): number {
  const m = /^([1-9]\d{0,5})([mhdw])$/.exec(String(text).trim());
  const ms = m ? Number(m[1]) * UNIT_MS[m[2]] : NaN;
  if (!(ms >= 60_000 && ms <= 366 * 86_400_000)) throw new UsageError(`--every '${text}': expected a number and a unit m, h, d or w (e.g. 7d, 12h), from 1m to 366d`);
  return ms;
}

export interface RetrainScheduleOptions {
  scheduleId?: string;
  everyMs: number;
  input: RetrainInput;
  taskQueue?: string;
}

export interface ScheduleRow {
  scheduleId: string;
  workflowType?: string;
  everyMs: number[];
  paused: boolean;
  nextActionTimes: Date[];
  recentActions: { scheduledAt: Date; workflowId: string }[];
}

function action(opts: RetrainScheduleOptions): ScheduleOptionsStartWorkflowAction<(input: RetrainInput) => Promise<unknown>> {
  const scheduleId = opts.scheduleId ?? DEFAULT_RETRAIN_SCHEDULE_ID;
  return {
    type: 'startWorkflow',
    workflowType: RETRAIN_WORKFLOW_TYPE,
    taskQueue: opts.taskQueue ?? TRAINING_TASK_QUEUE,
    // The schedule appends the scheduled time, so every run has its own id.
    workflowId: `retrain/${scheduleId}`,
    args: [opts.input],
    staticSummary: `Scheduled retrain (${scheduleId})`,
  };
}

/** Creates the schedule, or updates the one with the same id. */
export async function upsertRetrainSchedule(client: Client, opts: RetrainScheduleOptions): Promise<{ created: boolean; description: ScheduleDescription }> {
  const scheduleId = opts.scheduleId ?? DEFAULT_RETRAIN_SCHEDULE_ID;
  const spec = { intervals: [{ every: opts.everyMs }] };
  const policies = { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: 86_400_000 };
  let created = true;
  try {
    await client.schedule.create({ scheduleId, spec, action: action(opts), policies, state: { note: 'created by trader schedule retrain' } });
  } catch (err) {
    if (!(err instanceof ScheduleAlreadyRunning)) throw err;
    created = false;
    await client.schedule.getHandle(scheduleId).update((prev) => ({
      ...prev,
      spec,
      action: action(opts),
      policies: { ...prev.policies, ...policies },
      state: { ...prev.state, note: 'updated by trader schedule retrain' },
    }));
  }
  return { created, description: await client.schedule.getHandle(scheduleId).describe() };
}

export async function listSchedules(client: Client): Promise<ScheduleRow[]> {
  const rows: ScheduleRow[] = [];
  for await (const s of client.schedule.list()) {
    rows.push({
      scheduleId: s.scheduleId,
      workflowType: s.action?.workflowType,
      everyMs: (s.spec?.intervals ?? []).map((i) => i.every),
      paused: s.state.paused,
      nextActionTimes: s.info.nextActionTimes,
      recentActions: s.info.recentActions.map((a) => ({ scheduledAt: a.scheduledAt, workflowId: a.action.workflow.workflowId })),
    });
  }
  return rows.sort((a, b) => a.scheduleId.localeCompare(b.scheduleId));
}

export function formatEvery(ms: number): string {
  for (const [unit, size] of [['w', UNIT_MS.w], ['d', UNIT_MS.d], ['h', UNIT_MS.h], ['m', UNIT_MS.m]] as const) if (ms % size === 0) return `${ms / size}${unit}`;
  return `${Math.round(ms / 1000)}s`;
}

const INT = /^\d+$/;
export const ScheduleRetrainOptions = z.object({
  every: z.string({ error: '--every is required (e.g. 7d)' }).min(1),
  data: z.array(z.string().min(1)).optional(),
  exchange: z.string().optional(),
  symbols: z.union([z.string(), z.array(z.string())]).optional(),
  timeframe: z.string().optional(),
  window: z.string().optional(),
  /** commander's --no-download. */
  download: z.boolean().optional(),
  seed: z.string().regex(INT, '--seed: expected a non-negative integer').optional(),
  ppoSteps: z.string().regex(INT, '--ppo-steps: expected a positive integer').optional(),
  id: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/, '--id: letters, digits, dots, dashes or underscores').optional(),
});
export type ScheduleRetrainOptions = z.input<typeof ScheduleRetrainOptions>;

/** Validates the command's options into what upsertRetrainSchedule takes; `defaults` are EXCHANGE, SYMBOLS and TIMEFRAME. */
export function retrainScheduleFromOptions(raw: unknown, defaults: SeriesDefaults): RetrainScheduleOptions {
  const parsed = ScheduleRetrainOptions.safeParse(raw);
  if (!parsed.success) throw new UsageError(parsed.error.issues.map((i) => i.message).join('; '));
  const o = parsed.data;
  const everyMs = parseEvery(o.every);
  const storeFlags = ([['--exchange', o.exchange], ['--symbols', o.symbols], ['--timeframe', o.timeframe], ['--window', o.window], ['--no-download', o.download === false ? true : undefined]] as const)
    .filter(([, v]) => v !== undefined)
    .map(([flag]) => flag);
  if (o.data !== undefined && storeFlags.length > 0) throw new UsageError(`--data trains on fixed files; ${storeFlags.join(', ')} ${storeFlags.length === 1 ? 'chooses' : 'choose'} the candle store's window: give one or the other`);
  const data = (o.data ?? []).map((f) => {
    if (!existsSync(f)) throw new UsageError(`--data ${f}: no such file`);
    if (statSync(f).isDirectory()) throw new UsageError(`--data ${f}: is a directory; give the candle CSV files`);
    return path.resolve(f);
  });
  const settings: RetrainInput['settings'] = {};
  if (o.seed !== undefined) settings.seed = Number(o.seed);
  if (o.ppoSteps !== undefined) {
    const n = Number(o.ppoSteps);
    if (n < 64) throw new UsageError(`--ppo-steps ${o.ppoSteps}: at least 64`);
    settings.ppoSteps = n;
  }
  if (o.data !== undefined) return { scheduleId: o.id, everyMs, input: { data, settings } };
  const { exchange, symbols, timeframe } = storeSeries(o, defaults);
  const windowDays = o.window === undefined ? DEFAULT_TRAINING_WINDOW_DAYS : parseWindowDays('--window', o.window);
  return { scheduleId: o.id, everyMs, input: { store: { exchange, symbols, timeframe, windowDays, download: o.download ?? true }, settings } };
}

const withClient = withTemporalClient;

/** `trader schedule retrain --every INTERVAL`. */
export async function scheduleRetrainCommand(raw: ScheduleRetrainOptions): Promise<void> {
  const cfg = loadConfig();
  const opts = retrainScheduleFromOptions(raw, { exchange: cfg.exchange.id, symbols: cfg.symbols, timeframe: cfg.timeframe });
  const r = await withClient(cfg, (client) => upsertRetrainSchedule(client, opts));
  const d = r.description;
  console.log(`${r.created ? 'created' : 'updated'} schedule ${d.scheduleId}: ${RETRAIN_WORKFLOW_TYPE} on task queue ${TRAINING_TASK_QUEUE} every ${formatEvery(opts.everyMs)}, overlap ${d.policies.overlap}`);
  const st = opts.input.store;
  console.log(
    st
      ? `each run trains on the last ${st.windowDays} days of ${st.exchange} ${st.symbols.join(', ')} ${st.timeframe} in the candle store${st.download ? ', downloading what it lacks first' : ' (nothing downloaded)'}`
      : `each run trains on ${opts.input.data?.length} file(s): ${opts.input.data?.join(', ')}`,
  );
  const next = d.info.nextActionTimes[0];
  if (next) console.log(`next run ${next.toISOString()}; a training worker must poll the queue (trader worker --queue training, or trader up)`);
}

/** `trader schedule list`. */
export async function scheduleListCommand(): Promise<void> {
  const cfg = loadConfig();
  const rows = await withClient(cfg, listSchedules);
  if (rows.length === 0) console.log('no schedules');
  for (const r of rows) {
    const last = r.recentActions.at(-1);
    console.log(
      `${r.scheduleId}  ${r.workflowType ?? '-'}  every ${r.everyMs.map(formatEvery).join(', ') || '-'}  ${r.paused ? 'PAUSED' : 'active'}  next ${r.nextActionTimes[0]?.toISOString() ?? '-'}  last ${last ? `${last.scheduledAt.toISOString()} (${last.workflowId})` : '-'}`,
    );
  }
}

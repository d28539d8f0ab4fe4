import fs from 'node:fs';
import path from 'node:path';
import type postgres from 'postgres';
import { z } from 'zod';
import { UsageError } from '../infra/errors';
import type { Logger } from '../infra/logger';
import type { Stack } from '../infra/stack';
import { CandleSelection, CandleStore, Ledger } from '../ledger';
import { FEATURE_SCHEMA } from '../lib/features';
import type { ReplaySeries } from '../activities/trading/venue';

/**
 * A replay, shared by every process that serves it: `trader up --replay` starts it, any number
 * of `trader worker --replay` processes join it (the chaos tests kill and restart them).
 *
 * All of them must replay the very same candles with the same settings, or their activities
 * would decide differently. So `up` writes the plan into the replay's own database (an audit row
 * `replay.started`), and with candles from the candle store it also copies the series there:
 * the replay database, fresh for each replay, then holds exactly what is replayed, whatever is
 * downloaded into the main store meanwhile. A joining worker reads both from that database, the
 * one place every worker of the cluster reaches. Files are named by absolute path and must exist
 * on the joining worker's machine too.
 */

export const REPLAY_DATABASE = 'ledger_replay';

export const ReplayPlan = z
  .object({
    files: z.array(z.string().min(1)).min(1).optional(),
    store: CandleSelection.optional(),
    strategy: z.string().min(1),
    strategyParams: z.record(z.string(), z.unknown()).optional(),
    initialCapital: z.number().positive(),
  })
  .refine((p) => (p.files === undefined) !== (p.store === undefined), 'a replay reads either candle files or the candle store');
export type ReplayPlan = z.infer<typeof ReplayPlan>;

/** What the replay venue is built from (activities/trading/venue.ts replayVenue). */
export interface ReplayInput {
  files?: string[];
  series?: ReplaySeries[];
}

const STARTED = 'replay.started';

/**
 * For `trader up --replay`, on the fresh replay database: reads store series from the main
 * database and copies them into the replay's, then records the plan. Returns the replay's input
 * and notes for the operator (gaps in the data).
 */
export async function startReplay(stack: Stack, plan: ReplayPlan, log: Logger): Promise<{ input: ReplayInput; notes: string[] }> {
  const ledger = new Ledger(stack.db.sql, { actor: 'trader', log });
  if (plan.files) {
    const files = plan.files.map((f) => path.resolve(f));
    await ledger.audit(STARTED, { ...plan, files });
    return { input: { files }, notes: [] };
  }
  const sel = plan.store!;
  const main = new CandleStore(await stack.db.defaultDatabase());
  const replayStore = new CandleStore(stack.db.sql);
  const series: ReplaySeries[] = [];
  const notes: string[] = [];
  for (const symbol of sel.symbols) {
    const candles = await main.candles(sel.exchange, symbol, sel.timeframe, { since: sel.since, until: sel.until });
    const range = `${iso(sel.since)} .. ${iso(sel.until)}`;
    const download = `trader data download --exchange ${sel.exchange} --symbols ${symbol} --timeframe ${sel.timeframe} --since ${iso(sel.since)} --until ${iso(sel.until)}`;
    if (candles.length === 0) throw new UsageError(`the candle store has no ${sel.exchange} ${symbol} ${sel.timeframe} candles in ${range}; download them first: ${download}`);
    if (candles.length <= FEATURE_SCHEMA.warmup) {
      throw new UsageError(`the candle store has ${candles.length} ${sel.exchange} ${symbol} ${sel.timeframe} candles in ${range}; the features need ${FEATURE_SCHEMA.warmup + 1} before a first decision: start earlier (--since)`);
    }
    const runs = await main.runs(sel.exchange, symbol, sel.timeframe, { since: sel.since, until: sel.until });
    if (runs.length > 1) notes.push(`${symbol}: ${runs.length - 1} gap(s) in the stored candles; the candle after each gap is not traded on (trader data list shows them)`);
    await replayStore.upsert(sel.exchange, symbol, sel.timeframe, candles);
    series.push({ symbol, timeframe: sel.timeframe, label: `store:${sel.exchange}`, candles });
  }
  await ledger.audit(STARTED, { ...plan, candles: Object.fromEntries(series.map((s) => [s.symbol, s.candles.length])) });
  return { input: { series }, notes };
}

/**
 * For `trader worker --replay`, on the replay database: the plan `trader up --replay` recorded,
 * and its candles. Refused when no replay was started there.
 */
export async function joinReplay(sql: postgres.Sql): Promise<{ plan: ReplayPlan; input: ReplayInput; startedAt: Date }> {
  const [row] = await sql<{ payload: unknown; ts: Date }[]>`select payload, ts from audit_log where event = ${STARTED} order by id desc limit 1`;
  if (!row) throw new UsageError(`no replay to join: database ${REPLAY_DATABASE} has none; start one with \`trader up --replay ...\` first`);
  const parsed = ReplayPlan.safeParse(row.payload);
  if (!parsed.success) throw new UsageError(`the replay recorded in ${REPLAY_DATABASE} cannot be read by this version (${parsed.error.issues[0]?.message}); restart it with \`trader up --replay\``);
  const plan = parsed.data;
  if (plan.files) {
    const absent = plan.files.filter((f) => !fs.existsSync(f));
    if (absent.length > 0) throw new UsageError(`the replay reads candle files this machine does not have: ${absent.join(', ')}`);
    return { plan, input: { files: plan.files }, startedAt: row.ts };
  }
  const sel = plan.store!;
  const series: ReplaySeries[] = (await new CandleStore(sql).select(sel)).map((s) => ({ symbol: s.symbol, timeframe: sel.timeframe, label: `store:${sel.exchange}`, candles: s.candles }));
  return { plan, input: { series }, startedAt: row.ts };
}

const iso = (ms: number) => new Date(ms).toISOString().replace(':00.000Z', 'Z').replace('T00:00Z', '');

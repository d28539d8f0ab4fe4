import type postgres from 'postgres';

/**
 * Hyperopt runs and their trials in the ledger database (migration 0011): written by the research
 * activities, read by the run's last activity (the overfitting guard and the holdout), the CLI's
 * --json and --apply, and the report. Every write is an upsert keyed by (run, trial number), so a
 * retried activity never adds a second row.
 */

export interface HyperoptTrialRow {
  runId: string;
  number: number;
  key: string;
  params: Record<string, unknown>;
  state: 'complete' | 'fail';
  loss: number | null;
  error?: string | null;
  figures?: unknown;
  returns?: number[] | null;
  days?: string[] | null;
  trades?: number | null;
  worker?: string | null;
  durationMs?: number | null;
}

export interface HyperoptRunRow {
  runId: string;
  config: Record<string, unknown>;
  createdAt: Date;
  finishedAt: Date | null;
  result: Record<string, unknown> | null;
}

type Row = Record<string, unknown>;

export class HyperoptStore {
  constructor(private readonly sql: postgres.Sql) {}

  /** Records a run's configuration once; a second call for the same run keeps the first. */
  async recordRun(runId: string, config: Record<string, unknown>): Promise<void> {
    await this.sql`insert into hyperopt_runs (run_id, config) values (${runId}, ${this.sql.json(config as postgres.JSONValue)}) on conflict (run_id) do nothing`;
  }

  async run(runId: string): Promise<HyperoptRunRow | null> {
    const [r] = await this.sql<Row[]>`select run_id, config, created_at, finished_at, result from hyperopt_runs where run_id = ${runId}`;
    return r ? { runId: r.run_id as string, config: r.config as Record<string, unknown>, createdAt: r.created_at as Date, finishedAt: (r.finished_at as Date | null) ?? null, result: (r.result as Record<string, unknown> | null) ?? null } : null;
  }

  async finishRun(runId: string, result: Record<string, unknown>): Promise<void> {
    await this.sql`update hyperopt_runs set result = ${this.sql.json(result as postgres.JSONValue)}, finished_at = coalesce(finished_at, now()) where run_id = ${runId}`;
  }

  /** Writes a trial; the same (run, number) again replaces it (a retried activity computes the same). */
  async recordTrial(t: HyperoptTrialRow): Promise<void> {
    const json = (v: unknown) => (v === undefined || v === null ? null : this.sql.json(v as postgres.JSONValue));
    await this.sql`
      insert into hyperopt_trials (run_id, number, key, params, state, loss, error, figures, returns, days, trades, worker, duration_ms)
      values (${t.runId}, ${t.number}, ${t.key}, ${this.sql.json(t.params as postgres.JSONValue)}, ${t.state}, ${t.loss}, ${t.error ?? null},
              ${json(t.figures)}, ${json(t.returns)}, ${json(t.days)}, ${t.trades ?? null}, ${t.worker ?? null}, ${t.durationMs ?? null})
      on conflict (run_id, number) do update set
        key = excluded.key, params = excluded.params, state = excluded.state, loss = excluded.loss, error = excluded.error,
        figures = excluded.figures, returns = excluded.returns, days = excluded.days, trades = excluded.trades,
        worker = excluded.worker, duration_ms = excluded.duration_ms, finished_at = now()`;
  }

  /** A run's trials by number; `withReturns` false leaves the per-day returns out (they are the bulk). */
  async trials(runId: string, opts: { withReturns?: boolean } = {}): Promise<HyperoptTrialRow[]> {
    const rows = await this.sql<Row[]>`
      select number, key, params, state, loss, error, figures, trades, worker, duration_ms
        ${opts.withReturns === false ? this.sql`` : this.sql`, returns, days`}
      from hyperopt_trials where run_id = ${runId} order by number`;
    return rows.map((r) => ({
      runId,
      number: r.number as number,
      key: r.key as string,
      params: r.params as Record<string, unknown>,
      state: r.state as 'complete' | 'fail',
      loss: (r.loss as number | null) ?? null,
      error: (r.error as string | null) ?? null,
      figures: r.figures ?? null,
      returns: (r.returns as number[] | undefined) ?? null,
      days: (r.days as string[] | undefined) ?? null,
      trades: (r.trades as number | null) ?? null,
      worker: (r.worker as string | null) ?? null,
      durationMs: (r.duration_ms as number | null) ?? null,
    }));
  }

  /** Runs, newest first. */
  async runs(limit = 20): Promise<Array<Pick<HyperoptRunRow, 'runId' | 'createdAt' | 'finishedAt'> & { trials: number }>> {
    const rows = await this.sql<Row[]>`
      select r.run_id, r.created_at, r.finished_at, (select count(*) from hyperopt_trials t where t.run_id = r.run_id)::int as trials
      from hyperopt_runs r order by r.created_at desc limit ${limit}`;
    return rows.map((r) => ({ runId: r.run_id as string, createdAt: r.created_at as Date, finishedAt: (r.finished_at as Date | null) ?? null, trials: r.trials as number }));
  }
}

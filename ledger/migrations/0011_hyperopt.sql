-- Hyperopt runs (trader hyperopt) and their trials. Optuna keeps its own study in schema
-- `optuna` (the sampler's storage); these tables keep what the overfitting guard and the report
-- read: every trial's parameters, loss, per-fold figures and per-day returns. A trial is written
-- once per (run, number): a retried activity writes the same row again (upsert), so a run never
-- counts a trial twice.
create table hyperopt_runs (
  run_id text primary key check (run_id ~ '^[A-Za-z0-9_.-]{1,80}$'),
  config jsonb not null check (jsonb_typeof(config) = 'object'),
  created_at timestamptz not null default now(),
  finished_at timestamptz,
  result jsonb check (result is null or jsonb_typeof(result) = 'object')
);

create table hyperopt_trials (
  run_id text not null references hyperopt_runs (run_id) on delete cascade,
  number integer not null check (number >= 0),
  key text not null,
  params jsonb not null check (jsonb_typeof(params) = 'object'),
  state text not null check (state in ('complete', 'fail')),
  loss double precision,
  error text,
  figures jsonb,
  returns jsonb check (returns is null or jsonb_typeof(returns) = 'array'),
  days jsonb check (days is null or jsonb_typeof(days) = 'array'),
  trades integer,
  worker text,
  duration_ms integer,
  finished_at timestamptz not null default now(),
  primary key (run_id, number),
  unique (run_id, key),
  check ((state = 'complete') = (loss is not null))
);

create table candles (
  exchange text not null check (exchange ~ '^[a-z0-9]+$'),
  symbol text not null check (symbol ~ '^[A-Za-z0-9._-]+/[A-Za-z0-9._-]+(:[A-Za-z0-9._-]+)?$'),
  timeframe text not null check (timeframe ~ '^[1-9][0-9]*[smhdwM]$'),
  -- candle OPEN time, as in the recorded CSVs
  open_time timestamptz not null,
  open numeric not null check (open > 0),
  high numeric not null,
  low numeric not null check (low > 0),
  close numeric not null check (close > 0),
  volume numeric not null check (volume >= 0),
  primary key (exchange, symbol, timeframe, open_time),
  -- an inverted candle is a broken row, not a price: refuse it rather than store it
  constraint candles_range_check check (high >= greatest(open, close, low) and low <= least(open, close))
);

create table model_versions (
  id text primary key check (id ~ '^[[:graph:]]{1,200}$'),
  kind text not null check (kind ~ '^[a-z][a-z0-9_-]*$'),
  feature_schema_hash text not null check (feature_schema_hash ~ '^[[:graph:]]{8,128}$'),
  data_from timestamptz not null,
  data_to timestamptz not null,
  metrics jsonb not null default '{}'::jsonb check (jsonb_typeof(metrics) = 'object'),
  artifact_path text not null check (artifact_path <> ''),
  role text not null default 'challenger' check (role in ('champion', 'challenger', 'retired')),
  created_at timestamptz not null default now(),
  promoted_at timestamptz,
  constraint model_versions_data_range_check check (data_to > data_from)
);
-- the traders load "the champion" of a kind: there must never be two
create unique index model_versions_one_champion on model_versions (kind) where role = 'champion';

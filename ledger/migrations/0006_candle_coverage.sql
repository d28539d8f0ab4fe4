-- What the candle store has asked exchanges for, beside the candles themselves: a span here
-- was downloaded, and every candle the exchange has in it is in `candles`. A span with no
-- candles in it is a gap of the exchange itself (an outage, or before the market was listed),
-- which a later download must not ask for again; a hole outside every span was never fetched.
-- Spans of one series never overlap or touch: the store merges them on write.
create table candle_coverage (
  exchange text not null check (exchange ~ '^[a-z0-9]+$'),
  symbol text not null check (symbol ~ '^[A-Za-z0-9._-]+/[A-Za-z0-9._-]+(:[A-Za-z0-9._-]+)?$'),
  timeframe text not null check (timeframe ~ '^[1-9][0-9]*[smhdwM]$'),
  -- open times: from_time inclusive, to_time exclusive
  from_time timestamptz not null,
  to_time timestamptz not null,
  fetched_at timestamptz not null default now(),
  primary key (exchange, symbol, timeframe, from_time),
  constraint candle_coverage_span_check check (to_time > from_time)
);

-- What each model version was trained on: one entry per candle series (symbol, exchange,
-- timeframe, candle count and range, sha256 of the data), copied from its manifest. Versions
-- registered before this column existed keep an empty list; their manifests name their files.
alter table model_versions
  add column trained_on jsonb not null default '[]'::jsonb
  constraint model_versions_trained_on_check check (jsonb_typeof(trained_on) = 'array');

-- Which strategy decided an order (entries and signal exits): name, version, and short hashes of
-- its source and parameters; and the strategy's tag of an entry. A trade's strategy is its entry
-- order's (ledger/report-queries.ts). Null for orders decided before strategies were files, and
-- for the engine's own protective orders.
alter table orders add column strategy jsonb
  check (strategy is null or (jsonb_typeof(strategy) = 'object' and strategy ? 'name' and strategy ? 'version' and strategy ? 'source' and strategy ? 'params'));
alter table orders add column entry_tag text check (entry_tag is null or entry_tag ~ '^[[:print:]]{1,40}$');

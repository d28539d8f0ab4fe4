-- Fills are the facts; positions and trades are what the ledger derives from them (and can
-- derive again: Ledger.rebuildPositionsFromFills). Money and quantities are numeric, never
-- floats; numeric comes back to TypeScript as a decimal string.

create table fills (
  id bigint generated always as identity primary key,
  exchange text not null,
  -- the exchange's trade id: a fill reported twice (retries, websocket + REST) is one row
  fill_id text not null check (fill_id ~ '^[[:graph:]]{1,200}$'),
  order_id bigint not null,
  qty numeric not null check (qty > 0),
  price numeric not null check (price > 0),
  -- negative when the venue pays a maker rebate
  fee numeric not null default 0,
  fee_currency text check (fee_currency ~ '^[A-Za-z0-9._-]{1,20}$'),
  -- the fee in the symbol's quote currency: what PnL is net of
  fee_quote numeric not null,
  -- change in base-asset holdings: a buy whose fee is charged in the base asset delivers less
  position_qty_delta numeric not null check (position_qty_delta <> 0),
  ts timestamptz not null,
  recorded_at timestamptz not null default now(),
  unique (exchange, fill_id),
  foreign key (order_id, exchange) references orders (id, exchange),
  constraint fills_fee_currency_required_check check (fee = 0 or fee_currency is not null)
);
create index fills_order on fills (order_id);

create trigger fills_append_only before update or delete on fills
  for each row execute function reject_mutation();
create trigger fills_no_truncate before truncate on fills
  for each statement execute function reject_mutation();

-- Long-only spot: average-cost basis. qty is what is held (entry_qty - exit_qty, exactly);
-- realized_pnl is net of every fee paid on the position, entry fees included.
create table positions (
  id bigint generated always as identity primary key,
  exchange text not null check (exchange ~ '^[a-z0-9]+$'),
  symbol text not null check (symbol ~ '^[A-Za-z0-9._-]+/[A-Za-z0-9._-]+(:[A-Za-z0-9._-]+)?$'),
  status text not null default 'open' check (status in ('open', 'closed')),
  qty numeric not null check (qty >= 0),
  avg_entry_price numeric not null check (avg_entry_price > 0),
  entry_qty numeric not null check (entry_qty > 0),
  exit_qty numeric not null default 0 check (exit_qty >= 0),
  exit_notional numeric not null default 0 check (exit_notional >= 0),
  realized_pnl numeric not null default 0,
  fees numeric not null default 0,
  opened_at timestamptz not null,
  closed_at timestamptz,
  updated_at timestamptz not null default now(),
  constraint positions_qty_balance_check check (qty = entry_qty - exit_qty),
  constraint positions_closed_at_check check ((status = 'open') = (closed_at is null)),
  constraint positions_open_qty_check check ((status = 'open') = (qty > 0))
);
-- at most one open position per market: two workflows (or a retry racing its original) cannot
-- both open one
create unique index positions_one_open on positions (exchange, symbol) where status = 'open';
create index positions_market on positions (exchange, symbol, id);

-- closed round trips, one per closed position
create table trades (
  id bigint generated always as identity primary key,
  position_id bigint not null unique references positions (id),
  exchange text not null,
  symbol text not null,
  side text not null default 'long' check (side in ('long')),
  qty numeric not null check (qty > 0),
  entry_time timestamptz not null,
  entry_price numeric not null check (entry_price > 0),
  exit_time timestamptz not null,
  exit_price numeric not null check (exit_price > 0),
  fees numeric not null,
  pnl numeric not null,
  exit_reason text,
  created_at timestamptz not null default now()
);
create index trades_exit_time on trades (exit_time);

create trigger trades_append_only before update or delete on trades
  for each row execute function reject_mutation();

create table equity_snapshots (
  id bigint generated always as identity primary key,
  ts timestamptz not null unique,
  equity numeric not null check (equity >= 0),
  -- spot only: cash cannot go below zero
  cash numeric not null check (cash >= 0),
  created_at timestamptz not null default now()
);

-- The paper exchange's accounts (activities/exchange/paper-state-pg.ts): what DRY_RUN's venue
-- holds, so that a restart finds the same balances, resting orders, fills and match cursors.
-- This is the simulated VENUE's state, kept apart from the ledger's orders/fills on purpose: the
-- ledger records what the bot did, these tables what the exchange did, and reconciliation
-- compares the two. Quantities and money are numeric, never floats.

create table paper_accounts (
  account text primary key check (account ~ '^[[:graph:]]{1,200}$'),
  -- optimistic concurrency: a commit names the version it read and bumps it by one
  version bigint not null check (version > 0),
  -- false after a reset: the account reads as never stored, but its version keeps counting, so
  -- a writer that read it before the reset cannot commit over the fresh account (no ABA)
  live boolean not null default true,
  next_id bigint not null check (next_id > 0),
  updated_at timestamptz not null default now()
);

create table paper_balances (
  account text not null references paper_accounts (account),
  currency text not null check (currency ~ '^[[:graph:]]{1,40}$'),
  -- spot: a balance cannot go below zero, so a double spend fails here even if code missed it
  total numeric not null check (total >= 0),
  primary key (account, currency)
);

create table paper_orders (
  account text not null references paper_accounts (account),
  id text not null check (id ~ '^[[:graph:]]{1,200}$'),
  -- placement order: orders are listed in it
  seq bigint generated always as identity,
  client_order_id text,
  symbol text not null,
  side text not null check (side in ('buy', 'sell')),
  type text not null check (type in ('market', 'limit', 'stop_market', 'stop_limit', 'other')),
  status text not null check (status in ('open', 'closed', 'canceled', 'expired', 'rejected')),
  qty numeric not null check (qty >= 0),
  filled_qty numeric not null check (filled_qty >= 0),
  price numeric,
  stop_price numeric,
  avg_fill_price numeric,
  cost numeric,
  fee_cost numeric,
  fee_currency text,
  created_at timestamptz,
  updated_at timestamptz,
  reason text,
  primary key (account, id),
  constraint paper_orders_fee_check check ((fee_cost is null) = (fee_currency is null))
);
-- the paper exchange returns the existing order for a repeated client order id: one per account
create unique index paper_orders_client_order_id on paper_orders (account, client_order_id) where client_order_id is not null;
create index paper_orders_open on paper_orders (account, symbol) where status = 'open';

create table paper_fills (
  account text not null,
  id text not null check (id ~ '^[[:graph:]]{1,200}$'),
  seq bigint generated always as identity,
  order_id text not null,
  client_order_id text not null,
  symbol text not null,
  side text not null check (side in ('buy', 'sell')),
  qty numeric not null check (qty > 0),
  price numeric not null check (price > 0),
  cost numeric not null,
  fee numeric not null,
  fee_currency text not null,
  liquidity text not null check (liquidity in ('maker', 'taker')),
  ts timestamptz not null,
  candle_ts timestamptz,
  primary key (account, id),
  foreign key (account, order_id) references paper_orders (account, id)
);

create table paper_cursors (
  account text not null references paper_accounts (account),
  symbol text not null,
  -- open time of the last candle matched against this market's open orders
  candle_ts timestamptz not null,
  primary key (account, symbol)
);

-- Orders and their lifecycle. The allowed transitions live in a table that a trigger checks on
-- every UPDATE, so the state machine holds for every writer, not only for callers that go
-- through ledger.ts (an API-side `WHERE status = ANY(...)` guard is skipped by any other
-- UPDATE). lib/order-status.ts holds the same table; test/ledger.test.ts keeps them equal.

create table order_status_transitions (
  from_status text not null,
  to_status text not null,
  primary key (from_status, to_status)
);
insert into order_status_transitions (from_status, to_status) values
  ('intent', 'submitted'), ('intent', 'open'), ('intent', 'partially_filled'), ('intent', 'filled'),
  ('intent', 'canceled'), ('intent', 'rejected'), ('intent', 'expired'),
  ('submitted', 'open'), ('submitted', 'partially_filled'), ('submitted', 'filled'),
  ('submitted', 'canceled'), ('submitted', 'rejected'), ('submitted', 'expired'),
  ('open', 'partially_filled'), ('open', 'filled'), ('open', 'canceled'), ('open', 'expired'),
  ('partially_filled', 'partially_filled'), ('partially_filled', 'filled'),
  ('partially_filled', 'canceled'), ('partially_filled', 'expired');

create table orders (
  id bigint generated always as identity primary key,
  -- derived from workflow id + candle time + intent: the at-most-once key of the whole system
  client_order_id text not null unique check (client_order_id ~ '^[[:graph:]]{1,100}$'),
  exchange_order_id text check (exchange_order_id ~ '^[[:graph:]]{1,200}$'),
  exchange text not null check (exchange ~ '^[a-z0-9]+$'),
  symbol text not null check (symbol ~ '^[A-Za-z0-9._-]+/[A-Za-z0-9._-]+(:[A-Za-z0-9._-]+)?$'),
  side text not null check (side in ('buy', 'sell')),
  type text not null check (type in ('market', 'limit', 'stop_market', 'stop_limit', 'take_profit_market', 'take_profit_limit')),
  qty numeric not null check (qty > 0),
  -- a market order may carry the decision's reference price (for slippage reports)
  price numeric check (price > 0),
  stop_price numeric check (stop_price > 0),
  status text not null default 'intent'
    check (status in ('intent', 'submitted', 'open', 'partially_filled', 'filled', 'canceled', 'rejected', 'expired')),
  -- why the last transition happened (an exchange's reject message, 'kill switch', ...)
  status_reason text,
  -- a status of 'filled' may arrive before its fills, so this is not tied to the status
  filled_qty numeric not null default 0,
  workflow_id text,
  decision_seq bigint check (decision_seq >= 0),
  -- why the order was decided (signal, stop_loss, take_profit, emergency_close, ...)
  reason text,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint orders_filled_qty_check check (filled_qty >= 0 and filled_qty <= qty),
  constraint orders_price_required_check check (type not in ('limit', 'stop_limit', 'take_profit_limit') or price is not null),
  constraint orders_stop_price_required_check check ((type in ('stop_market', 'stop_limit', 'take_profit_market', 'take_profit_limit')) = (stop_price is not null)),
  -- fills reference (id, exchange) so a fill cannot claim another venue's order
  unique (id, exchange)
);
create unique index orders_exchange_order_id on orders (exchange, exchange_order_id) where exchange_order_id is not null;
create index orders_live on orders (exchange, symbol) where status in ('intent', 'submitted', 'open', 'partially_filled');
create index orders_symbol_created on orders (exchange, symbol, created_at);

create table order_events (
  id bigint generated always as identity primary key,
  order_id bigint not null references orders (id),
  from_status text,
  to_status text not null,
  reason text,
  exchange_order_id text,
  ts timestamptz not null default clock_timestamp()
);
create index order_events_order on order_events (order_id, id);

create function orders_guard() returns trigger language plpgsql as $$
begin
  if tg_op = 'DELETE' then
    raise exception 'orders are ledger facts: DELETE refused (order %)', old.client_order_id using errcode = 'DT002';
  end if;
  if tg_op = 'INSERT' then
    if new.status <> 'intent' then
      raise exception 'an order enters the ledger as intent, before it is sent (order % has status %)', new.client_order_id, new.status
        using errcode = 'DT001';
    end if;
    new.created_at := now();
    new.updated_at := now();
    return new;
  end if;
  if (new.client_order_id, new.exchange, new.symbol, new.side, new.type, new.qty, new.price, new.stop_price,
      new.workflow_id, new.decision_seq, new.reason, new.created_at)
     is distinct from
     (old.client_order_id, old.exchange, old.symbol, old.side, old.type, old.qty, old.price, old.stop_price,
      old.workflow_id, old.decision_seq, old.reason, old.created_at) then
    raise exception 'order % is immutable except for its status, exchange order id and filled quantity', old.client_order_id
      using errcode = 'DT003';
  end if;
  if old.exchange_order_id is not null and new.exchange_order_id is distinct from old.exchange_order_id then
    raise exception 'order % already has exchange order id %', old.client_order_id, old.exchange_order_id using errcode = 'DT003';
  end if;
  if new.filled_qty < old.filled_qty then
    raise exception 'filled quantity of order % cannot go down (% -> %)', old.client_order_id, old.filled_qty, new.filled_qty
      using errcode = 'DT003';
  end if;
  if new.status is distinct from old.status and not exists (
       select 1 from order_status_transitions where from_status = old.status and to_status = new.status) then
    raise exception 'illegal order transition % -> % (order %)', old.status, new.status, old.client_order_id
      using errcode = 'DT001';
  end if;
  new.updated_at := now();
  return new;
end
$$;

create function orders_log_event() returns trigger language plpgsql as $$
begin
  if tg_op = 'INSERT' then
    insert into order_events (order_id, from_status, to_status, reason, exchange_order_id)
    values (new.id, null, new.status, new.status_reason, new.exchange_order_id);
  elsif new.status is distinct from old.status then
    insert into order_events (order_id, from_status, to_status, reason, exchange_order_id)
    values (new.id, old.status, new.status,
            case when new.status_reason is distinct from old.status_reason then new.status_reason end,
            new.exchange_order_id);
  end if;
  return null;
end
$$;

create trigger orders_guard before insert or update or delete on orders
  for each row execute function orders_guard();
create trigger orders_log_event after insert or update of status on orders
  for each row execute function orders_log_event();

create trigger order_events_append_only before update or delete on order_events
  for each row execute function reject_mutation();

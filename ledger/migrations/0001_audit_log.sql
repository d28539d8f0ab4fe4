-- The audit trail: append-only. The trigger, not the application, enforces that, so no code
-- path (a future activity, a CLI repair, a psql session) can rewrite history by accident.

create function reject_mutation() returns trigger language plpgsql as $$
begin
  raise exception '% is append-only: % refused', tg_table_name, tg_op
    using errcode = 'DT002', hint = 'record a correcting row instead of changing history';
end
$$;

create table audit_log (
  id bigint generated always as identity primary key,
  ts timestamptz not null default clock_timestamp(),
  -- dotted lowercase names: order.intent, position.closed, system_check.started
  event text not null check (event ~ '^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*$' and length(event) <= 100),
  actor text check (actor <> ''),
  payload jsonb not null default '{}'::jsonb check (jsonb_typeof(payload) = 'object')
);
create index audit_log_event_ts on audit_log (event, ts);

create trigger audit_log_append_only before update or delete on audit_log
  for each row execute function reject_mutation();
create trigger audit_log_no_truncate before truncate on audit_log
  for each statement execute function reject_mutation();

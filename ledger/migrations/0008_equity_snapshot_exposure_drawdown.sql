-- An equity snapshot says which account it is of and what the portfolio's check saw besides
-- equity and cash: the exposure (open positions' notional at mark) and the drawdown from the
-- peak equity the kill switch measures against. One snapshot per account and time: a retried
-- write of the same check finds its row, and two accounts on one ledger do not collide.
alter table equity_snapshots
  add column account text not null default '',
  add column exposure numeric not null default 0 check (exposure >= 0),
  add column peak_equity numeric check (peak_equity >= 0),
  add column drawdown numeric check (drawdown >= 0 and drawdown <= 1);
alter table equity_snapshots drop constraint equity_snapshots_ts_key;
alter table equity_snapshots add constraint equity_snapshots_account_ts_key unique (account, ts);

-- The paper exchange reads only what a call touches (activities/exchange/paper-state-pg.ts): the
-- open orders of one market (paper_orders_open), one order by client order id
-- (paper_orders_client_order_id) or id (the primary key), and the fills of one market since a
-- time, which needs this index: without it, that read scans every fill the account ever had, and a
-- call's cost grows with the account's history.
create index paper_fills_symbol_ts on paper_fills (account, symbol, ts, seq);

-- Schema version 2 (SQLite): a bound on an account's concurrent
-- authenticated connections. Keep in step with ../postgres/0002_max_connections.sql.
ALTER TABLE accounts ADD COLUMN max_connections INTEGER NOT NULL DEFAULT 0 CHECK (max_connections >= 0); -- 0 = unlimited

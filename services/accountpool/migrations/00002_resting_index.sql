-- When every account is resting, Acquire must find that out without
-- walking the whole LRU index, and say when the first one frees. This index
-- orders the unleased active accounts by the end of their rest.
--
-- Built CONCURRENTLY, so writes go on while it builds (pgdb.Migrations.Lint);
-- that needs no transaction. A build that fails leaves an INVALID index:
-- drop it and migrate again.

-- +goose NO TRANSACTION
-- +goose Up
CREATE INDEX CONCURRENTLY IF NOT EXISTS accounts_rest_end_idx ON accountpool.accounts
    ((greatest(coalesce(cooldown_until, '-infinity'), coalesce(quarantine_until, '-infinity'))))
    WHERE active AND lease_id IS NULL;

-- +goose Down
DROP INDEX CONCURRENTLY IF EXISTS accountpool.accounts_rest_end_idx;

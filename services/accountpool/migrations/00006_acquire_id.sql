-- Acquire is safe to retry: a caller names an Acquire with a UUID of its
-- choosing (AcquireRequest.acquire_id), and a retry with the same id while
-- its lease is held gets that lease again instead of a second account.
-- The usage row of the lease keeps the id; the unique index makes the id
-- name one lease at most, whatever the replicas: of two Acquires with one
-- id at once, the second's usage row conflicts with the first's and it
-- hands its account back (store.acquireSQL). Rows without an id (Acquires
-- that sent none) are left out of the index.
--
-- A nullable column rewrites nothing; the index is built CONCURRENTLY
-- (pgdb.Migrations.Lint), which needs no transaction. A build cut short
-- (a killed Job, a cancelled statement, a lost connection) leaves an
-- INVALID index and this migration unrecorded; every Acquire's
-- ON CONFLICT needs the index valid, so the next run drops what a cut
-- build left and builds it again (IF NOT EXISTS would take the invalid
-- one for built, and no Acquire would succeed).

-- +goose NO TRANSACTION
-- +goose Up
ALTER TABLE accountpool.usage_log ADD COLUMN IF NOT EXISTS acquire_id uuid;

DROP INDEX CONCURRENTLY IF EXISTS accountpool.usage_log_acquire_id_key;

CREATE UNIQUE INDEX CONCURRENTLY usage_log_acquire_id_key ON accountpool.usage_log (acquire_id)
    WHERE acquire_id IS NOT NULL;

-- +goose Down
DROP INDEX CONCURRENTLY IF EXISTS accountpool.usage_log_acquire_id_key;
ALTER TABLE accountpool.usage_log DROP COLUMN IF EXISTS acquire_id;

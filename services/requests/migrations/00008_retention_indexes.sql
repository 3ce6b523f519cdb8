-- Retention (00007) deletes claims and checks older than a time in
-- batches, oldest first; these indexes let each batch read just its rows
-- however long the tables are (the existing ones lead with the mission or
-- the portal). Events are pruned by cursor, on their primary key. Built
-- CONCURRENTLY (writes go on), so outside a transaction; a failed build
-- leaves an INVALID index: drop it and migrate again.

-- +goose NO TRANSACTION
-- +goose Up
CREATE INDEX CONCURRENTLY IF NOT EXISTS claims_claimed_at_idx ON requests.claims (claimed_at);
CREATE INDEX CONCURRENTLY IF NOT EXISTS checks_checked_at_idx ON requests.checks (checked_at);

-- +goose Down
DROP INDEX CONCURRENTLY IF EXISTS requests.checks_checked_at_idx;
DROP INDEX CONCURRENTLY IF EXISTS requests.claims_claimed_at_idx;

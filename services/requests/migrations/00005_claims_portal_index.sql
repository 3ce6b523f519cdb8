-- ClaimDueMissions counts a portal's claims of the last minute under the
-- portal's row lock (00004); this index keeps that count to the minute's
-- rows however long the claim log grows. Built CONCURRENTLY (writes go on),
-- so outside a transaction; a failed build leaves an INVALID index: drop
-- it and migrate again.

-- +goose NO TRANSACTION
-- +goose Up
CREATE INDEX CONCURRENTLY IF NOT EXISTS claims_portal_idx ON requests.claims (portal, claimed_at) WHERE portal <> '';

-- +goose Down
DROP INDEX CONCURRENTLY IF EXISTS requests.claims_portal_idx;

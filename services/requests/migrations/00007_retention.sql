-- Retention (issue 15): nothing pruned the claim log, the checks or the
-- events, so they grew without end. Each replica now deletes rows older
-- than REQUESTS_RETENTION in small batches (store.Prune*). Events go
-- oldest first by cursor, so what is left is every event after a cursor;
-- requests.retention keeps that cursor (events_pruned_through: every event
-- at or below it was pruned, none above), which WatchEvents compares a
-- resuming cursor with to answer OUT_OF_RANGE instead of skipping events
-- silently. One row, locked by the pruner so replicas take turns.

-- +goose Up
CREATE TABLE requests.retention (
    singleton             boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    events_pruned_through bigint NOT NULL DEFAULT 0
);
INSERT INTO requests.retention DEFAULT VALUES;

-- +goose Down
DROP TABLE requests.retention;

-- A check kept every slot the portal showed (requests.checks.slots): a
-- report may carry 10,000 slots, about 900 KB of JSON, some 45 KB a row on
-- disk after compression, and a busy portal's checks are kept for
-- REQUESTS_RETENTION (90 days). Nothing reads them but operators: the
-- answers, events and the Notifier carry the requests' own matched slots.
-- A check now keeps how many slots the portal showed (slot_count) and, in
-- slots, the earliest 20 of those that matched a claimed request, each
-- once (domain.CheckedSlots).
--
-- slot_count is NULL on a row written by a Requests older than this (the
-- rows before it, and those an older replica writes during a rollout):
-- its count is jsonb_array_length(slots), which readers take then
-- (coalesce). Those rows keep their whole list until REQUESTS_RETENTION
-- prunes them: nothing here rewrites them. A backfill that cut them to
-- their matched slots had to match every slot against the claim's
-- requests, about a second a 10,000-slot row, so a batch of 1,000 rows ran
-- far past the requests-migrate Job's deadline (600 s) and a Requests'
-- liveness probe before its first COMMIT, and was rolled back each time.
--
-- The ADD of a nullable column without a default rewrites nothing: it
-- holds its ACCESS EXCLUSIVE lock for a moment.

-- +goose Up
ALTER TABLE requests.checks ADD COLUMN IF NOT EXISTS slot_count integer;

-- +goose Down
ALTER TABLE requests.checks DROP COLUMN IF EXISTS slot_count;

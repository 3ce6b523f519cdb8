-- The pause level's reset (a portal that has gone 6 hours (ResetAfter)
-- past its last pause without another starts again at 15 minutes) was
-- measured from paused_until, the end of whatever pause came last. A
-- maintenance with a Retry-After pauses without raising the level (00010),
-- yet it moved paused_until, and with it the reset: bot walls 6h30 after a
-- row of bot-wall pauses, with a maintenance in between, still paused at
-- the raised level (4 h at level 4 instead of 15 minutes).
-- pause_level_until is the end of the last pause that raised the level
-- (lengthened, while it ran, by a bot wall's Retry-After, cut short by
-- ResumePortal); the reset counts from it. pause_level_at and
-- pause_level_paused_until are the paused_at and paused_until written
-- with it: a Requests older than this migration writes paused_at and
-- paused_until alone, so a pause it began, lengthened or resumed (either
-- differs from its record) counts from paused_until, as it did there.
--
-- Rows paused before this get the end of their current pause, which is
-- what the reset was measured from until now. Outside a transaction: the
-- ADD of a nullable column rewrites nothing and holds its ACCESS EXCLUSIVE
-- lock for a moment; the backfill then commits every 1,000 rows, so
-- ClaimDueMissions (which locks every portal row) waits for one batch at
-- most, never for the whole table. Run again after a failure, it goes on
-- with the rows not yet filled.

-- +goose NO TRANSACTION
-- +goose Up
ALTER TABLE requests.portals ADD COLUMN IF NOT EXISTS pause_level_until timestamptz;
ALTER TABLE requests.portals ADD COLUMN IF NOT EXISTS pause_level_at timestamptz;
ALTER TABLE requests.portals ADD COLUMN IF NOT EXISTS pause_level_paused_until timestamptz;

-- +goose StatementBegin
DO $$
DECLARE
    n integer;
BEGIN
    LOOP
        UPDATE requests.portals SET pause_level_until = paused_until, pause_level_at = paused_at,
            pause_level_paused_until = paused_until
            WHERE name IN (SELECT name FROM requests.portals
                           WHERE pause_level_until IS NULL AND paused_until IS NOT NULL
                           ORDER BY name LIMIT 1000 FOR UPDATE);
        GET DIAGNOSTICS n = ROW_COUNT;
        EXIT WHEN n = 0;
        COMMIT;
    END LOOP;
END
$$;
-- +goose StatementEnd

-- +goose Down
-- The reset is measured from paused_until again.
ALTER TABLE requests.portals DROP COLUMN IF EXISTS pause_level_until;
ALTER TABLE requests.portals DROP COLUMN IF EXISTS pause_level_at;
ALTER TABLE requests.portals DROP COLUMN IF EXISTS pause_level_paused_until;

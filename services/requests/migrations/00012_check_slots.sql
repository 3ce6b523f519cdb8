-- A check kept every slot the portal showed (requests.checks.slots): a
-- report may carry 10,000 slots, about 900 KB of JSON, some 45 KB a row on
-- disk after compression, and a busy portal's checks are kept for
-- REQUESTS_RETENTION (90 days). Nothing reads them but operators: the
-- answers, events and the Notifier carry the requests' own matched slots.
-- A check now keeps how many slots the portal showed (slot_count) and, in
-- slots, the earliest 20 of those that matched a claimed request
-- (domain.CheckedSlots).
--
-- slot_count is NULL on a row written by a Requests older than this (the
-- rows before it, and those an older replica writes during a rollout):
-- its count is jsonb_array_length(slots), which readers take then
-- (coalesce). Rows before this are cut here: slot_count is their list's
-- length, slots the earliest 20 of it that fit a request of the check's
-- claim (centre and category alike but for case and surrounding space,
-- the date inside the request's window; a slot the request had already
-- passed up may be among them). Rows an older replica writes after this
-- keep their whole list until REQUESTS_RETENTION prunes them. An older
-- reader of slots sees the matched ones only; none in this repository
-- reads them.
--
-- Outside a transaction: the ADD of a nullable column rewrites nothing and
-- holds its ACCESS EXCLUSIVE lock for a moment; the backfill then commits
-- every 1,000 rows by id, so it locks no more at once and a run cut short
-- goes on from the rows not yet filled.

-- +goose NO TRANSACTION
-- +goose Up
ALTER TABLE requests.checks ADD COLUMN IF NOT EXISTS slot_count integer;

-- +goose StatementBegin
DO $$
DECLARE
    lo bigint := 0;
    hi bigint;
BEGIN
    LOOP
        SELECT max(id) INTO hi FROM (SELECT id FROM requests.checks WHERE id > lo ORDER BY id LIMIT 1000) AS b;
        EXIT WHEN hi IS NULL;
        UPDATE requests.checks k SET slot_count = jsonb_array_length(k.slots),
            slots = coalesce((
                SELECT jsonb_agg(m.s ORDER BY m.s->>'date', coalesce(m.s->>'time', ''))
                FROM (SELECT DISTINCT ON (a.s->>'date', coalesce(a.s->>'time', ''),
                                          lower(btrim(a.s->>'centre')), lower(btrim(a.s->>'visa_category'))) a.s
                      FROM jsonb_array_elements(k.slots) AS a(s)
                      WHERE EXISTS (
                          SELECT 1 FROM requests.claims c
                          JOIN requests.appointment_requests r ON r.id = ANY (c.request_ids)
                          WHERE c.id = k.claim_id
                            AND lower(btrim(r.centre)) = lower(btrim(a.s->>'centre'))
                            AND lower(btrim(r.visa_category)) = lower(btrim(a.s->>'visa_category'))
                            AND (a.s->>'date')::date BETWEEN r.earliest_date AND r.latest_date)
                      ORDER BY a.s->>'date', coalesce(a.s->>'time', ''),
                               lower(btrim(a.s->>'centre')), lower(btrim(a.s->>'visa_category'))
                      LIMIT 20) AS m), '[]')
            WHERE k.id > lo AND k.id <= hi AND k.slot_count IS NULL;
        lo := hi;
        COMMIT;
    END LOOP;
END
$$;
-- +goose StatementEnd

-- +goose Down
-- The slots cut are gone; the count goes.
ALTER TABLE requests.checks DROP COLUMN IF EXISTS slot_count;

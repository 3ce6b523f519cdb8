-- Bounded answers (review of issue 14): a request kept every slot the check
-- that found it matched, and ResumeWatching moved them all to missed_slots.
-- One report may carry 10,000 slots, so a request grew to about a megabyte,
-- and the answers that carry requests (ReportCheckResult, then every
-- ClaimDueMissions of the mission) passed gRPC's 4 MB limit: the Checker
-- saw a committed report fail, and the mission was claimed but never
-- checked again. A request now keeps the earliest 20 matched slots
-- (domain.MaxSlotsPerRequest) and counts them all in matched_slot_count;
-- missed_slots keeps the 1,000 passed up last (domain.MaxMissedSlots: far
-- more than 20, or slots that stay open would be announced round and
-- round; answers show the last 20).
--
-- Rows written before are cut here the same way, so a mission stuck that
-- way is checked again once this runs: matched_slot_count is the number
-- of matched slots the row held, matched_slots keeps the earliest 20 by
-- date and time, missed_slots the last 1,000 of its list.

-- +goose Up
ALTER TABLE requests.appointment_requests ADD COLUMN matched_slot_count integer NOT NULL DEFAULT 0;
UPDATE requests.appointment_requests SET matched_slot_count = jsonb_array_length(matched_slots)
    WHERE jsonb_array_length(matched_slots) > 0;
UPDATE requests.appointment_requests SET matched_slots =
    (SELECT jsonb_agg(e.s ORDER BY e.s->>'date', coalesce(e.s->>'time', ''))
     FROM (SELECT s FROM jsonb_array_elements(matched_slots) AS a(s)
           ORDER BY s->>'date', coalesce(s->>'time', '') LIMIT 20) AS e)
    WHERE jsonb_array_length(matched_slots) > 20;
UPDATE requests.appointment_requests SET missed_slots =
    (SELECT jsonb_agg(e.s ORDER BY e.n)
     FROM (SELECT s, n FROM jsonb_array_elements(missed_slots) WITH ORDINALITY AS a(s, n)
           ORDER BY n DESC LIMIT 1000) AS e)
    WHERE jsonb_array_length(missed_slots) > 1000;

-- +goose Down
-- The slots cut are gone; the count goes.
ALTER TABLE requests.appointment_requests DROP COLUMN matched_slot_count;

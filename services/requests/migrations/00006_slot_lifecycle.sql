-- Slot lifecycle (issue 14): a request stopped being watched once
-- SLOT_FOUND, so a slot taken by someone else before the applicant booked
-- left them with nothing. ConfirmBooked ends a SLOT_FOUND request as
-- 'booked' (final); ResumeWatching returns it to 'pending' and moves the
-- slots it announced to missed_slots, which later checks do not announce
-- again for that request. Each writes an event of its own type.
--
-- The CHECK constraints are replaced NOT VALID and validated after, so the
-- validation scan does not hold the table's write lock.

-- +goose Up
ALTER TABLE requests.appointment_requests
    ADD COLUMN missed_slots jsonb NOT NULL DEFAULT '[]',
    DROP CONSTRAINT appointment_requests_status_check,
    ADD CONSTRAINT appointment_requests_status_check
        CHECK (status IN ('pending', 'slot_found', 'cancelled', 'expired', 'booked')) NOT VALID;
ALTER TABLE requests.appointment_requests VALIDATE CONSTRAINT appointment_requests_status_check;

ALTER TABLE requests.events
    DROP CONSTRAINT events_type_check,
    ADD CONSTRAINT events_type_check
        CHECK (type IN ('created', 'slot_found', 'cancelled', 'expired', 'portal_paused', 'portal_resumed',
                        'booked', 'watching_resumed')) NOT VALID;
ALTER TABLE requests.events VALIDATE CONSTRAINT events_type_check;

-- +goose Down
-- A booked request was a found one; the events of the new types go.
UPDATE requests.appointment_requests SET status = 'slot_found' WHERE status = 'booked';
DELETE FROM requests.events WHERE type IN ('booked', 'watching_resumed');
ALTER TABLE requests.events
    DROP CONSTRAINT events_type_check,
    ADD CONSTRAINT events_type_check
        CHECK (type IN ('created', 'slot_found', 'cancelled', 'expired', 'portal_paused', 'portal_resumed'));
ALTER TABLE requests.appointment_requests
    DROP CONSTRAINT appointment_requests_status_check,
    ADD CONSTRAINT appointment_requests_status_check
        CHECK (status IN ('pending', 'slot_found', 'cancelled', 'expired')),
    DROP COLUMN missed_slots;

-- Portal load discipline (issue 13): one speed limit per portal, shared by
-- every Checker replica, and a pause when the portal shows a wall.
--
-- requests.portals holds a portal's settings (keyed by the name in
-- missions.portal) and its pause. ClaimDueMissions locks the portal rows
-- FOR UPDATE, so replicas claiming missions of one portal take turns, and
-- counts the portal's claims of the last minute in requests.claims (the new
-- portal column) against the cap in force (quiet hours' one during them).
-- A pause is a time (paused_until), not a flag a job flips back; pause_open
-- says a PORTAL_RESUMED event is still owed once paused_until has passed,
-- and the next claim or expiry sweep writes it.
--
-- requests.portal_walls records each CAPTCHA / blocked / rate-limited
-- report, so the threshold counts walls across accounts and replicas.
-- missions.last_claimed_at carries the per-mission minimum interval.
-- Events: portal events carry a portal snapshot instead of a request.

-- +goose Up
CREATE TABLE requests.portals (
    name                        text PRIMARY KEY,
    max_checks_per_minute       integer NOT NULL DEFAULT 0 CHECK (max_checks_per_minute >= 0),
    timezone                    text NOT NULL DEFAULT 'UTC',
    quiet_start_minute          integer CHECK (quiet_start_minute BETWEEN 0 AND 1439),
    quiet_end_minute            integer CHECK (quiet_end_minute BETWEEN 0 AND 1439),
    quiet_max_checks_per_minute integer NOT NULL DEFAULT 0 CHECK (quiet_max_checks_per_minute >= 0),
    min_mission_interval_us     bigint NOT NULL DEFAULT 0 CHECK (min_mission_interval_us >= 0),
    paused_at                   timestamptz,
    paused_until                timestamptz,
    pause_reason                text NOT NULL DEFAULT '',
    pause_level                 integer NOT NULL DEFAULT 0,
    pause_open                  boolean NOT NULL DEFAULT false,
    created_at                  timestamptz NOT NULL,
    updated_at                  timestamptz NOT NULL,
    CHECK ((quiet_start_minute IS NULL) = (quiet_end_minute IS NULL))
);

CREATE TABLE requests.portal_walls (
    portal      text NOT NULL,
    reported_at timestamptz NOT NULL,
    id          bigint GENERATED ALWAYS AS IDENTITY,
    outcome     text NOT NULL,
    PRIMARY KEY (portal, reported_at, id)
);

ALTER TABLE requests.claims ADD COLUMN portal text NOT NULL DEFAULT '';
ALTER TABLE requests.missions ADD COLUMN last_claimed_at timestamptz;

ALTER TABLE requests.checks DROP CONSTRAINT checks_outcome_check,
    ADD CONSTRAINT checks_outcome_check
        CHECK (outcome IN ('no_slot', 'slots_found', 'failed', 'captcha', 'blocked', 'rate_limited')) NOT VALID;
ALTER TABLE requests.checks VALIDATE CONSTRAINT checks_outcome_check;

ALTER TABLE requests.events
    ALTER COLUMN request_id DROP NOT NULL,
    ALTER COLUMN request DROP NOT NULL,
    ADD COLUMN portal jsonb,
    DROP CONSTRAINT events_type_check,
    ADD CONSTRAINT events_type_check
        CHECK (type IN ('created', 'slot_found', 'cancelled', 'expired', 'portal_paused', 'portal_resumed')) NOT VALID;
ALTER TABLE requests.events VALIDATE CONSTRAINT events_type_check;

-- +goose Down
DELETE FROM requests.events WHERE type IN ('portal_paused', 'portal_resumed');
ALTER TABLE requests.events
    DROP CONSTRAINT events_type_check,
    ADD CONSTRAINT events_type_check CHECK (type IN ('created', 'slot_found', 'cancelled', 'expired')),
    DROP COLUMN portal,
    ALTER COLUMN request SET NOT NULL,
    ALTER COLUMN request_id SET NOT NULL;
UPDATE requests.checks SET outcome = 'failed' WHERE outcome IN ('captcha', 'blocked', 'rate_limited');
ALTER TABLE requests.checks DROP CONSTRAINT checks_outcome_check,
    ADD CONSTRAINT checks_outcome_check CHECK (outcome IN ('no_slot', 'slots_found', 'failed'));
ALTER TABLE requests.missions DROP COLUMN last_claimed_at;
ALTER TABLE requests.claims DROP COLUMN portal;
DROP TABLE requests.portal_walls;
DROP TABLE requests.portals;

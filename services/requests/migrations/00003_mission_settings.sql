-- Mission settings (issue 12): the portal a mission is checked on and the
-- time zone its dates are in. A request's window is calendar dates on the
-- portal's calendar, so "today" (for expiry, for refusing a window in the
-- past, for matching slots) is the day it is in the mission's zone, not in
-- UTC. The settings live on the missions row that already carries the
-- mission's claim: one row per mission code, created by the first request
-- that names it or by UpsertMission. Later per-mission settings (the
-- minimum interval between checks) become further columns here, and
-- per-portal ones (checks per minute, quiet hours) a requests.portals table
-- keyed by the name in portal.
--
-- timezone is an IANA name the service loaded with time.LoadLocation
-- before storing it; 'UTC' is the default of a mission nobody configured.
-- portal is '' until set. The defaults, including now() for the times,
-- also keep replicas of the previous version (which insert only the code)
-- working during a rolling update; this version passes its own clock.

-- +goose Up
ALTER TABLE requests.missions
    ADD COLUMN portal     text NOT NULL DEFAULT '',
    ADD COLUMN timezone   text NOT NULL DEFAULT 'UTC',
    ADD COLUMN created_at timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now();

-- A mission seen before this migration was first seen with its oldest
-- request (one index lookup per mission, on appointment_requests_mission_page_idx).
UPDATE requests.missions m SET created_at = f.first, updated_at = f.first
FROM (SELECT code, (SELECT min(r.created_at) FROM requests.appointment_requests r
                    WHERE r.mission_code = missions.code) AS first
      FROM requests.missions) f
WHERE f.code = m.code AND f.first IS NOT NULL;

-- +goose Down
ALTER TABLE requests.missions
    DROP COLUMN updated_at,
    DROP COLUMN created_at,
    DROP COLUMN timezone,
    DROP COLUMN portal;

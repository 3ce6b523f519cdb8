-- Requests service schema (DESIGN §1, issue 3): applicants, their appointment
-- requests, the missions those requests group into with the one live claim
-- on each, the claim log, recorded checks, and the request events that
-- WatchEvents streams.
--
-- Times are written from the service's clock (passed as parameters rather
-- than now()), so every replica applies one rule and tests control time.
-- Claims lapse by comparing claim_expires_at with that clock: no job flips
-- them back.

-- +goose Up
CREATE TABLE requests.applicants (
    id                  uuid PRIMARY KEY,
    full_name           text NOT NULL,
    email               text NOT NULL,
    phone               text NOT NULL DEFAULT '',
    -- Tink AEAD ciphertext whose associated data names this row's id, so it
    -- does not decrypt if copied to another row. NULL when none was given.
    passport_ciphertext bytea,
    nationality         text NOT NULL DEFAULT '',
    date_of_birth       date,
    created_at          timestamptz NOT NULL,
    updated_at          timestamptz NOT NULL
);
CREATE INDEX applicants_page_idx ON requests.applicants (created_at, id);

CREATE TABLE requests.appointment_requests (
    id              uuid PRIMARY KEY,
    -- NULL once the applicant is deleted: the request history stays, the
    -- personal data goes.
    applicant_id    uuid REFERENCES requests.applicants (id) ON DELETE SET NULL,
    mission_code    text NOT NULL,
    centre          text NOT NULL,
    visa_category   text NOT NULL,
    earliest_date   date NOT NULL,
    latest_date     date NOT NULL,
    status          text NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'slot_found', 'cancelled', 'expired')),
    matched_slots   jsonb NOT NULL DEFAULT '[]',
    last_checked_at timestamptz,
    check_count     integer NOT NULL DEFAULT 0,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    CHECK (earliest_date <= latest_date)
);
CREATE INDEX appointment_requests_page_idx ON requests.appointment_requests (created_at, id);
CREATE INDEX appointment_requests_applicant_idx ON requests.appointment_requests (applicant_id, created_at, id);
CREATE INDEX appointment_requests_pending_mission_idx ON requests.appointment_requests (mission_code, latest_date)
    WHERE status = 'pending';
CREATE INDEX appointment_requests_pending_latest_idx ON requests.appointment_requests (latest_date)
    WHERE status = 'pending';

-- One row per mission code ever requested. The row is what ClaimDueMissions
-- locks (FOR UPDATE SKIP LOCKED), and it carries the mission's current claim:
-- a claim is live while claim_expires_at is in the future; reporting it sets
-- claim_expires_at to the report time.
CREATE TABLE requests.missions (
    code             text PRIMARY KEY,
    last_checked_at  timestamptz,
    claim_id         uuid UNIQUE,
    claim_expires_at timestamptz
);

-- Every claim ever handed out: who held which mission from claimed_at until
-- reported_at (or expires_at when it lapsed), and which requests it covered.
CREATE TABLE requests.claims (
    id           uuid PRIMARY KEY,
    mission_code text NOT NULL REFERENCES requests.missions (code),
    checker_id   text NOT NULL,
    request_ids  uuid[] NOT NULL,
    claimed_at   timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL,
    reported_at  timestamptz
);
CREATE INDEX claims_mission_idx ON requests.claims (mission_code, claimed_at);

-- The result of each reported claim.
CREATE TABLE requests.checks (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    claim_id     uuid NOT NULL UNIQUE REFERENCES requests.claims (id),
    mission_code text NOT NULL,
    checker_id   text NOT NULL,
    account_id   bigint NOT NULL,
    outcome      text NOT NULL CHECK (outcome IN ('no_slot', 'slots_found', 'failed')),
    slots        jsonb NOT NULL,
    detail       text NOT NULL,
    checked_at   timestamptz NOT NULL
);
CREATE INDEX checks_mission_idx ON requests.checks (mission_code, checked_at);

-- Request events, written in the transaction that makes the change. Writers
-- take a transaction-level advisory lock just before inserting here, so ids
-- become visible in increasing order and a reader resuming after an id never
-- misses a smaller one committed later. request is the request as it was
-- right after the event (no personal data beyond the applicant id).
CREATE TABLE requests.events (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    type        text NOT NULL CHECK (type IN ('created', 'slot_found', 'cancelled', 'expired')),
    request_id  uuid NOT NULL,
    request     jsonb NOT NULL,
    occurred_at timestamptz NOT NULL
);

-- +goose Down
DROP TABLE requests.events;
DROP TABLE requests.checks;
DROP TABLE requests.claims;
DROP TABLE requests.missions;
DROP TABLE requests.appointment_requests;
DROP TABLE requests.applicants;

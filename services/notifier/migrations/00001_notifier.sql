-- Notifier service schema (issue 14): the contacts of applicants, operator
-- subscriptions, the cursor into Requests' WatchEvents, and the delivery
-- log, which is also the queue of messages to send (an outbox).
--
-- The cursor and the deliveries an event causes are written in one
-- transaction, so a crash never loses an event's deliveries nor records
-- them twice; the unique key (event_cursor, recipient_id) makes "once per
-- event and recipient" hold whatever a replica does. Times come from the
-- service's clock; a delivery's lease lapses by comparison with it, no job
-- clears it.

-- +goose Up
CREATE TABLE notifier.contacts (
    id                   uuid PRIMARY KEY,
    applicant_id         uuid NOT NULL,
    kind                 text NOT NULL CHECK (kind IN ('email', 'telegram', 'webhook')),
    address              text NOT NULL,
    language             text NOT NULL,
    -- Tink AEAD ciphertexts whose associated data names this row; the
    -- previous secret is kept during a rotation and signs too.
    secret_ciphertext      bytea,
    prev_secret_ciphertext bytea,
    created_at           timestamptz NOT NULL,
    updated_at           timestamptz NOT NULL
);
CREATE INDEX contacts_applicant_idx ON notifier.contacts (applicant_id, created_at, id);
CREATE INDEX contacts_page_idx ON notifier.contacts (created_at, id);

CREATE TABLE notifier.subscriptions (
    id                   uuid PRIMARY KEY,
    mission_codes        text[] NOT NULL,
    -- 'slot_found', 'expired', 'cancelled'
    event_types          text[] NOT NULL,
    kind                 text NOT NULL CHECK (kind IN ('email', 'telegram', 'webhook')),
    address              text NOT NULL,
    language             text NOT NULL,
    secret_ciphertext      bytea,
    prev_secret_ciphertext bytea,
    created_at           timestamptz NOT NULL,
    updated_at           timestamptz NOT NULL
);
CREATE INDEX subscriptions_missions_idx ON notifier.subscriptions USING gin (mission_codes);
CREATE INDEX subscriptions_page_idx ON notifier.subscriptions (created_at, id);

-- One row per event stream followed ('requests'): the cursor of the last
-- event whose deliveries are recorded.
CREATE TABLE notifier.cursors (
    stream     text PRIMARY KEY,
    cursor     bigint NOT NULL,
    updated_at timestamptz NOT NULL
);

CREATE TABLE notifier.deliveries (
    id               bigserial PRIMARY KEY,
    event_cursor     bigint NOT NULL,
    event_type       text NOT NULL CHECK (event_type IN ('slot_found', 'expired', 'cancelled')),
    event_occurred_at timestamptz NOT NULL,
    request_id       uuid NOT NULL,
    -- Exactly one of contact_id and subscription_id names the recipient; no
    -- foreign key, so the log outlives a deleted recipient.
    contact_id       uuid,
    subscription_id  uuid,
    recipient_id     uuid GENERATED ALWAYS AS (COALESCE(contact_id, subscription_id)) STORED,
    kind             text NOT NULL,
    address          text NOT NULL,
    -- The message as rendered when the event was consumed: every attempt
    -- sends the same bytes.
    subject          text NOT NULL,
    body_text        text NOT NULL,
    body_html        text NOT NULL,
    body_json        bytea NOT NULL,
    state            text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'dead')),
    attempts         integer NOT NULL DEFAULT 0,
    last_error       text NOT NULL DEFAULT '',
    next_attempt_at  timestamptz NOT NULL,
    -- An attempt holds the delivery until lease_until; a replica that dies
    -- mid-attempt lets it lapse and another takes it. lease_token fences a
    -- late writer.
    lease_until      timestamptz,
    lease_token      bigint NOT NULL DEFAULT 0,
    created_at       timestamptz NOT NULL,
    delivered_at     timestamptz,
    CHECK ((contact_id IS NULL) <> (subscription_id IS NULL)),
    UNIQUE (event_cursor, recipient_id)
);
CREATE INDEX deliveries_due_idx ON notifier.deliveries (next_attempt_at) WHERE state = 'pending';
CREATE INDEX deliveries_state_idx ON notifier.deliveries (state, id);
CREATE INDEX deliveries_contact_idx ON notifier.deliveries (contact_id, id) WHERE contact_id IS NOT NULL;
CREATE INDEX deliveries_subscription_idx ON notifier.deliveries (subscription_id, id) WHERE subscription_id IS NOT NULL;

-- +goose Down
DROP TABLE notifier.deliveries;
DROP TABLE notifier.cursors;
DROP TABLE notifier.subscriptions;
DROP TABLE notifier.contacts;

-- Issue 13, portal load discipline: a check reuses the portal session of the
-- account's last check instead of logging in every time, and an account
-- logs in at most POOL_MAX_LOGINS_PER_DAY times in any 24 hours.
--
-- accounts.session_ciphertext is the session state (cookies, local storage)
-- as Tink AEAD ciphertext whose associated data binds it to the row's id
-- and to its purpose, so it opens neither as a password nor on another row.
-- accounts.password_changed_at keeps a lease that began before a password
-- change from storing the session its check logged in with.
-- usage_log.logged_in says whether a lease's check logged in; the login
-- budget counts those rows through usage_log_logins_idx.
--
-- Adding nullable columns and a column with a constant default rewrites
-- nothing; the index is built CONCURRENTLY (pgdb.Migrations.Lint), which
-- needs no transaction. A build that fails leaves an INVALID index: drop it
-- and migrate again.

-- +goose NO TRANSACTION
-- +goose Up
ALTER TABLE accountpool.accounts
    ADD COLUMN IF NOT EXISTS session_ciphertext bytea,
    ADD COLUMN IF NOT EXISTS session_expires_at timestamptz,
    ADD COLUMN IF NOT EXISTS password_changed_at timestamptz;

ALTER TABLE accountpool.usage_log
    ADD COLUMN IF NOT EXISTS logged_in boolean NOT NULL DEFAULT false;

CREATE INDEX CONCURRENTLY IF NOT EXISTS usage_log_logins_idx ON accountpool.usage_log (account_id, acquired_at DESC)
    WHERE logged_in;

-- +goose Down
DROP INDEX CONCURRENTLY IF EXISTS accountpool.usage_log_logins_idx;
ALTER TABLE accountpool.usage_log DROP COLUMN IF EXISTS logged_in;
ALTER TABLE accountpool.accounts
    DROP COLUMN IF EXISTS password_changed_at,
    DROP COLUMN IF EXISTS session_expires_at,
    DROP COLUMN IF EXISTS session_ciphertext;

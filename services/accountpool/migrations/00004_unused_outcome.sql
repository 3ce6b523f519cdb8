-- Issue 13, portal load discipline: a check claimed just before its portal
-- was paused is called off before its first request to the portal, and its
-- lease ends with the outcome 'unused' (the account did nothing). The usage
-- log's result takes it.
--
-- The new CHECK is added NOT VALID (no scan under the ACCESS EXCLUSIVE lock
-- that ALTER TABLE takes) and validated after, which scans the table under
-- a lock that lets reads and writes go on.

-- +goose Up
ALTER TABLE accountpool.usage_log DROP CONSTRAINT IF EXISTS usage_log_result_check;
ALTER TABLE accountpool.usage_log ADD CONSTRAINT usage_log_result_check
    CHECK (result IN ('success', 'no_slot', 'login_fail', 'banned', 'error', 'lease_expired', 'unused')) NOT VALID;
ALTER TABLE accountpool.usage_log VALIDATE CONSTRAINT usage_log_result_check;

-- +goose Down
-- The old CHECK has no room for the unused leases: their log rows go.
DELETE FROM accountpool.usage_log WHERE result = 'unused';
ALTER TABLE accountpool.usage_log DROP CONSTRAINT IF EXISTS usage_log_result_check;
ALTER TABLE accountpool.usage_log ADD CONSTRAINT usage_log_result_check
    CHECK (result IN ('success', 'no_slot', 'login_fail', 'banned', 'error', 'lease_expired')) NOT VALID;
ALTER TABLE accountpool.usage_log VALIDATE CONSTRAINT usage_log_result_check;

-- A check slotwatch cut short itself (the Checker's drain ran out of grace,
-- the claim's deadline passed, the browser died mid-check) was released as
-- 'error', one failure of the account each: rolling deploys pushed
-- accounts toward quarantine. It is released 'aborted' now (no failure,
-- a cooldown), and the usage log's result takes it.
--
-- Outside a transaction: the ADD ... NOT VALID takes the table's ACCESS
-- EXCLUSIVE lock for a moment, and the VALIDATE after it scans the table
-- under a lock that lets reads and writes go on (in one transaction, the
-- first lock would be held through the scan). Run again after a failure,
-- it starts over from the DROP.

-- +goose NO TRANSACTION
-- +goose Up
ALTER TABLE accountpool.usage_log DROP CONSTRAINT usage_log_result_check,
    ADD CONSTRAINT usage_log_result_check
        CHECK (result IN ('success', 'no_slot', 'login_fail', 'banned', 'error', 'lease_expired', 'unused', 'aborted')) NOT VALID;
ALTER TABLE accountpool.usage_log VALIDATE CONSTRAINT usage_log_result_check;

-- +goose Down
-- Before this, a check cut short was released (and logged) as error.
UPDATE accountpool.usage_log SET result = 'error' WHERE result = 'aborted';
ALTER TABLE accountpool.usage_log DROP CONSTRAINT usage_log_result_check,
    ADD CONSTRAINT usage_log_result_check
        CHECK (result IN ('success', 'no_slot', 'login_fail', 'banned', 'error', 'lease_expired', 'unused')) NOT VALID;
ALTER TABLE accountpool.usage_log VALIDATE CONSTRAINT usage_log_result_check;

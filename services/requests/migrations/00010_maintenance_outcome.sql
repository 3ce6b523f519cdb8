-- A portal's maintenance page is a wall (CHECK_OUTCOME_MAINTENANCE): the
-- Checker reported it as failed, so during a maintenance window every claim
-- sent another account to a portal that was down, each account got a
-- failure (and quarantine once they added up), and the portal was never
-- paused. requests.checks now takes the outcome 'maintenance'; it is
-- recorded in requests.portal_walls like the other walls (that column has
-- no constraint).
--
-- Outside a transaction: the ADD ... NOT VALID takes the table's ACCESS
-- EXCLUSIVE lock for a moment, and the VALIDATE after it scans the table
-- under a lock that lets reads and writes go on (in one transaction, the
-- first lock would be held through the scan). Run again after a failure,
-- it starts over from the DROP.

-- +goose NO TRANSACTION
-- +goose Up
ALTER TABLE requests.checks DROP CONSTRAINT checks_outcome_check,
    ADD CONSTRAINT checks_outcome_check
        CHECK (outcome IN ('no_slot', 'slots_found', 'failed', 'captcha', 'blocked', 'rate_limited', 'maintenance')) NOT VALID;
ALTER TABLE requests.checks VALIDATE CONSTRAINT checks_outcome_check;

-- +goose Down
-- Before this, a maintenance page was reported (and recorded) as failed.
UPDATE requests.checks SET outcome = 'failed' WHERE outcome = 'maintenance';
ALTER TABLE requests.checks DROP CONSTRAINT checks_outcome_check,
    ADD CONSTRAINT checks_outcome_check
        CHECK (outcome IN ('no_slot', 'slots_found', 'failed', 'captcha', 'blocked', 'rate_limited')) NOT VALID;
ALTER TABLE requests.checks VALIDATE CONSTRAINT checks_outcome_check;

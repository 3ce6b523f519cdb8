-- When every account is resting, Acquire must find that out without
-- walking the whole LRU index, and say when the first one frees. This index
-- orders the unleased active accounts by the end of their rest.

-- +goose Up
CREATE INDEX accounts_rest_end_idx ON accountpool.accounts
    ((greatest(coalesce(cooldown_until, '-infinity'), coalesce(quarantine_until, '-infinity'))))
    WHERE active AND lease_id IS NULL;

-- +goose Down
DROP INDEX accountpool.accounts_rest_end_idx;

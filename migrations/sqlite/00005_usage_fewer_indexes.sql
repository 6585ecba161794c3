-- Every index on usage_records is paid on each usage insert, the busiest
-- write of the gateway. For key principals principal_id equals key_id, which
-- (key_id, ts) already serves; owner filters are rare admin reads that the ts
-- index narrows well enough. Roll-ups, not row indexes, will serve principal
-- and owner reports when budgets need them.

-- +goose Up
DROP INDEX usage_records_principal_ts;
DROP INDEX usage_records_owner_ts;

-- +goose Down
CREATE INDEX usage_records_principal_ts ON usage_records (principal_id, ts);
CREATE INDEX usage_records_owner_ts ON usage_records (owner, ts);

-- Accounting model: the gateway's request id keys the row (request_id), the
-- client's X-Request-Id is kept apart; integer micro-USD costs; cache-write
-- and reasoning tokens; who made the request; what the upstream answered.

-- +goose Up
ALTER TABLE usage_records
    ADD COLUMN client_request_id TEXT NOT NULL DEFAULT '',
    ADD COLUMN principal_id TEXT NOT NULL DEFAULT '',
    ADD COLUMN principal_kind TEXT NOT NULL DEFAULT '',
    ADD COLUMN owner TEXT NOT NULL DEFAULT '',
    ADD COLUMN upstream_model TEXT NOT NULL DEFAULT '',
    ADD COLUMN upstream_status INTEGER NOT NULL DEFAULT 0,
    ADD COLUMN cache_write_tokens BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN reasoning_tokens BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN cost_micros BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN clamped BOOLEAN NOT NULL DEFAULT FALSE;
UPDATE usage_records SET
    principal_id = key_id,
    principal_kind = CASE WHEN key_id <> '' THEN 'key' ELSE '' END,
    cost_micros = CASE
        WHEN cost IS NULL OR cost <= 0 OR cost = 'NaN'::float8 THEN 0
        WHEN cost >= 9000000000000 THEN 9000000000000000000
        ELSE ROUND(cost * 1000000)::BIGINT END;
ALTER TABLE usage_records DROP COLUMN cost;
CREATE INDEX usage_records_principal_ts ON usage_records (principal_id, ts);

-- +goose Down
DROP INDEX usage_records_principal_ts;
ALTER TABLE usage_records ADD COLUMN cost DOUBLE PRECISION NOT NULL DEFAULT 0;
UPDATE usage_records SET cost = cost_micros / 1000000.0;
ALTER TABLE usage_records
    DROP COLUMN clamped,
    DROP COLUMN cost_micros,
    DROP COLUMN reasoning_tokens,
    DROP COLUMN cache_write_tokens,
    DROP COLUMN upstream_status,
    DROP COLUMN upstream_model,
    DROP COLUMN owner,
    DROP COLUMN principal_kind,
    DROP COLUMN principal_id,
    DROP COLUMN client_request_id;

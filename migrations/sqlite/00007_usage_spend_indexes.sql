-- Budgets rebuild a subject's spend from usage rows since its period start
-- (store.SpendSince) whenever the quota counters are missing (a new
-- process, a flushed Redis). Keys and models are served by (key_id, ts) and
-- (model, ts); owners and deployments had no index (00005 dropped owner's),
-- so the sum read every row since the period start, the whole table for a
-- lifetime budget. These indexes are partial: a row without an owner (or
-- a deployment) costs nothing more to insert; SpendSince repeats the
-- predicate so both databases can use them. Measured on SQLite: inserts
-- in 1,000-row batches, every row with an owner, about 69k rows/s before,
-- 63k with the owner index, 58k with both; one owner's spend over 200,000
-- rows holding 2,000 of its own (BenchmarkSpendSince) 8 ms with the index,
-- 65 ms without, the latter growing with the table.

-- +goose Up
CREATE INDEX usage_records_owner_ts ON usage_records (owner, ts) WHERE owner <> '';
CREATE INDEX usage_records_deployment_ts ON usage_records (deployment, ts) WHERE deployment <> '';

-- +goose Down
DROP INDEX usage_records_deployment_ts;
DROP INDEX usage_records_owner_ts;

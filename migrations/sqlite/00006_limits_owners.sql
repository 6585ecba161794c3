-- Quotas configuration.
-- 1. api_keys.limits and models.limits: the subject's llm.Limits as a JSON
--    object (rpm, tpm, max_parallel, fail_mode, budget); '{}' is no limit,
--    so existing rows keep none. A deployment's limits live inside the
--    deployments JSON of its model.
-- 2. owners: the teams or users keys account their usage to (api_keys.owner,
--    usage_records.owner), with limits shared by all their keys. A key's
--    owner needs no row here; a row only adds limits.

-- +goose Up
ALTER TABLE api_keys ADD COLUMN limits TEXT NOT NULL DEFAULT '{}';
ALTER TABLE models ADD COLUMN limits TEXT NOT NULL DEFAULT '{}';
CREATE TABLE owners (
    name       TEXT PRIMARY KEY,
    limits     TEXT NOT NULL DEFAULT '{}',
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    revision   INTEGER NOT NULL DEFAULT 0
);

-- +goose Down
DROP TABLE owners;
ALTER TABLE models DROP COLUMN limits;
ALTER TABLE api_keys DROP COLUMN limits;

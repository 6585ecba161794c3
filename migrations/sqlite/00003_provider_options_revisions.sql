-- Provider configuration per family, and a revision on every config row.
-- 1. providers.options: the family's settings as JSON ('{}' when none).
--    providers.secrets_enc: a JSON object of secret name -> AES-GCM sealed
--    value (bound to the provider id and the name), '{}' when none.
-- 2. providers, models and api_keys get revision: the config_version of
--    the write that last changed the row. Existing rows get the current one.

-- +goose Up
ALTER TABLE providers ADD COLUMN options TEXT NOT NULL DEFAULT '{}';
ALTER TABLE providers ADD COLUMN secrets_enc TEXT NOT NULL DEFAULT '{}';
ALTER TABLE providers ADD COLUMN revision INTEGER NOT NULL DEFAULT 0;
ALTER TABLE models ADD COLUMN revision INTEGER NOT NULL DEFAULT 0;
ALTER TABLE api_keys ADD COLUMN revision INTEGER NOT NULL DEFAULT 0;
UPDATE providers SET revision = (SELECT version FROM config_version WHERE id = 1);
UPDATE models SET revision = (SELECT version FROM config_version WHERE id = 1);
UPDATE api_keys SET revision = (SELECT version FROM config_version WHERE id = 1);

-- +goose Down
ALTER TABLE api_keys DROP COLUMN revision;
ALTER TABLE models DROP COLUMN revision;
ALTER TABLE providers DROP COLUMN revision;
ALTER TABLE providers DROP COLUMN secrets_enc;
ALTER TABLE providers DROP COLUMN options;

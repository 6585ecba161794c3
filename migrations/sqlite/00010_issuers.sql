-- OIDC/JWT issuers (auth issue): whose tokens the proxy accepts as
-- credentials. audiences, algorithms and models are JSON arrays, claims
-- the claim mapping ({"subject","team","models"}) and limits the
-- per-subject llm.Limits as JSON objects. secret_enc is the optional
-- HS256 secret, sealed like provider API keys (NULL when none). The issuer
-- URL is unique: it selects the issuer for a token. usage_records gain a
-- partial index for JWT principals' budgets (rebuilt from usage by
-- principal_id).

-- +goose Up
CREATE TABLE issuers (
    id                  TEXT PRIMARY KEY,
    name                TEXT NOT NULL UNIQUE,
    issuer              TEXT NOT NULL UNIQUE,
    jwks_uri            TEXT NOT NULL DEFAULT '',
    audiences           TEXT NOT NULL DEFAULT '[]',
    algorithms          TEXT NOT NULL DEFAULT '[]',
    leeway_ms           INTEGER NOT NULL DEFAULT 30000,
    allow_insecure_http INTEGER NOT NULL DEFAULT 0,
    models              TEXT NOT NULL DEFAULT '[]',
    claims              TEXT NOT NULL DEFAULT '{}',
    limits              TEXT NOT NULL DEFAULT '{}',
    secret_enc          TEXT,
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL,
    revision            INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX usage_records_jwt_principal_ts ON usage_records (principal_id, ts) WHERE principal_kind = 'jwt';

-- +goose Down
DROP INDEX usage_records_jwt_principal_ts;
DROP TABLE issuers;

-- Timestamps are TIMESTAMPTZ (UTC).

-- +goose Up
CREATE TABLE providers (
    id                    TEXT PRIMARY KEY,
    name                  TEXT NOT NULL UNIQUE,
    type                  TEXT NOT NULL,
    base_url              TEXT NOT NULL,
    api_key_enc           TEXT,
    headers               TEXT NOT NULL DEFAULT '{}',
    connect_timeout_ms    BIGINT NOT NULL DEFAULT 0,
    first_byte_timeout_ms BIGINT NOT NULL DEFAULT 0,
    idle_timeout_ms       BIGINT NOT NULL DEFAULT 0,
    created_at            TIMESTAMPTZ NOT NULL,
    updated_at            TIMESTAMPTZ NOT NULL
);

CREATE TABLE models (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    deployments TEXT NOT NULL DEFAULT '[]',
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL
);

CREATE TABLE api_keys (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    prefix     TEXT NOT NULL,
    hash       TEXT NOT NULL UNIQUE,
    models     TEXT NOT NULL DEFAULT '[]',
    expires_at TIMESTAMPTZ,
    metadata   TEXT NOT NULL DEFAULT '{}',
    disabled   BOOLEAN NOT NULL DEFAULT FALSE,
    created_at TIMESTAMPTZ NOT NULL,
    revoked_at TIMESTAMPTZ
);

CREATE TABLE usage_records (
    request_id        TEXT NOT NULL UNIQUE,
    ts                TIMESTAMPTZ NOT NULL,
    key_id            TEXT NOT NULL DEFAULT '',
    key_prefix        TEXT NOT NULL DEFAULT '',
    endpoint          TEXT NOT NULL DEFAULT '',
    model             TEXT NOT NULL DEFAULT '',
    provider          TEXT NOT NULL DEFAULT '',
    deployment        TEXT NOT NULL DEFAULT '',
    prompt_tokens     BIGINT NOT NULL DEFAULT 0,
    completion_tokens BIGINT NOT NULL DEFAULT 0,
    cached_tokens     BIGINT NOT NULL DEFAULT 0,
    cost              DOUBLE PRECISION NOT NULL DEFAULT 0,
    latency_ms        DOUBLE PRECISION NOT NULL DEFAULT 0,
    ttft_ms           DOUBLE PRECISION NOT NULL DEFAULT 0,
    http_status       INTEGER NOT NULL DEFAULT 0,
    status            TEXT NOT NULL DEFAULT '',
    error_type        TEXT NOT NULL DEFAULT '',
    stream            BOOLEAN NOT NULL DEFAULT FALSE,
    estimated         BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX usage_records_ts ON usage_records (ts);
CREATE INDEX usage_records_key_ts ON usage_records (key_id, ts);
CREATE INDEX usage_records_model_ts ON usage_records (model, ts);

CREATE TABLE config_version (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    version BIGINT NOT NULL
);
INSERT INTO config_version (id, version) VALUES (1, 0);

-- +goose Down
DROP TABLE config_version;
DROP TABLE usage_records;
DROP TABLE api_keys;
DROP TABLE models;
DROP TABLE providers;

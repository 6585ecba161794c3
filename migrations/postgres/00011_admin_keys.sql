-- Admin keys (issue 9): keys for the admin API beyond the bootstrap key
-- (SLUICE_ADMIN_KEY), each with a role: admin (everything) or viewer
-- (read-only). Like api_keys, only the SHA-256 of the secret (hash) and a
-- display prefix are stored; the secret is shown once, at creation.
-- created_by names the admin principal that created the key (an admin
-- key id, "bootstrap" or a token subject), for the audit trail.

-- +goose Up
CREATE TABLE admin_keys (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    prefix     TEXT NOT NULL,
    hash       TEXT NOT NULL UNIQUE,
    role       TEXT NOT NULL,
    expires_at TIMESTAMPTZ,
    disabled   BOOLEAN NOT NULL DEFAULT FALSE,
    created_at TIMESTAMPTZ NOT NULL,
    created_by TEXT NOT NULL DEFAULT '',
    revoked_at TIMESTAMPTZ,
    revision   BIGINT NOT NULL DEFAULT 0
);

-- +goose Down
DROP TABLE admin_keys;

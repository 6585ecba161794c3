-- Admin JWTs (issue 9): an issuer whose tokens the admin API also accepts.
-- issuers.admin is a JSON object (llm.IssuerAdmin: audiences apart from the
-- proxy audiences, role_claim, and the claim values granting admin and
-- viewer); '' for an issuer whose tokens only reach the proxy.

-- +goose Up
ALTER TABLE issuers ADD COLUMN admin TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE issuers DROP COLUMN admin;

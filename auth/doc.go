// Package auth turns a request's credentials into a Principal. Sluice keys
// are looked up by their SHA-256 in the configuration snapshot (the secret
// itself is never stored); bearer tokens shaped as JWTs are validated
// against the configured OIDC/JWT issuers by an Authenticator, which keeps
// each issuer's signing keys (JWKS) in a cache that survives reloads.
package auth

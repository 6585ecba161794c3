// Package auth turns a request's credentials into a Principal. Sluice keys
// are looked up by their SHA-256 in the configuration snapshot (the secret
// itself is never stored); later parts add OIDC/JWT issuers.
package auth

// Package admin serves Sluice's admin REST API on the admin listener with
// gin: CRUD for providers, models and keys, usage queries, /metrics and the
// health probes. Every route except GET /healthz and GET /readyz requires
// the admin key (X-API-KEY or Authorization: Bearer), including unknown
// paths. Provider credentials are write-only and key secrets are shown only
// in the response that creates them.
package admin

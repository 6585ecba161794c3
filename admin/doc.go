// Package admin serves Sluice's admin REST API on the admin listener with
// gin: CRUD for providers, models, keys and owners (with their quota
// limits, and each subject's consumption from Options.Quotas on GET of one
// item), usage queries, /metrics and the health probes, deployment health,
// and the dashboard mount at /ui. Every
// route except GET /healthz, GET /readyz and the dashboard's static files
// (GET /ui, GET /ui/*) requires the admin key (X-API-KEY or Authorization:
// Bearer), including unknown paths. Provider credentials are write-only and
// key secrets are shown only in the response that creates them.
package admin

// Package store persists Sluice's configuration (providers, models, API keys,
// owners, and the quota limits of keys, owners, models and deployments)
// and usage records in SQLite (the embedded default, via the pure-Go
// modernc.org/sqlite driver) or PostgreSQL (via pgx), and builds the
// immutable llm.Snapshot the hot path reads.
//
// Provider API keys are encrypted at rest with AES-256-GCM and are only ever
// decrypted by LoadSnapshot. Sluice keys are stored as the hex SHA-256 of the
// secret plus a short display prefix. Every configuration write bumps a
// version counter in the same transaction (and, on PostgreSQL, sends a
// NOTIFY on channel "sluice_config") so replicas can reload through Watch.
//
// Timestamps are UTC: INTEGER unix milliseconds in SQLite, TIMESTAMPTZ in
// PostgreSQL.
package store

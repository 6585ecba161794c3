// Package llm holds the neutral types every other Sluice package shares:
// the configuration snapshot (providers, models, deployments, keys), usage
// records and the gateway's error type. It imports the standard library only.
package llm

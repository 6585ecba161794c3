// Package server wires Sluice together: it opens the store, runs
// migrations, loads the configuration snapshot and keeps it fresh, builds
// the providers, balancer, usage recorder and metrics, and serves the proxy
// and admin listeners until its context ends, then drains and flushes.
package server

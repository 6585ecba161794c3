// Package balancer chooses which deployment of a model serves a request and
// keeps each deployment's passive health: consecutive failures put a
// deployment in cooldown, a 429 cools it down for its Retry-After. It never
// imports providers: it picks a deployment, and the router looks up the
// provider that serves it.
package balancer

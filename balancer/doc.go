// Package balancer chooses which deployment of a model serves a request and
// keeps each deployment's passive health, keyed by the deployment's stable
// id: consecutive failures within a window eject a deployment with
// exponential backoff, a 429 cools it down for its Retry-After (capped), a
// rejected provider credential marks it dead until the provider's
// configuration changes, and a success re-admits it. For a provider with
// active probes (ProbeResult, probe.go) failing probes eject too, and an
// ejected deployment returns only after passing probes. Classify is the
// one place that says what an attempt's error means for the deployment.
//
// A request gets a Plan and asks it for one deployment at a time (Next),
// each pick made with the health and in-flight state of that moment: the
// available deployments in the order of the model's strategy (auto,
// weighted, least_busy, latency, cost, priority; see docs/DESIGN.md,
// "Balancing policies"), then the unavailable ones as last resorts. Each
// attempt is bracketed by Start and the function it returns.
//
// It never imports providers: it picks a deployment, and the router looks up
// the provider that serves it.
package balancer

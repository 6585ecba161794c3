// Package quota enforces rate limits, token quotas and money budgets, and
// estimates tokens.
//
// A Limiter admits each request against the limits of its key, its owner
// and its model (and each attempt against its deployment's) in one call to
// a Store, reserving the request's estimated tokens and worst-case cost,
// and settles the reservation to the real usage when the request ends. The
// Store is Memory (one process) or Redis (one atomic Lua script per
// admission, shared by every replica); quota/storetest holds the contract
// both pass. When Redis cannot decide, each limit's fail mode does: rate
// limits fall back to a local store at their share of the limit, budgets
// refuse. Budgets missing from the store are rebuilt from the usage
// records (SpendSource).
//
// The Estimator counts tokens offline with tiktoken's ranks (o200k_base or
// cl100k_base by model family), exactly as tiktoken does, in linear time,
// with a cache of counts for message texts that repeat across requests.
package quota

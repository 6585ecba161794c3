// Package quota holds rate limits, budgets and token estimation. This first
// part is the estimator: counting tokens offline with tiktoken when an
// upstream does not report usage.
package quota

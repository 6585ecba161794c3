package quota

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"time"

	"github.com/sluice-ai/sluice/llm"
)

// Store keeps the quota counters every replica shares. There are two
// implementations: Memory (one process; the default when REDIS_URL is
// empty) and Redis (one atomic Lua script per admission; time from the
// Redis server's clock). The contract suite in quota/storetest runs on
// both. Every method is safe for concurrent use.
//
// The counters of one Subject are:
//   - an RPM and a TPM token bucket: capacity = the limit, refilled at
//     limit per minute, continuously (so a burst of `limit` passes at once,
//     then one unit every minute/limit). Admit takes Charge.Requests (1)
//     and Charge.Tokens; Settle adds Reserved.Tokens-Actual.Tokens back
//     (a bucket never holds more than its capacity; an overrun may leave
//     it below zero, delaying later requests: debt);
//   - concurrency: reservations holding a slot (Charge.Parallel) until
//     settled or until their TTL passes (a crashed replica leaks nothing);
//   - a budget for the current period (llm.PeriodBounds of the store's
//     clock): spent micro-USD and tokens, plus the amounts held by live
//     reservations. Admission needs spent + reserved + charge <= limit.
//     Settle releases the reservation and adds Actual to spent. A budget
//     whose counters are missing (a new process, a flushed or restarted
//     Redis) is not assumed to be zero: Admit answers NeedSeed, the caller
//     rebuilds spend from the usage records and calls Seed, then admits
//     again. Settle never creates a missing budget counter (the usage
//     record carries that spend into the rebuild). When the period rolls
//     over, spend starts again from zero.
//
// A limit of 0 means none: Admit neither checks nor counts it.
type Store interface {
	// Admit checks every limit of every subject against c and, only if
	// all allow, takes c from each of them under reservation id (one
	// atomic step: concurrent admissions never over-admit). A refusal
	// takes nothing. err is for a store that could not decide (Redis
	// down, timeout); the decision is then meaningless.
	Admit(ctx context.Context, r *AdmitRequest) (Decision, error)
	// Settle ends the reservation: releases its concurrency slot and its
	// reserved budget, trues up the TPM buckets and adds the actual spend
	// to the budgets. Settling an unknown or expired reservation still
	// trues up and adds spend (an admission made while the store was
	// unreachable is settled this way).
	Settle(ctx context.Context, s *Settlement) error
	// Seed sets the spend of budgets that are missing, rebuilt from the
	// usage records; a budget that exists by then is left alone (another
	// replica seeded it first).
	Seed(ctx context.Context, seeds []Seed) error
	// Peek reads the subjects' counters without taking anything, for the
	// admin API.
	Peek(ctx context.Context, subjects []Subject) ([]State, error)
}

// Scope is what kind of thing a Subject is.
type Scope string

// Scopes.
const (
	ScopeKey        Scope = "key"
	ScopeOwner      Scope = "owner"
	ScopeModel      Scope = "model"
	ScopeDeployment Scope = "deployment"
	// ScopeSubject is one JWT principal (issuer name ":" subject claim)
	// under its issuer's per-subject limits.
	ScopeSubject Scope = "subject"
)

// Subject is one thing limits apply to. ID is the key id, owner name,
// model name or deployment id: configuration, never a client-chosen value.
type Subject struct {
	Scope  Scope
	ID     string
	Limits llm.Limits
}

// Tag is the subject's Redis hash tag, "{scope:hash}": every key of one
// subject lives in one Cluster slot. The id is hashed so that braces or
// odd bytes in an owner or model name cannot change the slot or the key.
func (s *Subject) Tag() string {
	h := sha256.Sum256([]byte(s.ID))
	return "{" + string(s.Scope) + ":" + hex.EncodeToString(h[:10]) + "}"
}

// Charge is what one request takes from each subject.
type Charge struct {
	// Requests counts against RPM (1 per request; 0 in a Settlement).
	Requests int64
	// Tokens counts against TPM and the token budget: at admission the
	// estimated prompt plus max_tokens; at settlement the actual total.
	Tokens int64
	// CostMicros counts against the USD budget: at admission the
	// worst-case cost; at settlement the actual cost.
	CostMicros int64
	// Parallel holds a concurrency slot until settled.
	Parallel bool
}

// AdmitRequest is one admission.
type AdmitRequest struct {
	// ID names the reservation (the gateway's request id); Settle refers
	// to it.
	ID       string
	Subjects []Subject
	Charge   Charge
	// TTL bounds how long the reservation holds its slot and its budget
	// when it is never settled. Default 15 minutes.
	TTL time.Duration
}

// Settlement ends one admission.
type Settlement struct {
	ID       string
	Subjects []Subject
	// Reserved is the Charge that was admitted.
	Reserved Charge
	// Actual is what the request used: Tokens and CostMicros (Requests
	// and Parallel are ignored).
	Actual Charge
}

// Seed is a budget's spend rebuilt from usage records.
type Seed struct {
	Subject Subject
	// Start is the period start the spend was summed from; a seed for a
	// period that is no longer current is ignored.
	Start       time.Time
	SpentMicros int64
	SpentTokens int64
}

// Limit names one kind of limit.
type Limit string

// Limits a Decision can name.
const (
	LimitRPM          Limit = "rpm"
	LimitTPM          Limit = "tpm"
	LimitParallel     Limit = "max_parallel"
	LimitBudgetUSD    Limit = "budget.usd"
	LimitBudgetTokens Limit = "budget.tokens"
)

// Decision is Admit's answer.
type Decision struct {
	// Allowed is true when every limit allowed and c was taken.
	Allowed bool
	// Denied is the index in Subjects of the subject that refused, and
	// Limit the limit that did; -1 and "" when allowed or when seeding is
	// needed.
	Denied int
	Limit  Limit
	// RetryAfter is when the refused limit could admit this charge
	// (bucket refill, the period's end for a budget; 0 when unknown, e.g.
	// for concurrency or a lifetime budget).
	RetryAfter time.Duration
	// NeedSeed lists the indexes of subjects whose budget counters are
	// missing: nothing was taken; seed them and admit again.
	NeedSeed []int
	// PeriodStarts are, for each subject in NeedSeed, the start of the
	// current period by the store's clock.
	PeriodStarts []time.Time
	// States are the subjects' counters after the decision, in order.
	States []State
	// Now is the store's clock at the decision.
	Now time.Time
}

// State is one subject's counters.
type State struct {
	RPM      Window
	TPM      Window
	Parallel Gauge
	Budget   BudgetState
}

// Window is a token bucket's state.
type Window struct {
	Limit int64 // 0: no such limit
	// Remaining is what could be taken now (may be negative after an
	// overrun).
	Remaining int64
	// Reset is how long until the bucket is full again.
	Reset time.Duration
}

// Gauge is the concurrency state.
type Gauge struct {
	Limit int64
	InUse int64
}

// BudgetState is a budget's state in the current period.
type BudgetState struct {
	Period         llm.Period // "" when the subject has no budget
	Start, End     time.Time  // End is zero for a lifetime budget
	LimitMicros    int64
	SpentMicros    int64
	ReservedMicros int64
	LimitTokens    int64
	SpentTokens    int64
	ReservedTokens int64
	// Missing is true when the counters are not in the store (Peek of a
	// budget not yet seeded).
	Missing bool
}

// ErrUnavailable wraps a store's failure to decide.
var ErrUnavailable = errors.New("quota: store unavailable")

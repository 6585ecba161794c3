package store

import (
	"context"
	"fmt"
	"math"
	"time"
)

// Scopes of SpendSince: the subjects a budget can belong to.
const (
	SpendKey        = "key"        // id is the key id
	SpendOwner      = "owner"      // id is the owner name
	SpendModel      = "model"      // id is the public model name
	SpendDeployment = "deployment" // id is the deployment id
	SpendSubject    = "subject"    // id is a JWT principal's id (issuer:subject)
)

// spendColumn is the usage_records column that names a scope's subject.
// Each has an index led by it and ts (migrations 00001, 00007 and 00010;
// owner's and deployment's are partial, WHERE col <> ”, and the JWT
// subject's WHERE principal_kind = 'jwt', which SpendSince repeats so the
// planners can prove it), so a sum reads only the subject's rows since the
// period start.
func spendColumn(scope string) (string, bool) {
	switch scope {
	case SpendKey:
		return "key_id", true
	case SpendOwner:
		return "owner", true
	case SpendModel:
		return "model", true
	case SpendDeployment:
		return "deployment", true
	case SpendSubject:
		return "principal_id", true
	}
	return "", false
}

// SpendSince sums what the usage records of one subject cost since since
// (inclusive): micros in micro-USD (cost_micros) and tokens (prompt plus
// completion), the spend a budget's counters are rebuilt from. scope is
// "key" (id = key id), "owner" (owner name), "model" (public model name)
// "deployment" (deployment id) or "subject" (a JWT principal's id). Both sums saturate at the int64 maximum
// instead of overflowing. An empty id has no spend.
func (s *Store) SpendSince(ctx context.Context, scope, id string, since time.Time) (micros, tokens int64, err error) {
	col, ok := spendColumn(scope)
	if !ok {
		return 0, 0, invalid("scope", "must be key, owner, model, deployment or subject")
	}
	if id == "" || len(id) > maxUsageText {
		// No row names the empty subject as its own (owner '' is "no
		// owner"), and no stored value is longer than maxUsageText.
		return 0, 0, nil
	}
	var cost, prompt, completion satInt
	err = s.rdb.QueryRowContext(ctx, s.spendQuery(col), id, s.tv(since)).Scan(&cost, &prompt, &completion)
	if err != nil {
		return 0, 0, fmt.Errorf("store: spend of %s: %w", scope, err)
	}
	return max(int64(cost), 0), addSat(max(int64(prompt), 0), max(int64(completion), 0)), nil
}

// spendQuery is SpendSince's SQL for the subject column col.
func (s *Store) spendQuery(col string) string {
	return `SELECT ` + s.sum("cost_micros") + `, ` + s.sum("prompt_tokens") + `, ` + s.sum("completion_tokens") +
		` FROM usage_records WHERE ` + col + ` = $1 AND ` + col + ` <> '' AND ts >= $2` + kindFilter(col)
}

// kindFilter narrows a principal_id sum to JWT principals: their partial
// index (migration 00010) covers only those rows, and a key's id can
// never be taken for a subject's.
func kindFilter(col string) string {
	if col == "principal_id" {
		return ` AND principal_kind = 'jwt'`
	}
	return ""
}

// addSat adds two non-negative int64s, saturating at the maximum.
func addSat(a, b int64) int64 {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

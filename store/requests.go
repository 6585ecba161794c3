package store

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-ai/sluice/llm"
)

// RequestQuery selects usage records for the request log.
type RequestQuery struct {
	// From (inclusive) and To (exclusive) bound the record time. Zero To
	// means now; zero From means 24 hours before To.
	From, To time.Time
	// KeyID, Model, Provider and Owner, when set, filter the records exactly.
	KeyID, Model, Provider, Owner string
	// ClientRequestID, when set, selects the records whose client sent
	// this X-Request-Id (several requests may share one).
	ClientRequestID string
	// Status, when set, is one of ok, error, client_cancelled,
	// stream_broken.
	Status string
	// Page selects the page; newest records come first.
	Page Page
}

// RequestRow is one usage record as the request log shows it.
type RequestRow struct {
	// RequestID is the gateway's id (X-Sluice-Request-Id); ClientRequestID
	// the X-Request-Id the client sent, if any.
	RequestID       string    `json:"request_id"`
	ClientRequestID string    `json:"client_request_id"`
	Time            time.Time `json:"time"` // UTC
	PrincipalID     string    `json:"principal_id"`
	PrincipalKind   string    `json:"principal_kind"`
	Owner           string    `json:"owner"`
	KeyID           string    `json:"key_id"`
	KeyPrefix       string    `json:"key_prefix"`
	Endpoint        string    `json:"endpoint"`
	Model           string    `json:"model"`
	Provider        string    `json:"provider"`
	Deployment      string    `json:"deployment"`
	UpstreamModel   string    `json:"upstream_model"`
	PromptTokens    int64     `json:"prompt_tokens"`
	// CompletionTokens includes ReasoningTokens; PromptTokens includes
	// CachedTokens (cache reads) and CacheWriteTokens.
	CompletionTokens int64   `json:"completion_tokens"`
	CachedTokens     int64   `json:"cached_tokens"`
	CacheWriteTokens int64   `json:"cache_write_tokens"`
	ReasoningTokens  int64   `json:"reasoning_tokens"`
	Cost             float64 `json:"cost"` // CostMicros in USD, for display
	CostMicros       int64   `json:"cost_micros"`
	LatencyMS        float64 `json:"latency_ms"`
	TTFTMS           float64 `json:"ttft_ms"`
	HTTPStatus       int     `json:"http_status"`
	UpstreamStatus   int     `json:"upstream_status"`
	Status           string  `json:"status"`
	ErrorType        string  `json:"error_type"`
	Stream           bool    `json:"stream"`
	Estimated        bool    `json:"estimated"`
	// Clamped is true when the upstream reported impossible usage and the
	// gateway stored bounded figures instead (see llm.Usage.Sanitize).
	Clamped bool `json:"clamped"`
	// Attempts counts the upstream attempts (hedges included); Hedged is
	// true when a hedge was sent; ServedModel names the fallback model
	// that answered, "" when the requested one did.
	Attempts    int    `json:"attempts"`
	Hedged      bool   `json:"hedged"`
	ServedModel string `json:"served_model,omitempty"`
}

// ValidStatus reports whether s is a usage status the request log filters
// on: ok, error, client_cancelled or stream_broken.
func ValidStatus(s string) bool {
	switch s {
	case llm.StatusOK, llm.StatusError, llm.StatusClientCancelled, llm.StatusStreamBroken:
		return true
	}
	return false
}

// usageFilter builds the WHERE clause shared by the usage reads: a time
// range plus exact-match filters, with PostgreSQL-style $N placeholders
// (both drivers accept them).
type usageFilter struct {
	where []string
	args  []any
}

// eq adds "col = value" when value is set. col is always a constant.
func (f *usageFilter) eq(col, value string) {
	if value == "" {
		return
	}
	f.args = append(f.args, value)
	f.where = append(f.where, col+" = $"+strconv.Itoa(len(f.args)))
}

// sql returns the WHERE condition.
func (f *usageFilter) sql() string { return strings.Join(f.where, " AND ") }

// next returns the placeholder of the next argument to be appended.
func (f *usageFilter) next() string { return "$" + strconv.Itoa(len(f.args)+1) }

// timeFilter applies the default window (the 24 hours before now) and
// returns a filter on [from, to).
func (s *Store) timeFilter(from, to time.Time) (time.Time, time.Time, *usageFilter, error) {
	if to.IsZero() {
		to = time.Now()
	}
	if from.IsZero() {
		from = to.Add(-24 * time.Hour)
	}
	if from.After(to) {
		return from, to, nil, invalid("from", "must not be after to")
	}
	return from, to, &usageFilter{where: []string{"ts >= $1", "ts < $2"}, args: []any{s.tv(from), s.tv(to)}}, nil
}

// readTx runs fn in a read-only transaction that sees one snapshot of the
// database, so several queries agree with each other.
func (s *Store) readTx(ctx context.Context, fn func(*sql.Tx) error) error {
	var opts *sql.TxOptions
	if s.dialect == DialectPostgres {
		opts = &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true}
	}
	// SQLite's reader pool uses deferred transactions: in WAL mode the
	// first read fixes the snapshot and no lock blocks the writer.
	tx, err := s.rdb.BeginTx(ctx, opts)
	if err != nil {
		return fmt.Errorf("store: begin read: %w", err)
	}
	defer func() { _ = tx.Rollback() }() // read-only: nothing to commit
	return fn(tx)
}

// requestCols are the columns ListRequests reads, in RequestRow order.
const requestCols = `request_id, client_request_id, ts, principal_id, principal_kind, owner, key_id, key_prefix,
	endpoint, model, provider, deployment, upstream_model,
	prompt_tokens, completion_tokens, cached_tokens, cache_write_tokens, reasoning_tokens, cost_micros, latency_ms, ttft_ms,
	http_status, upstream_status, status, error_type, stream, estimated, clamped, attempts, hedged, served_model`

// ListRequests returns one page of usage records matching q, newest first
// (ties broken by request id, descending), and the number of matching
// records.
func (s *Store) ListRequests(ctx context.Context, q RequestQuery) ([]RequestRow, int, error) {
	if q.Status != "" && !ValidStatus(q.Status) {
		return nil, 0, invalid("status", "must be one of ok, error, client_cancelled, stream_broken")
	}
	p := q.Page.Normalize()
	_, _, f, err := s.timeFilter(q.From, q.To)
	if err != nil {
		return nil, 0, err
	}
	f.eq("key_id", q.KeyID)
	f.eq("model", q.Model)
	f.eq("provider", q.Provider)
	f.eq("status", q.Status)
	f.eq("client_request_id", q.ClientRequestID)
	f.eq("owner", q.Owner)
	where := f.sql()

	var total int
	out := []RequestRow{}
	err = s.readTx(ctx, func(tx *sql.Tx) error {
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM usage_records WHERE `+where, f.args...).Scan(&total); err != nil {
			return fmt.Errorf("store: count requests: %w", err)
		}
		if total <= p.offset() {
			return nil
		}
		limit := f.next()
		f.args = append(f.args, p.PageSize)
		offset := f.next()
		f.args = append(f.args, p.offset())
		rows, err := tx.QueryContext(ctx, `SELECT `+requestCols+` FROM usage_records WHERE `+where+
			` ORDER BY ts DESC, request_id DESC LIMIT `+limit+` OFFSET `+offset, f.args...)
		if err != nil {
			return fmt.Errorf("store: list requests: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var r RequestRow
			var ts dbTime
			if err := rows.Scan(&r.RequestID, &r.ClientRequestID, &ts, &r.PrincipalID, &r.PrincipalKind, &r.Owner, &r.KeyID, &r.KeyPrefix,
				&r.Endpoint, &r.Model, &r.Provider, &r.Deployment, &r.UpstreamModel,
				&r.PromptTokens, &r.CompletionTokens, &r.CachedTokens, &r.CacheWriteTokens, &r.ReasoningTokens, &r.CostMicros, &r.LatencyMS, &r.TTFTMS,
				&r.HTTPStatus, &r.UpstreamStatus, &r.Status, &r.ErrorType, &r.Stream, &r.Estimated, &r.Clamped,
				&r.Attempts, &r.Hedged, &r.ServedModel); err != nil {
				return fmt.Errorf("store: list requests: %w", err)
			}
			r.Cost = float64(r.CostMicros) / 1e6
			r.Time = ts.T
			out = append(out, r)
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("store: list requests: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, 0, err
	}
	return out, total, nil
}

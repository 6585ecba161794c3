package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sluice-ai/sluice/llm"
)

// usageCols are usage_records' columns in insert order.
var usageCols = []string{"request_id", "client_request_id", "ts", "principal_id", "principal_kind", "owner",
	"key_id", "key_prefix", "endpoint", "model", "provider", "deployment", "upstream_model",
	"prompt_tokens", "completion_tokens", "cached_tokens", "cache_write_tokens", "reasoning_tokens", "cost_micros",
	"latency_ms", "ttft_ms", "http_status", "upstream_status", "status", "error_type", "stream", "estimated", "clamped"}

// usageChunkSizes are the row counts of the multi-row INSERTs a batch is
// split into, largest first. Each size's statement is prepared once and
// reused, so SQL is parsed once per size rather than once per batch; 256
// rows × 19 columns stays under both databases' parameter limits.
func usageChunkSizes() [5]int { return [5]int{256, 64, 16, 4, 1} }

// stmtCache holds prepared usage INSERTs by row count.
type stmtCache struct {
	mu sync.Mutex
	m  map[int]*sql.Stmt
}

func (c *stmtCache) close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var errs []error
	for _, st := range c.m {
		errs = append(errs, st.Close())
	}
	c.m = nil
	return errors.Join(errs...)
}

// InsertUsage writes records in one transaction with multi-row inserts.
// A record whose request_id is already stored is skipped, so retrying a
// batch never duplicates rows. Records without a RequestID get a random one.
func (s *Store) InsertUsage(ctx context.Context, recs []llm.Record) error {
	if len(recs) == 0 {
		return nil
	}
	// Split into chunks and prepare their statements before the
	// transaction: on SQLite the transaction holds the only writer
	// connection, so preparing inside it would wait forever.
	var sizes []int
	for left := len(recs); left > 0; {
		n := 1
		for _, size := range usageChunkSizes() {
			if size <= left {
				n = size
				break
			}
		}
		sizes = append(sizes, n)
		left -= n
	}
	stmts := make([]*sql.Stmt, len(sizes))
	for i, n := range sizes {
		st, err := s.usageStmt(ctx, n)
		if err != nil {
			return err
		}
		stmts[i] = st
	}
	return s.tx(ctx, func(tx *sql.Tx) error {
		args := make([]any, 0, sizes[0]*len(usageCols))
		rest := recs
		for i, n := range sizes {
			args = s.appendUsageArgs(args[:0], rest[:n])
			if _, err := tx.StmtContext(ctx, stmts[i]).ExecContext(ctx, args...); err != nil {
				return fmt.Errorf("store: insert usage: %w", err)
			}
			rest = rest[n:]
		}
		return nil
	})
}

// usageStmt returns the prepared INSERT of n rows.
func (s *Store) usageStmt(ctx context.Context, n int) (*sql.Stmt, error) {
	c := &s.usageStmts
	c.mu.Lock()
	defer c.mu.Unlock()
	if st, ok := c.m[n]; ok {
		return st, nil
	}
	st, err := s.db.PrepareContext(ctx, s.usageInsertSQL(n))
	if err != nil {
		return nil, fmt.Errorf("store: prepare usage insert: %w", err)
	}
	if c.m == nil {
		c.m = map[int]*sql.Stmt{}
	}
	c.m[n] = st
	return st, nil
}

// usageInsertSQL is the INSERT of n usage rows.
func (s *Store) usageInsertSQL(n int) string {
	var b strings.Builder
	b.Grow(64 + n*len(usageCols)*6)
	b.WriteString("INSERT INTO usage_records (")
	b.WriteString(strings.Join(usageCols, ", "))
	b.WriteString(") VALUES ")
	p := 0
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('(')
		for j := range usageCols {
			if j > 0 {
				b.WriteByte(',')
			}
			// SQLite resolves each named "$N" with a linear search, which
			// makes big multi-row inserts quadratic; plain "?" is O(1).
			p++
			if s.dialect == DialectSQLite {
				b.WriteByte('?')
			} else {
				b.WriteByte('$')
				b.WriteString(strconv.Itoa(p))
			}
		}
		b.WriteByte(')')
	}
	b.WriteString(" ON CONFLICT (request_id) DO NOTHING")
	return b.String()
}

// appendUsageArgs appends the column values of recs in usageCols order.
func (s *Store) appendUsageArgs(args []any, recs []llm.Record) []any {
	for _, r := range recs {
		id := r.ID
		if id == "" {
			id = newID("req_")
		}
		ts := r.Time
		if ts.IsZero() {
			ts = time.Now()
		}
		args = append(args, id, r.ClientRequestID, s.tv(ts), r.PrincipalID, r.PrincipalKind, r.Owner,
			r.KeyID, r.KeyPrefix, string(r.Endpoint), r.Model, r.Provider, r.Deployment, r.UpstreamModel,
			int64(r.PromptTokens), int64(r.CompletionTokens), int64(r.CacheReadTokens), int64(r.CacheWriteTokens), int64(r.ReasoningTokens), r.CostMicros,
			durMS(r.Latency), durMS(r.TTFT), int64(r.HTTPStatus), int64(r.UpstreamStatus), r.Status, r.ErrorType, r.Stream, r.Estimated, r.Clamped)
	}
	return args
}

func durMS(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// Usage group_by values.
const (
	GroupByHour     = "hour"
	GroupByDay      = "day"
	GroupByKey      = "key"
	GroupByModel    = "model"
	GroupByProvider = "provider"
)

// UsageQuery selects and groups usage records.
type UsageQuery struct {
	// From (inclusive) and To (exclusive) bound the record time. Zero To
	// means now; zero From means 24 hours before To.
	From, To time.Time
	// GroupBy is hour, day, key, model or provider.
	GroupBy string
	// KeyID and Model, when set, filter the records.
	KeyID, Model string
}

// UsageRow is one group of usage. Group is the bucket start (RFC3339, UTC)
// for hour and day, else the key id, model or provider.
type UsageRow struct {
	Group            string `json:"group"`
	Requests         int64  `json:"requests"`
	PromptTokens     int64  `json:"prompt_tokens"`
	CompletionTokens int64  `json:"completion_tokens"`
	CachedTokens     int64  `json:"cached_tokens"`
	// Cost is CostMicros in USD, for display.
	Cost       float64 `json:"cost"`
	CostMicros int64   `json:"cost_micros"`
	// Errors counts records with http_status >= 400 or status other than "ok".
	Errors int64 `json:"errors"`
}

// groupExpr returns the SQL grouping expression and whether it is a time
// bucket in unix milliseconds.
func (s *Store) groupExpr(groupBy string) (string, bool, error) {
	bucket := func(ms int64) string {
		if s.dialect == DialectSQLite {
			return fmt.Sprintf("(ts / %d) * %d", ms, ms)
		}
		return fmt.Sprintf("CAST(FLOOR(EXTRACT(EPOCH FROM ts) / %d) * %d AS BIGINT)", ms/1000, ms)
	}
	switch groupBy {
	case GroupByHour:
		return bucket(int64(time.Hour / time.Millisecond)), true, nil
	case GroupByDay:
		return bucket(int64(24 * time.Hour / time.Millisecond)), true, nil
	case GroupByKey:
		return "key_id", false, nil
	case GroupByModel:
		return "model", false, nil
	case GroupByProvider:
		return "provider", false, nil
	}
	return "", false, invalid("group_by", "must be one of hour, day, key, model, provider")
}

// QueryUsage aggregates usage records by q.GroupBy, ordered by group.
func (s *Store) QueryUsage(ctx context.Context, q UsageQuery) ([]UsageRow, error) {
	expr, isTime, err := s.groupExpr(q.GroupBy)
	if err != nil {
		return nil, err
	}
	if q.To.IsZero() {
		q.To = time.Now()
	}
	if q.From.IsZero() {
		q.From = q.To.Add(-24 * time.Hour)
	}
	if q.From.After(q.To) {
		return nil, invalid("from", "must not be after to")
	}
	where := []string{"ts >= $1", "ts < $2"}
	args := []any{s.tv(q.From), s.tv(q.To)}
	if q.KeyID != "" {
		args = append(args, q.KeyID)
		where = append(where, "key_id = $"+strconv.Itoa(len(args)))
	}
	if q.Model != "" {
		args = append(args, q.Model)
		where = append(where, "model = $"+strconv.Itoa(len(args)))
	}
	query := `SELECT ` + expr + ` AS grp, COUNT(*),
		CAST(SUM(prompt_tokens) AS BIGINT), CAST(SUM(completion_tokens) AS BIGINT), CAST(SUM(cached_tokens) AS BIGINT),
		CAST(SUM(cost_micros) AS BIGINT), SUM(CASE WHEN http_status >= 400 OR status <> 'ok' THEN 1 ELSE 0 END)
		FROM usage_records WHERE ` + strings.Join(where, " AND ") + ` GROUP BY grp ORDER BY grp`
	rows, err := s.rdb.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("store: query usage: %w", err)
	}
	defer rows.Close()
	out := []UsageRow{}
	for rows.Next() {
		var r UsageRow
		var g any
		if err := rows.Scan(&g, &r.Requests, &r.PromptTokens, &r.CompletionTokens, &r.CachedTokens, &r.CostMicros, &r.Errors); err != nil {
			return nil, fmt.Errorf("store: query usage: %w", err)
		}
		r.Cost = float64(r.CostMicros) / 1e6
		if isTime {
			ms, err := toInt64(g)
			if err != nil {
				return nil, fmt.Errorf("store: query usage: %w", err)
			}
			r.Group = time.UnixMilli(ms).UTC().Format(time.RFC3339)
		} else {
			r.Group = toString(g)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: query usage: %w", err)
	}
	return out, nil
}

func toInt64(v any) (int64, error) {
	switch x := v.(type) {
	case int64:
		return x, nil
	case float64:
		return int64(x), nil
	case []byte:
		return strconv.ParseInt(string(x), 10, 64)
	case string:
		return strconv.ParseInt(x, 10, 64)
	}
	return 0, fmt.Errorf("unexpected bucket type %T", v)
}

func toString(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case []byte:
		return string(x)
	}
	return fmt.Sprint(v)
}

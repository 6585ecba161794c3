package admin

import (
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/sluice-ai/sluice/store"
)

// usageResponse is GET /admin/usage's body.
type usageResponse struct {
	Items   []store.UsageRow `json:"items"`
	From    time.Time        `json:"from"`
	To      time.Time        `json:"to"`
	GroupBy string           `json:"group_by"`
}

// summaryResponse is GET /admin/usage/summary's body.
type summaryResponse struct {
	store.LatencySummary
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
}

// Unix seconds of 0001-01-01 and 9999-12-31T23:59:59Z: the times a JSON
// answer can carry.
const (
	minUnix = -62135596800
	maxUnix = 253402300799
)

// parseTime accepts RFC3339 or unix seconds, between the years 1 and 9999
// (UTC); anything else is malformed, not silently wrapped or unanswerable.
func parseTime(s string) (time.Time, bool) {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n < minUnix || n > maxUnix {
			return time.Time{}, false
		}
		return time.Unix(n, 0).UTC(), true
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	t = t.UTC()
	return t, err == nil && t.Year() >= 1 && t.Year() <= 9999
}

// timeRange parses ?from and ?to (RFC3339 or unix seconds); defaults: to
// is now and from is 24 hours before to. It renders the error and returns
// false when either is malformed.
func (a *api) timeRange(c *gin.Context) (from, to time.Time, ok bool) {
	if to, ok = a.queryTime(c, "to", time.Now().UTC()); !ok {
		return from, to, false
	}
	from, ok = a.queryTime(c, "from", to.Add(-24*time.Hour))
	return from, to, ok
}

// queryTime parses the query parameter name (RFC3339 or unix seconds),
// returning def when it is absent. It renders the error and returns false
// when the value is malformed.
func (a *api) queryTime(c *gin.Context, name string, def time.Time) (time.Time, bool) {
	v := c.Query(name)
	if v == "" {
		return def, true
	}
	t, ok := parseTime(v)
	if !ok {
		a.error(c, http.StatusBadRequest, name+" must be RFC3339 or unix seconds, between the years 1 and 9999", "invalid_request_error", name, "invalid_value")
	}
	return t, ok
}

// usage serves GET /admin/usage?from=&to=&group_by=&key=&model=&owner=;
// defaults: the last 24 hours grouped by day. group_by is one of
// store.GroupByValues.
func (a *api) usage(c *gin.Context) {
	from, to, ok := a.timeRange(c)
	if !ok {
		return
	}
	f, ok := a.filters(c, "key", "model", "owner")
	if !ok {
		return
	}
	q := store.UsageQuery{From: from, To: to, GroupBy: c.DefaultQuery("group_by", store.GroupByDay),
		KeyID: f["key"], Model: f["model"], Owner: f["owner"]}
	ctx, cancel := a.usageCtx(c)
	defer cancel()
	rows, err := a.opts.Store.QueryUsage(ctx, q)
	if err != nil {
		a.failUsage(c, err)
		return
	}
	a.json(c, http.StatusOK, usageResponse{Items: rows, From: q.From, To: q.To, GroupBy: q.GroupBy})
}

// usageSummary serves GET /admin/usage/summary?from=&to=&key=&model=&owner=:
// request count and latency / TTFT percentiles over the range.
func (a *api) usageSummary(c *gin.Context) {
	from, to, ok := a.timeRange(c)
	if !ok {
		return
	}
	f, ok := a.filters(c, "key", "model", "owner")
	if !ok {
		return
	}
	q := store.UsageQuery{From: from, To: to, KeyID: f["key"], Model: f["model"], Owner: f["owner"]}
	ctx, cancel := a.usageCtx(c)
	defer cancel()
	sum, err := a.opts.Store.LatencySummary(ctx, q)
	if err != nil {
		a.failUsage(c, err)
		return
	}
	a.json(c, http.StatusOK, summaryResponse{LatencySummary: sum, From: from, To: to})
}

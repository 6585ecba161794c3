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

// parseTime accepts RFC3339 or unix seconds.
func parseTime(s string) (time.Time, bool) {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.Unix(n, 0).UTC(), true
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	return t.UTC(), err == nil
}

// timeRange parses ?from and ?to (RFC3339 or unix seconds); defaults: to
// is now and from is 24 hours before to. It renders the error and returns
// false when either is malformed.
func (a *api) timeRange(c *gin.Context) (from, to time.Time, ok bool) {
	to = time.Now().UTC()
	if v := c.Query("to"); v != "" {
		t, ok := parseTime(v)
		if !ok {
			a.error(c, http.StatusBadRequest, "to must be RFC3339 or unix seconds", "invalid_request_error", "to", "invalid_value")
			return from, to, false
		}
		to = t
	}
	from = to.Add(-24 * time.Hour)
	if v := c.Query("from"); v != "" {
		t, ok := parseTime(v)
		if !ok {
			a.error(c, http.StatusBadRequest, "from must be RFC3339 or unix seconds", "invalid_request_error", "from", "invalid_value")
			return from, to, false
		}
		from = t
	}
	return from, to, true
}

// usage serves GET /admin/usage?from=&to=&group_by=&key=&model=; defaults:
// the last 24 hours grouped by day.
func (a *api) usage(c *gin.Context) {
	from, to, ok := a.timeRange(c)
	if !ok {
		return
	}
	q := store.UsageQuery{From: from, To: to, GroupBy: c.DefaultQuery("group_by", store.GroupByDay),
		KeyID: c.Query("key"), Model: c.Query("model")}
	rows, err := a.opts.Store.QueryUsage(c.Request.Context(), q)
	if err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, usageResponse{Items: rows, From: q.From, To: q.To, GroupBy: q.GroupBy})
}

// usageSummary serves GET /admin/usage/summary?from=&to=&key=&model=:
// request count and latency / TTFT percentiles over the range.
func (a *api) usageSummary(c *gin.Context) {
	from, to, ok := a.timeRange(c)
	if !ok {
		return
	}
	q := store.UsageQuery{From: from, To: to, KeyID: c.Query("key"), Model: c.Query("model")}
	sum, err := a.opts.Store.LatencySummary(c.Request.Context(), q)
	if err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, summaryResponse{LatencySummary: sum, From: from, To: to})
}

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

// parseTime accepts RFC3339 or unix seconds.
func parseTime(s string) (time.Time, bool) {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.Unix(n, 0).UTC(), true
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	return t.UTC(), err == nil
}

// usage serves GET /admin/usage?from=&to=&group_by=&key=&model=; defaults:
// the last 24 hours grouped by day.
func (a *api) usage(c *gin.Context) {
	q := store.UsageQuery{To: time.Now().UTC(), GroupBy: c.DefaultQuery("group_by", store.GroupByDay),
		KeyID: c.Query("key"), Model: c.Query("model")}
	if v := c.Query("to"); v != "" {
		t, ok := parseTime(v)
		if !ok {
			a.error(c, http.StatusBadRequest, "to must be RFC3339 or unix seconds", "invalid_request_error", "to", "invalid_value")
			return
		}
		q.To = t
	}
	q.From = q.To.Add(-24 * time.Hour)
	if v := c.Query("from"); v != "" {
		t, ok := parseTime(v)
		if !ok {
			a.error(c, http.StatusBadRequest, "from must be RFC3339 or unix seconds", "invalid_request_error", "from", "invalid_value")
			return
		}
		q.From = t
	}
	rows, err := a.opts.Store.QueryUsage(c.Request.Context(), q)
	if err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, usageResponse{Items: rows, From: q.From, To: q.To, GroupBy: q.GroupBy})
}

package admin

import (
	"context"
	"errors"
	"net/http"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
)

// maxFilterBytes bounds an exact-match filter of the usage reads: every
// value they match (names, ids, owners, client request ids) is shorter.
const maxFilterBytes = 256

// filter returns the exact-match query parameter name ("" when absent). A
// value no stored row can have — longer than maxFilterBytes, invalid UTF-8
// or with control characters (PostgreSQL refuses NUL and invalid UTF-8
// outright) — is a 400 naming the parameter; it renders the error and
// returns false.
func (a *api) filter(c *gin.Context, name string) (string, bool) {
	v := c.Query(name)
	ok := len(v) <= maxFilterBytes && utf8.ValidString(v)
	for _, r := range v {
		if !ok {
			break
		}
		ok = !unicode.IsControl(r)
	}
	if !ok {
		a.error(c, http.StatusBadRequest, name+" must be at most 256 bytes of UTF-8 text without control characters",
			"invalid_request_error", name, "invalid_value")
	}
	return v, ok
}

// filters reads several exact-match filters in order; ok is false (the
// error rendered) at the first bad one.
func (a *api) filters(c *gin.Context, names ...string) (map[string]string, bool) {
	out := make(map[string]string, len(names))
	for _, n := range names {
		v, ok := a.filter(c, n)
		if !ok {
			return nil, false
		}
		out[n] = v
	}
	return out, true
}

// defaultUsageQueryTimeout is Options.UsageQueryTimeout's default.
const defaultUsageQueryTimeout = 30 * time.Second

// usageCtx bounds one usage read in time (Options.UsageQueryTimeout), on
// top of the client's own cancellation.
func (a *api) usageCtx(c *gin.Context) (context.Context, context.CancelFunc) {
	d := a.opts.UsageQueryTimeout
	if d <= 0 {
		d = defaultUsageQueryTimeout
	}
	return context.WithTimeout(c.Request.Context(), d)
}

// failUsage renders a usage read's error: running out of time is a 503
// asking for a narrower query, the rest as a.fail.
func (a *api) failUsage(c *gin.Context, err error) {
	if errors.Is(err, context.DeadlineExceeded) && c.Request.Context().Err() == nil {
		a.error(c, http.StatusServiceUnavailable, "the usage query did not finish in time; narrow the time range or add filters",
			"api_error", "", "timeout")
		return
	}
	a.fail(c, err)
}

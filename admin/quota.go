package admin

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
)

// QuotaReporter reports a subject's quota consumption for the admin API.
// scope is QuotaKey (id = key id), QuotaOwner (owner name) or QuotaModel
// (model name). The value is rendered as the item's "quota"; nil adds
// nothing. An error is logged and shown only as "quota_error".
type QuotaReporter interface {
	Report(ctx context.Context, scope, id string) (any, error)
}

// Quota scopes passed to QuotaReporter.Report.
const (
	QuotaKey   = "key"
	QuotaOwner = "owner"
	QuotaModel = "model"
)

// quotaReportTimeout bounds one Report: a quota store that hangs must not
// hang the admin API's reads.
const quotaReportTimeout = 5 * time.Second

// quotaUnavailable is all a failed Report shows (never its error text).
const quotaUnavailable = "quota store unavailable"

// jsonWithQuota renders out (a JSON object) with 200, adding "quota" (the
// reporter's non-nil value) or, when the reporter fails, "quota_error".
func (a *api) jsonWithQuota(c *gin.Context, out any, scope, id string) {
	b, err := json.Marshal(out)
	if err != nil || len(b) < 2 || b[0] != '{' || b[len(b)-1] != '}' {
		a.json(c, http.StatusOK, out) // renders the encoding error
		return
	}
	ctx, cancel := context.WithTimeout(c.Request.Context(), quotaReportTimeout)
	defer cancel()
	var name string
	var extra []byte
	rep, rerr := a.opts.Quotas.Report(ctx, scope, id)
	if rerr == nil && rep != nil {
		extra, rerr = json.Marshal(rep)
		name = "quota"
		if string(extra) == "null" { // a typed nil
			extra = nil
		}
	}
	if rerr != nil {
		a.log.Error("admin: quota report failed", "scope", scope, "err", rerr)
		name, extra = "quota_error", []byte(`"`+quotaUnavailable+`"`)
	}
	if extra != nil {
		b = b[:len(b)-1]
		if len(b) > 1 {
			b = append(b, ',')
		}
		b = append(b, `"`+name+`":`...)
		b = append(b, extra...)
		b = append(b, '}')
	}
	c.Data(http.StatusOK, "application/json; charset=utf-8", b)
}

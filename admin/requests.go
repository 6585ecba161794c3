package admin

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/sluice-ai/sluice/store"
)

// listRequests serves GET /admin/requests?from=&to=&key=&model=&provider=
// &owner=&status=&client_request_id=&page=&page_size=: the request log, newest
// first, in the list envelope.
func (a *api) listRequests(c *gin.Context) {
	from, to, ok := a.timeRange(c)
	if !ok {
		return
	}
	p, ok := a.page(c)
	if !ok {
		return
	}
	status := c.Query("status")
	if status != "" && !store.ValidStatus(status) {
		a.error(c, http.StatusBadRequest, "status must be one of ok, error, client_cancelled, stream_broken",
			"invalid_request_error", "status", "invalid_value")
		return
	}
	f, ok := a.filters(c, "key", "model", "provider", "owner", "client_request_id")
	if !ok {
		return
	}
	q := store.RequestQuery{From: from, To: to, KeyID: f["key"], Model: f["model"],
		Provider: f["provider"], Status: status, ClientRequestID: f["client_request_id"], Owner: f["owner"], Page: p}
	ctx, cancel := a.usageCtx(c)
	defer cancel()
	items, total, err := a.opts.Store.ListRequests(ctx, q)
	if err != nil {
		a.failUsage(c, err)
		return
	}
	a.json(c, http.StatusOK, listResponse[store.RequestRow]{Items: items, Total: total, Page: p.Page, PageSize: p.PageSize})
}

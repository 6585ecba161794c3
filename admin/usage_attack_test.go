package admin

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestUsageEndpointsProbe throws odd and extreme queries at the usage and
// request-log endpoints. Time ranges at the limits answer 200; filters no
// stored row can match (NUL, invalid UTF-8, a megabyte) answered 500 on
// PostgreSQL and now are a 400 naming the parameter; nothing is a 500.
func TestUsageEndpointsProbe(t *testing.T) {
	forEachStore(t, func(t *testing.T, dialect string) {
		h := newHarness(t, dialect, nil)
		seedRequests(t, h.store, time.Now().UTC())
		big := strings.Repeat("k", 1<<20)
		ok := []string{
			"from=-62135596800&to=253402300799",
			"to=-62135596800",
			"from=-62135596800&to=-62135596800",
			"from=253402300799&to=253402300799",
			"from=0001-01-01T00:00:00Z&to=9999-12-31T23:59:59.999999999Z",
			"to=0001-01-01T00:00:00Z",
			"owner='%20OR%201=1%20--", "key=k1%27%3B%20DROP%20TABLE%20usage_records%3B--",
			"model=" + strings.Repeat("é", 128),
		}
		bad := map[string]string{
			"key=%00": "key", "model=%FF%FE": "model", "owner=a%0Ab": "owner",
			"key=" + big: "key", "model=" + big: "model", "owner=" + big: "owner",
		}
		reqBad := map[string]string{"provider=%00": "provider", "client_request_id=" + big: "client_request_id", "client_request_id=%C0%80": "client_request_id"}
		for _, path := range []string{"/admin/usage", "/admin/usage/summary", "/admin/requests"} {
			for _, by := range []string{"hour", "day", "key", "model", "provider", "owner", "principal", "deployment"} {
				for _, q := range ok {
					if w := h.do("GET", path+"?"+q+"&group_by="+by, ""); w.Code != http.StatusOK {
						t.Errorf("GET %s?%s&group_by=%s: %d %.300s", path, q, by, w.Code, w.Body.String())
					}
				}
			}
			for q, param := range bad {
				h.expectError(h.do("GET", path+"?"+q, ""), http.StatusBadRequest, param)
			}
			if path == "/admin/requests" {
				for q, param := range reqBad {
					h.expectError(h.do("GET", path+"?"+q, ""), http.StatusBadRequest, param)
				}
			}
		}
		for _, by := range []string{big, "hour%00", "HOUR", "key,model", "principal_id", "1%3BDROP%20TABLE%20usage_records"} {
			h.expectError(h.do("GET", "/admin/usage?group_by="+by, ""), http.StatusBadRequest, "group_by")
		}
	})
}

// TestUsageReadsBoundedInTime checks that the usage reads give up at
// Options.UsageQueryTimeout with a 503, instead of running as long as the
// database takes.
func TestUsageReadsBoundedInTime(t *testing.T) {
	forEachStore(t, func(t *testing.T, dialect string) {
		h := newHarness(t, dialect, func(o *Options) { o.UsageQueryTimeout = time.Nanosecond })
		seedRequests(t, h.store, time.Now().UTC())
		for _, path := range []string{"/admin/usage", "/admin/usage/summary", "/admin/requests"} {
			e := h.expectError(h.do("GET", path+"?from=-62135596800", ""), http.StatusServiceUnavailable, "")
			if e.Error.Code == nil || *e.Error.Code != "timeout" {
				t.Errorf("%s: %+v", path, e)
			}
		}
	})
}

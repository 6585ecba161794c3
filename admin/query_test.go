package admin

import (
	"net/http"
	"strconv"
	"testing"

	"github.com/sluice-ai/sluice/store"
)

// TestPaginationValidated: on every paginated endpoint, page and page_size
// must be positive integers, and a page so far out that page × page_size
// overflows is refused. Before, page=9223372036854775807 wrapped around to
// page 1's items, and 0 or negative values silently meant the default.
func TestPaginationValidated(t *testing.T) {
	h := newHarness(t, store.DialectSQLite, nil)
	h.expect(h.do("POST", "/admin/keys", `{"name":"k1"}`), http.StatusCreated, nil)
	for _, ep := range []string{"/admin/providers", "/admin/models", "/admin/keys", "/admin/requests"} {
		for _, q := range []struct{ query, param string }{
			{"?page=0", "page"},
			{"?page=-1", "page"},
			{"?page=x", "page"},
			{"?page=1.5", "page"},
			{"?page=99999999999999999999", "page"},
			{"?page=9223372036854775807", "page"},
			{"?page=9223372036854775807&page_size=1", ""}, // a legal, empty page
			{"?page=" + strconv.Itoa(1<<62) + "&page_size=2", "page"},
			{"?page_size=0", "page_size"},
			{"?page_size=-5", "page_size"},
			{"?page_size=ten", "page_size"},
		} {
			w := h.do("GET", ep+q.query, "")
			if q.param == "" {
				var l listResponse[map[string]any]
				h.expect(w, http.StatusOK, &l)
				if len(l.Items) != 0 {
					t.Fatalf("%s%s: items %v", ep, q.query, l.Items)
				}
				continue
			}
			h.expectError(w, http.StatusBadRequest, q.param)
		}
	}
	// Still accepted: the defaults, an empty value, and a capped page_size.
	for _, q := range []string{"", "?page=", "?page=1&page_size=1", "?page_size=100000"} {
		var l listResponse[map[string]any]
		h.expect(h.do("GET", "/admin/keys"+q, ""), http.StatusOK, &l)
		if len(l.Items) != 1 || l.Page != 1 {
			t.Fatalf("%s: %+v", q, l)
		}
	}
}

// TestTimeRangeValidated: ?from and ?to outside the years 1–9999 are a 400.
// Before, ?to= past year 9999 gave 200 with an empty body (the answer's
// time could not be encoded) and huge unix seconds wrapped around.
func TestTimeRangeValidated(t *testing.T) {
	forEachStore(t, func(t *testing.T, dialect string) { testTimeRange(t, dialect) })
}

func testTimeRange(t *testing.T, dialect string) {
	h := newHarness(t, dialect, nil)
	for _, ep := range []string{"/admin/usage", "/admin/usage/summary", "/admin/requests"} {
		for _, q := range []struct{ query, param string }{
			{"?to=253402300800", "to"}, // 10000-01-01
			{"?to=9223372036854775807", "to"},
			{"?to=-9223372036854775808", "to"},
			{"?from=-62135596801", "from"},
			{"?to=9999-12-31T23:59:59-01:00", "to"}, // 10000 in UTC
			{"?from=0001-01-01T00:00:00+01:00&to=10", "from"},
			{"?to=99999-01-01T00:00:00Z", "to"},
		} {
			h.expectError(h.do("GET", ep+q.query, ""), http.StatusBadRequest, q.param)
		}
		for _, q := range []string{"?to=253402300799", "?from=0&to=1", "?from=-62135596800&to=253402300799", "?to=9999-12-31T23:59:59Z"} {
			w := h.do("GET", ep+q, "")
			if w.Code != http.StatusOK || w.Body.Len() == 0 {
				t.Fatalf("%s%s = %d %q", ep, q, w.Code, w.Body)
			}
		}
	}
}

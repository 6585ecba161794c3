package router

import (
	"context"
	"errors"
	"io"
	"net/http"
	"testing"
	"time"
)

// HEAD /healthz and /readyz answer as GET does, without a body (they were
// 404 on the proxy).
func TestProbesAnswerHead(t *testing.T) {
	var ready error
	srv, _ := newTestProxyWith(t, func(o *Options) {
		o.Ready = func(context.Context) error { return ready }
	}, time.Second)
	for _, tc := range []struct {
		path   string
		broken error
		want   int
	}{
		{"/healthz", nil, 200}, {"/readyz", nil, 200}, {"/readyz", errors.New("store down"), 503},
	} {
		ready = tc.broken
		for _, m := range []string{"GET", "HEAD"} {
			req, _ := http.NewRequest(m, srv.URL+tc.path, nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.want || (m == "HEAD") != (len(b) == 0) || resp.Header.Get("Content-Type") != "application/json" {
				t.Fatalf("%s %s: %d %q", m, tc.path, resp.StatusCode, b)
			}
		}
	}
}

package router

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestCORSVaryOrigin: with CORS on, every answer carries Vary: Origin,
// including those to origins that are not allowed and requests without
// one: a shared cache must not serve one origin's answer (with or without
// Access-Control-Allow-Origin) to another. Before, only answers to allowed
// origins said so.
func TestCORSVaryOrigin(t *testing.T) {
	srv, _ := newTestProxyWith(t, func(o *Options) { o.CORSOrigins = []string{"https://app.example"} }, time.Second, "http://127.0.0.1:1")
	for _, tt := range []struct{ method, path, origin, allow string }{
		{"GET", "/v1/models", "https://app.example", "https://app.example"},
		{"GET", "/v1/models", "https://evil.example", ""},
		{"GET", "/v1/models", "", ""},
		{"GET", "/nope", "https://evil.example", ""},
		{"OPTIONS", "/v1/chat/completions", "https://app.example", "https://app.example"},
		{"OPTIONS", "/v1/chat/completions", "https://evil.example", ""},
	} {
		req, _ := http.NewRequest(tt.method, srv.URL+tt.path, nil)
		req.Header.Set("Authorization", "Bearer "+testKey)
		req.Header.Set("Access-Control-Request-Method", "POST")
		if tt.origin != "" {
			req.Header.Set("Origin", tt.origin)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if !slices.Contains(resp.Header.Values("Vary"), "Origin") || len(resp.Header.Values("Vary")) != 1 {
			t.Errorf("%s %s from %q: Vary %q", tt.method, tt.path, tt.origin, resp.Header.Values("Vary"))
		}
		if got := resp.Header.Get("Access-Control-Allow-Origin"); got != tt.allow {
			t.Errorf("%s %s from %q: Allow-Origin %q", tt.method, tt.path, tt.origin, got)
		}
	}
}

// TestCORSPreflightHeadersBounded: a preflight's
// Access-Control-Request-Headers is echoed only when it is a short list of
// header names. Before, any value up to the 64 KiB header limit came back.
func TestCORSPreflightHeadersBounded(t *testing.T) {
	srv, _ := newTestProxyWith(t, func(o *Options) { o.CORSOrigins = []string{"*"} }, time.Second, "http://127.0.0.1:1")
	for _, tt := range []struct {
		rh   string
		echo bool
	}{
		{"authorization, content-type, x-stainless-os", true},
		{strings.Repeat("x", 60000), false},
		{"authorization, <script>", false},
		{"a\tb", false},
	} {
		req, _ := http.NewRequest("OPTIONS", srv.URL+"/v1/chat/completions", nil)
		req.Header.Set("Origin", "https://a.example")
		req.Header.Set("Access-Control-Request-Method", "POST")
		req.Header.Set("Access-Control-Request-Headers", tt.rh)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got := resp.Header.Get("Access-Control-Allow-Headers"); resp.StatusCode != 204 || (got == tt.rh) != tt.echo || (!tt.echo && got != "") {
			t.Errorf("%.40q: %d allow-headers %.40q", tt.rh, resp.StatusCode, got)
		}
	}
}

package router

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-ai/sluice/llm"
)

const upstreamKey = "sk-upstream-secret-123456" // the test providers' api_key

// A streamed error event that echoes the provider key reaches the client
// redacted (it was forwarded verbatim), in both the error member and the
// event: error forms.
func TestStreamedErrorEventRedacted(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "data: {\"choices\":[{\"delta\":{\"content\":\"hi\"}}]}\n\n")
		fmt.Fprintf(w, ": keepalive %s\n\n", upstreamKey)
		fmt.Fprintf(w, "event: x%s\ndata: {}\n\n", upstreamKey)
		fmt.Fprintf(w, "event: error\ndata: {\"message\":\"key %s rejected\",\"type\":\"%s\"}\n\n", upstreamKey, upstreamKey[:14])
		fmt.Fprintf(w, "data: {\"error\":{\"message\":\"Incorrect API key provided: %s\",\"code\":\"%s\"}}\n\n", upstreamKey, upstreamKey)
	}))
	defer up.Close()
	srv, r := newTestProxy(t, time.Second, up.URL)
	resp := post(t, srv.URL, `{"model":"m","stream":true}`)
	b, _ := io.ReadAll(resp.Body)
	if !strings.Contains(string(b), "hi") || !strings.Contains(string(b), "[redacted]") {
		t.Fatalf("body %s", b)
	}
	// Every 8-byte fragment but those inside the gateway's own words
	// ("upstream").
	for j := 0; j+8 <= len(upstreamKey); j++ {
		if upstreamKey[j:j+8] != "upstream" && strings.Contains(string(b), upstreamKey[j:j+8]) {
			t.Fatalf("key fragment %q reached the client: %s", upstreamKey[j:j+8], b)
		}
	}
	if rec := r.last(); strings.Contains(rec.ErrorType, "secret") {
		t.Fatalf("record %+v", rec)
	}
}

// A 200 answer carrying an error member is scrubbed the same way, and
// answered and recorded as an error (it was recorded ok).
func TestOKBodyWithErrorRedacted(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"error":{"message":"bad key %s","type":"auth"}}`, upstreamKey)
	}))
	defer up.Close()
	srv, r := newTestProxy(t, time.Second, up.URL)
	resp := post(t, srv.URL, `{"model":"m"}`)
	b, _ := io.ReadAll(resp.Body)
	if strings.Contains(string(b), "upstream-secret") || !strings.Contains(string(b), "[redacted]") {
		t.Fatalf("body %s", b)
	}
	if rec := r.last(); resp.StatusCode != 502 || rec.Status != llm.StatusError || rec.ErrorType != "auth" {
		t.Fatalf("record %+v", rec)
	}
}

// An upstream that rejects the injected stream_options costs one extra
// round trip on the first streaming request only: the second makes one
// upstream call (it made two on every request).
func TestStreamOptionsRejectionRemembered(t *testing.T) {
	var calls atomic.Int32
	up := rejectsStreamOptions(&calls)
	defer up.Close()
	srv, _ := newTestProxy(t, time.Second, up.URL)
	for i, want := range []int32{2, 1, 1} {
		calls.Store(0)
		resp := post(t, srv.URL, `{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}`)
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || !strings.Contains(string(b), "[DONE]") || calls.Load() != want {
			t.Fatalf("request %d: status %d, %d upstream calls (want %d): %s", i, resp.StatusCode, calls.Load(), want, b)
		}
	}
}

// A Retry-After the client sees is capped (an upstream's 3600 or a date
// in 2099 was passed on as is, 2,300,283,668 s for the date).
func TestClientRetryAfterCapped(t *testing.T) {
	for _, v := range []string{"3600", "Thu, 01 Jan 2099 00:00:00 GMT", "1e300"} {
		up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Retry-After", v)
			w.WriteHeader(429)
			fmt.Fprint(w, `{"error":{"message":"slow down","type":"rate_limit_error"}}`)
		}))
		srv, _ := newTestProxy(t, time.Second, up.URL)
		resp := post(t, srv.URL, `{"model":"m"}`)
		io.Copy(io.Discard, resp.Body)
		up.Close()
		if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "60" {
			t.Fatalf("Retry-After %q: status %d, client got %q", v, resp.StatusCode, resp.Header.Get("Retry-After"))
		}
	}
}

// Redirects and other non-final statuses are a 502 upstream_error (they
// were a 500 invalid_request_error, blaming the client), and the upstream's
// headers (rate-limit state, cookies, Location) are not passed on.
func TestUpstreamRedirectAndHeaders(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Ratelimit-Remaining-Requests", "7")
		w.Header().Set("Set-Cookie", "upstream=1")
		if strings.Contains(r.URL.Path, "chat") && r.Header.Get("X-Follow") == "" {
			w.Header().Set("Location", "http://169.254.169.254/")
			w.WriteHeader(307)
			return
		}
	}))
	defer up.Close()
	srv, r := newTestProxy(t, time.Second, up.URL)
	resp := post(t, srv.URL, `{"model":"m"}`)
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 502 || !strings.Contains(string(b), "upstream_error") || strings.Contains(string(b), "invalid_request_error") {
		t.Fatalf("status %d body %s", resp.StatusCode, b)
	}
	for _, h := range []string{"X-Ratelimit-Remaining-Requests", "Set-Cookie", "Location"} {
		if resp.Header.Get(h) != "" {
			t.Fatalf("upstream header %s forwarded", h)
		}
	}
	if rec := r.last(); rec.HTTPStatus != 502 {
		t.Fatalf("record %+v", rec)
	}
}

// Media types are case-insensitive: an upstream answering
// "Text/Event-Stream; charset=UTF-8" is relayed as a stream (it was read as
// a JSON body and failed as not JSON).
func TestEventStreamContentTypeCaseInsensitive(t *testing.T) {
	for _, ct := range []string{"Text/Event-Stream; charset=UTF-8", "TEXT/EVENT-STREAM", " text/event-stream"} {
		up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header()["Content-Type"] = []string{ct}
			fmt.Fprint(w, "data: {\"choices\":[{\"delta\":{\"content\":\"hi\"}}]}\n\ndata: [DONE]\n\n")
		}))
		srv, _ := newTestProxy(t, time.Second, up.URL)
		resp := post(t, srv.URL, `{"model":"m","stream":true}`)
		b, _ := io.ReadAll(resp.Body)
		up.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(b), "[DONE]") {
			t.Fatalf("%q: %d %s", ct, resp.StatusCode, b)
		}
	}
	for _, ct := range []string{"text/event-streamx", "application/json"} {
		if isEventStream(http.Header{"Content-Type": {ct}}) {
			t.Errorf("%q taken for an event stream", ct)
		}
	}
}

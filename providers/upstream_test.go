package providers

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sluice-ai/sluice/llm"
)

// Retry-After is parsed robustly: hostile values never overflow, huge ones
// are capped, garbage is no hint. (99999999999, 1e300 and inf were dropped
// and a date in 2099 was passed on as 2,300,283,668 s.)
func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		h    string // Retry-After
		ms   string // Retry-After-Ms
		want time.Duration
	}{
		{"7", "", 7 * time.Second},
		{" 7 ", "", 7 * time.Second},
		{"1.5", "", 1500 * time.Millisecond},
		{"0", "", 0},
		{"99999999999", "", MaxRetryAfter},
		{"999999999999999999999999999999", "", MaxRetryAfter},
		{"1e300", "", MaxRetryAfter},
		{"1e400", "", MaxRetryAfter},
		{"inf", "", MaxRetryAfter},
		{"+Inf", "", MaxRetryAfter},
		{"-inf", "", 0},
		{"NaN", "", 0},
		{"-5", "", 0},
		{"1e-400", "", 0},
		{"soon", "", 0},
		{"", "", 0},
		{strings.Repeat("9", 10000), "", 0}, // too long to bother
		{"Thu, 01 Jan 2099 00:00:00 GMT", "", MaxRetryAfter},
		{"Thu, 01 Jan 2026 00:00:30 GMT", "", 30 * time.Second},
		{"Wed, 31 Dec 2025 23:00:00 GMT", "", 0},
		{"Fri, 31 Dec 9999 23:59:59 GMT", "", MaxRetryAfter},
		{"Monday, 01-Jan-26 00:00:10 GMT", "", 10 * time.Second},
		{"Thu Jan  1 00:00:20 2026", "", 20 * time.Second},
		{"", "1500", 1500 * time.Millisecond},
		{"", "0.4", 400 * time.Microsecond},
		{"", "1e300", MaxRetryAfter},
		{"9", "garbage", 9 * time.Second},
		{"9", "-1", 9 * time.Second},
	}
	for _, tt := range tests {
		h := http.Header{}
		if tt.h != "" {
			h.Set("Retry-After", tt.h)
		}
		if tt.ms != "" {
			h.Set("Retry-After-Ms", tt.ms)
		}
		if got := parseRetryAfter(h, now); got != tt.want {
			t.Errorf("Retry-After %q, -Ms %q: got %s, want %s", truncateForLog(tt.h), tt.ms, got, tt.want)
		}
	}
}

func truncateForLog(s string) string {
	if len(s) > 20 {
		return s[:20] + "…"
	}
	return s
}

// An upstream 429 with a hostile Retry-After: the gateway error carries a
// capped, positive hint.
func TestRetryAfterEndToEnd(t *testing.T) {
	for _, v := range []string{"99999999999", "1e300", "inf", "Thu, 01 Jan 2099 00:00:00 GMT"} {
		p := newTestOpenAI(t, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Retry-After", v)
			w.WriteHeader(429)
		}, llm.Timeouts{})
		e, err := do(p)
		if err != nil {
			t.Fatal(err)
		}
		if e.RetryAfter != MaxRetryAfter || e.Status != 429 {
			t.Errorf("Retry-After %q: %+v", v, e)
		}
	}
}

// Error bodies of every shape: each gives a bounded, clean error and the
// upstream's status, never a panic or a raw dump.
func TestHostileErrorBodies(t *testing.T) {
	huge := strings.Repeat("A", 1<<20)
	deep := strings.Repeat(`{"error":`, 100000) + `1` + strings.Repeat(`}`, 100000)
	tests := []struct {
		name, body string
		msg        string // wanted message ("" = the generic one)
		typ, code  string
	}{
		{"empty", ``, "", "upstream_error", ""},
		{"text", `upstream connect error or disconnect/reset before headers`, "", "upstream_error", ""},
		{"nested message", `{"error":{"message":{"text":"x"},"type":["a"],"code":{"c":1}}}`, "", "upstream_error", ""},
		{"number fields", `{"error":{"message":42,"type":7,"param":3.5,"code":1e999}}`, "", "upstream_error", "1e999"},
		{"bool code", `{"error":{"message":"m","code":true}}`, "m", "upstream_error", "true"},
		{"array", `[{"error":{"message":"from array","type":"t"}}]`, "from array", "t", ""},
		{"empty array", `[]`, "", "upstream_error", ""},
		{"array of junk", `[1,2,3]`, "", "upstream_error", ""},
		{"error null", `{"error":null,"message":"fallback"}`, "fallback", "upstream_error", ""},
		{"fastapi", `{"detail":[{"loc":["body"],"msg":"field required","type":"value_error.missing"}]}`, "field required", "upstream_error", ""},
		{"huge message", `{"error":{"message":"` + huge + `","type":"` + huge + `"}}`, "", "", ""},
		{"truncated json", `{"error":{"message":"cut`, "", "upstream_error", ""},
		{"deep nesting", deep, "", "upstream_error", ""},
		{"control chars", "{\"error\":{\"message\":\"line\\r\\nforged: 1\\u001b[31m\",\"type\":\"t\\u0000x\"}}", "line  forged: 1 [31m", "t x", ""},
		{"invalid utf8", "{\"error\":{\"message\":\"a\xff\xfeb\"}}", "a\ufffd\ufffdb", "upstream_error", ""},
		{"byte order mark", "\xef\xbb\xbf{\"error\":{\"message\":\"bom\"}}", "bom", "upstream_error", ""},
		{"trailing garbage", `{"error":{"message":"m"}} trailing`, "", "upstream_error", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newTestOpenAI(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(503)
				io.WriteString(w, tt.body)
			}, llm.Timeouts{})
			e, err := do(p)
			if err != nil {
				t.Fatal(err)
			}
			if e.Status != 503 || e.UpstreamStatus != 503 || len(e.Message) > maxErrorMessage ||
				len(e.Type) > maxErrorField || len(e.Param) > maxErrorField || len(e.Code) > maxErrorField {
				t.Fatalf("got status %d/%d, lengths %d %d %d %d", e.Status, e.UpstreamStatus, len(e.Message), len(e.Type), len(e.Param), len(e.Code))
			}
			wantMsg := tt.msg
			if wantMsg == "" {
				wantMsg = "upstream up returned HTTP 503"
			}
			if tt.name == "huge message" {
				if !strings.HasSuffix(e.Message, "…") && e.Message != wantMsg {
					t.Fatalf("message %q…", e.Message[:40])
				}
				return
			}
			if e.Message != wantMsg || e.Type != tt.typ || e.Code != tt.code {
				t.Fatalf("got message %q type %q code %q", e.Message, e.Type, e.Code)
			}
		})
	}
}

// An error body that never ends (or trickles) is given up on after the
// provider's idle timeout (at most errorBodyTimeout): Do returns.
func TestEndlessErrorBody(t *testing.T) {
	p := newTestOpenAI(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(500)
		io.WriteString(w, `{"error":{"message":"`)
		w.(http.Flusher).Flush()
		for i := 0; i < 100; i++ {
			select {
			case <-r.Context().Done():
				return
			case <-time.After(50 * time.Millisecond):
			}
			io.WriteString(w, "x")
			w.(http.Flusher).Flush()
		}
	}, llm.Timeouts{Idle: 300 * time.Millisecond})
	done := make(chan *llm.Error, 1)
	go func() { e, _ := do(p); done <- e }()
	select {
	case e := <-done:
		if e == nil || e.Status != 500 || e.UpstreamStatus != 500 {
			t.Fatalf("got %+v", e)
		}
	case <-time.After(4 * time.Second):
		t.Fatal("Do still reading an endless error body")
	}
}

// Response headers are bounded: a megabyte of headers is an unreachable
// upstream, not a megabyte held per call.
func TestHugeResponseHeaders(t *testing.T) {
	u := rawUpstream(t, func(c net.Conn) {
		io.WriteString(c, "HTTP/1.1 200 OK\r\n")
		for i := 0; i < 1<<10; i++ {
			fmt.Fprintf(c, "X-H%d: %s\r\n", i, strings.Repeat("v", 1<<10))
		}
		io.WriteString(c, "Content-Length: 2\r\n\r\n{}")
	})
	p := build(t, &llm.Provider{Name: "raw", Type: llm.ProviderOpenAICompatible, BaseURL: u})
	e, err := do(p)
	if err != nil {
		t.Fatal(err)
	}
	if e.Kind != llm.KindUnreachable || e.Status != 502 {
		t.Fatalf("got %+v", e)
	}
}

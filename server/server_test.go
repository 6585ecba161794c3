package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-ai/sluice/store"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"generated key", Config{}, true},
		{"short key", Config{AdminKey: "short"}, false},
		{"31 chars", Config{AdminKey: strings.Repeat("a", 31)}, false},
		{"32 chars", Config{AdminKey: strings.Repeat("a", 32)}, true},
		{"documented example", Config{AdminKey: "edd1c9f034335f136f87ad84b625c8f1"}, false},
		{"half TLS", Config{AdminKey: strings.Repeat("a", 32), TLSCert: "c"}, false},
		{"rotation", Config{AdminKey: strings.Repeat("a", 32), PreviousAdminKeys: []string{strings.Repeat("b", 32), strings.Repeat("c", 40)}}, true},
		{"short previous key", Config{AdminKey: strings.Repeat("a", 32), PreviousAdminKeys: []string{strings.Repeat("b", 31)}}, false},
		{"example previous key", Config{AdminKey: strings.Repeat("a", 32), PreviousAdminKeys: []string{"change-me-change-me-change-me-change-me"}}, false},
		{"previous key without a key", Config{PreviousAdminKeys: []string{strings.Repeat("b", 32)}}, false},
		{"bootstrap disabled", Config{AdminKeyDisabled: true}, true},
		{"buffer below body limit", Config{MaxBodyBytes: 4096, MaxBufferedBytes: 4095}, false},
		{"buffer equal to body limit", Config{MaxBodyBytes: 4096, MaxBufferedBytes: 4096}, true},
		{"negative buffer", Config{MaxBufferedBytes: -1}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.SetDefaults()
			if err := tt.cfg.Validate(); (err == nil) != tt.ok {
				t.Fatalf("Validate() = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

// TestServeSQLite boots the whole server in-process on SQLite, seeds it
// through the admin API, and checks readiness, reload after admin writes and
// the usage flush on shutdown.
func TestServeSQLite(t *testing.T) {
	upstream := newUpstream(t)
	dir := t.TempDir()
	const adminKey = "0123456789abcdef0123456789abcdef-test"
	cfg := Config{AdminKey: adminKey, DataDir: dir, AccessLog: "off", ShutdownTimeout: 5 * time.Second}
	ctx := context.Background()
	r := serveTest(t, cfg)
	if r.srv.GeneratedAdminKey() != "" {
		t.Fatal("a configured admin key must not be replaced")
	}
	proxy, adm := r.proxy, r.admin

	for _, base := range []string{proxy, adm} {
		if code, _ := call(t, "GET", base+"/readyz", "", nil); code != 200 {
			t.Fatalf("%s/readyz = %d", base, code)
		}
	}
	admin := func(method, path, body string) (int, map[string]any) {
		code, b := call(t, method, adm+path, body, http.Header{"X-Api-Key": {adminKey}})
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		return code, m
	}
	if code, _ := admin("POST", "/admin/providers", `{"name":"up","type":"openai-compatible","base_url":"`+upstream+`/v1","api_key":"sk-upstream"}`); code != 201 {
		t.Fatalf("create provider: %d", code)
	}
	if code, _ := admin("POST", "/admin/models", `{"name":"m","deployments":[{"provider":"up","model":"real","input_price_per_mtok":1,"output_price_per_mtok":1}]}`); code != 201 {
		t.Fatalf("create model: %d", code)
	}
	code, key := admin("POST", "/admin/keys", `{"name":"k"}`)
	if code != 201 {
		t.Fatalf("create key: %d", code)
	}
	secret := key["key"].(string)
	// The admin write reloads this replica at once: no wait needed.
	code, body := call(t, "POST", proxy+"/v1/chat/completions", `{"model":"m","messages":[{"role":"user","content":"hi"}]}`, http.Header{"Authorization": {"Bearer " + secret}})
	if code != 200 {
		t.Fatalf("chat: %d %s", code, body)
	}
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	// Reopen the same data dir: the usage row was flushed on shutdown.
	srv2, err := New(ctx, cfg, nil, Version{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv2.closeAll()
	rows, err := srv2.store.QueryUsage(ctx, storeQuery())
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 || rows[0].Requests != 1 || rows[0].PromptTokens != 3 {
		t.Fatalf("usage after restart: %+v", rows)
	}
}

// running is a Server serving on loopback listeners for a test.
type running struct {
	srv          *Server
	proxy, admin string       // base URLs
	stop         func() error // shuts down, returns Serve's error; idempotent
}

// serveTest builds a Server from cfg and serves it until stop or the end
// of the test.
func serveTest(t testing.TB, cfg Config) *running {
	t.Helper()
	srv, err := New(context.Background(), cfg, nil, Version{Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	pl, al := listen(t), listen(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, pl, al) }()
	var once sync.Once
	var serveErr error
	stop := func() error {
		once.Do(func() { cancel(); serveErr = <-done })
		return serveErr
	}
	t.Cleanup(func() { _ = stop() })
	return &running{srv: srv, proxy: "http://" + pl.Addr().String(), admin: "http://" + al.Addr().String(), stop: stop}
}

func listen(t testing.TB) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func call(t *testing.T, method, url, body string, h http.Header) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, url, bytes.NewBufferString(body))
	for k, v := range h {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func newUpstream(t *testing.T) string { return newUpstreamTB(t) }

func newUpstreamTB(t testing.TB) string {
	t.Helper()
	l := listen(t)
	s := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"id":"1","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"hello"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}}`)
	})}
	go s.Serve(l)
	t.Cleanup(func() { s.Close() })
	return "http://" + l.Addr().String()
}

// TestReload checks that Reload (SIGHUP) picks up a change written to the
// database by another process, and fails cleanly after shutdown.
func TestReload(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	srv, err := New(ctx, Config{AdminKey: "0123456789abcdef0123456789abcdef-hup", DataDir: dir, AccessLog: "off"}, nil, Version{})
	if err != nil {
		t.Fatal(err)
	}
	other, err := store.Open(ctx, store.Options{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if _, _, err := other.CreateKey(ctx, store.KeyInput{Name: "by-hand"}); err != nil {
		t.Fatal(err)
	}
	if n := len(srv.state.Load().Snapshot.Keys); n != 0 {
		t.Fatalf("keys before reload: %d", n)
	}
	if err := srv.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(srv.state.Load().Snapshot.Keys); n != 1 {
		t.Fatalf("keys after reload: %d", n)
	}
	srv.closeAll()
	if err := srv.Reload(ctx); err == nil {
		t.Fatal("reload after shutdown must fail, not panic")
	}
}

func TestParseRetention(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"", 0, true}, {"0", 0, true}, {"90d", 90 * 24 * time.Hour, true}, {"720h", 720 * time.Hour, true},
		{"-1d", 0, false}, {"xd", 0, false}, {"soon", 0, false}, {"-5h", 0, false},
	}
	for _, tt := range tests {
		got, err := ParseRetention(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseRetention(%q) = %v, %v", tt.in, got, err)
		}
	}
	c := Config{UsageRetention: time.Minute}
	c.SetDefaults()
	if c.Validate() == nil {
		t.Error("a retention under 1h must be refused")
	}
}

// TestShutdownPlan: draining and flushing share one budget, so shutdown
// ends within ShutdownTimeout (closeAll used to add its own 30s on top).
func TestShutdownPlan(t *testing.T) {
	for _, total := range []time.Duration{time.Second, 5 * time.Second, 30 * time.Second, 10 * time.Minute} {
		drain, flush := shutdownPlan(total)
		if drain+flush != total || flush <= 0 || flush > 10*time.Second || drain < flush {
			t.Errorf("shutdownPlan(%v) = %v, %v", total, drain, flush)
		}
	}
}

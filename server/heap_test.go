package server

import (
	"encoding/json"
	"net/http"
	"runtime"
	"runtime/metrics"
	"testing"
	"time"
)

// TestIdleHeapScanSmall is the regression test of the performance issue's
// GC tail (issue 10, item 3): a gateway that has served some requests and
// gone idle keeps little heap for the collector to scan on every cycle.
// It was 46.5 MB of scannable heap (of 58 MB live): a preallocated
// 100,000-record usage channel, the tokenizer's map[string]int, the quota
// settle channel. With those allocated on demand or pointer-free it is
// about 1 MB (of 19 MB live); the bound leaves room for what the test
// process itself holds.
func TestIdleHeapScanSmall(t *testing.T) {
	upstream := newUpstream(t)
	const adminKey = "0123456789abcdef0123456789abcdef-test"
	cfg := Config{AdminKey: adminKey, DataDir: t.TempDir(), AccessLog: "off", ShutdownTimeout: 5 * time.Second}
	r := serveTest(t, cfg)
	defer func() {
		if err := r.stop(); err != nil {
			t.Error(err)
		}
	}()
	admin := func(path, body string) map[string]any {
		code, b := call(t, "POST", r.admin+path, body, http.Header{"X-Api-Key": {adminKey}})
		if code != 201 {
			t.Fatalf("POST %s: %d %s", path, code, b)
		}
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		return m
	}
	admin("/admin/providers", `{"name":"up","type":"openai-compatible","base_url":"`+upstream+`/v1","api_key":"sk-upstream"}`)
	admin("/admin/models", `{"name":"m","deployments":[{"provider":"up","model":"real","input_price_per_mtok":1,"output_price_per_mtok":1}]}`)
	secret := admin("/admin/keys", `{"name":"k"}`)["key"].(string)
	for range 50 {
		if code, b := call(t, "POST", r.proxy+"/v1/chat/completions", `{"model":"m","messages":[{"role":"user","content":"hi"}]}`,
			http.Header{"Authorization": {"Bearer " + secret}}); code != 200 {
			t.Fatalf("chat: %d %s", code, b)
		}
	}
	runtime.GC()
	runtime.GC()
	s := []metrics.Sample{{Name: "/gc/scan/heap:bytes"}, {Name: "/gc/heap/live:bytes"}, {Name: "/gc/heap/objects:objects"}}
	metrics.Read(s)
	scan, live, objects := s[0].Value.Uint64(), s[1].Value.Uint64(), s[2].Value.Uint64()
	t.Logf("idle: %.1f MB of heap to scan, %.1f MB live, %d objects", float64(scan)/1e6, float64(live)/1e6, objects)
	if scan > 8<<20 {
		t.Errorf("%.1f MB of scannable heap at idle, want under 8 MiB: something large and pointer-filled is held for the life of the process", float64(scan)/1e6)
	}
}

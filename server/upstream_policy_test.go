package server

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

// The server injects the provider families' validator into the store and
// SLUICE_UPSTREAM_DENY_PRIVATE into both that validator and the provider
// transports: admin writes of a base_url with a query string, of a
// transport-owned header, of unknown options or types are 400s; with the
// setting, so are literal private targets and localhost (the connect-time
// check on resolved names is TestDenyPrivate in providers).
func TestUpstreamPolicy(t *testing.T) {
	const adminKey = "0123456789abcdef0123456789abcdef-pol"
	for _, deny := range []bool{false, true} {
		cfg := Config{AdminKey: adminKey, DataDir: t.TempDir(), AccessLog: "off", ShutdownTimeout: 5 * time.Second, UpstreamDenyPrivate: deny}
		r := serveTest(t, cfg)
		admin := func(method, path, body string) (int, string) {
			code, b := call(t, method, r.admin+path, body, http.Header{"X-Api-Key": {adminKey}})
			return code, string(b)
		}
		for _, body := range []string{
			`{"name":"q","type":"openai-compatible","base_url":"https://api.example.com/v1?x=1"}`,
			`{"name":"h","type":"openai-compatible","base_url":"https://api.example.com/v1","headers":{"Host":"evil"}}`,
			`{"name":"o","type":"openai-compatible","base_url":"https://api.example.com/v1","options":{"nope":1}}`,
			`{"name":"t","type":"mystery","base_url":"https://api.example.com/v1"}`,
		} {
			if code, b := admin("POST", "/admin/providers", body); code != 400 {
				t.Fatalf("deny=%v %s: %d %s", deny, body, code, b)
			}
		}
		code, b := admin("POST", "/admin/providers", `{"name":"meta","type":"openai-compatible","base_url":"http://169.254.169.254/latest"}`)
		if deny && (code != 400 || !strings.Contains(b, "SLUICE_UPSTREAM_DENY_PRIVATE")) || !deny && code != 201 {
			t.Fatalf("deny=%v metadata address: %d %s", deny, code, b)
		}
		// localhost passes validation only without the setting.
		upstream := strings.Replace(newUpstream(t), "127.0.0.1", "localhost", 1)
		code, b = admin("POST", "/admin/providers", `{"name":"up","type":"openai-compatible","base_url":"`+upstream+`/v1"}`)
		if deny {
			if code != 400 {
				t.Fatalf("localhost accepted: %d %s", code, b)
			}
			continue
		}
		if code != 201 {
			t.Fatalf("create: %d %s", code, b)
		}
		var p map[string]any
		_, b = admin("GET", "/admin/providers/up", "")
		_ = json.Unmarshal([]byte(b), &p)
		if p["options"] == nil || p["secrets_set"] == nil || p["revision"].(float64) == 0 {
			t.Fatalf("view %s", b)
		}
	}
}

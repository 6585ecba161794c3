package server

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestMoreThanOneCredentialRefused: two Authorization headers, two
// x-api-key headers, or both with different values are refused with 401 in
// each API's error shape, on both listeners. Before, the proxy took the
// first one and the admin API preferred x-api-key over a conflicting
// Authorization.
func TestMoreThanOneCredentialRefused(t *testing.T) {
	cfg := Config{AdminKey: bodyTestAdminKey, DataDir: t.TempDir(), AccessLog: "off", ShutdownTimeout: 5 * time.Second}
	r := serveTest(t, cfg)
	key := createProxyKey(t, r.admin)
	const other = "sk-someone-elses-key-0000000000000000"
	cases := []struct {
		name, url string
		h         http.Header
		want      int
	}{
		{"proxy one key", r.proxy + "/v1/models", http.Header{"Authorization": {"Bearer " + key}}, 200},
		{"proxy same key twice over", r.proxy + "/v1/models", http.Header{"Authorization": {"Bearer " + key}, "X-Api-Key": {key}}, 200},
		{"proxy two Authorization", r.proxy + "/v1/models", http.Header{"Authorization": {"Bearer " + key, "Bearer " + other}}, 401},
		{"proxy two x-api-key", r.proxy + "/v1/models", http.Header{"X-Api-Key": {key, other}}, 401},
		{"proxy both differ", r.proxy + "/v1/models", http.Header{"Authorization": {"Bearer " + other}, "X-Api-Key": {key}}, 401},
		{"proxy both differ, key first", r.proxy + "/v1/models", http.Header{"Authorization": {"Bearer " + key}, "X-Api-Key": {other}}, 401},
		{"admin one key", r.admin + "/admin/keys", http.Header{"X-Api-Key": {bodyTestAdminKey}}, 200},
		{"admin two Authorization", r.admin + "/admin/keys", http.Header{"Authorization": {"Bearer " + bodyTestAdminKey, "Bearer x"}}, 401},
		{"admin two x-api-key", r.admin + "/admin/keys", http.Header{"X-Api-Key": {bodyTestAdminKey, "x"}}, 401},
		{"admin both differ", r.admin + "/admin/keys", http.Header{"X-Api-Key": {bodyTestAdminKey}, "Authorization": {"Bearer x"}}, 401},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, b := call(t, "GET", c.url, "", c.h)
			if code != c.want {
				t.Fatalf("status %d %s, want %d", code, b, c.want)
			}
			if code != 401 {
				return
			}
			var e struct {
				Error struct{ Message, Type string }
			}
			// The proxy says why; the admin API answers every failure alike.
			if err := json.Unmarshal(b, &e); err != nil || e.Error.Type != "authentication_error" ||
				strings.HasPrefix(c.name, "proxy") && !strings.Contains(e.Error.Message, "more than one credential") {
				t.Fatalf("error body %s", b)
			}
			if strings.Contains(string(b), key) || strings.Contains(string(b), bodyTestAdminKey) {
				t.Fatal("a credential was echoed")
			}
		})
	}
}

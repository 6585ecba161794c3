package server

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// SLUICE_ISSUERS_FILE creates issuers at start, replaces them by name on
// the next start, and a file that does not validate stops the start.
func TestIssuersFile(t *testing.T) {
	const adminKey = "0123456789abcdef0123456789abcdef-iss"
	dir := t.TempDir()
	file := filepath.Join(dir, "issuers.json")
	write := func(s string) {
		if err := os.WriteFile(file, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cfg := Config{AdminKey: adminKey, DataDir: dir, AccessLog: "off", ShutdownTimeout: 5 * time.Second, IssuersFile: file}
	get := func(r *running) string {
		code, b := call(t, "GET", r.admin+"/admin/issuers/corp", "", http.Header{"X-Api-Key": {adminKey}})
		if code != 200 {
			t.Fatalf("GET issuer: %d %s", code, b)
		}
		return string(b)
	}
	write(`{"issuers":[{"name":"corp","issuer":"https://idp.example.com","audiences":["sluice"],"algorithms":["ES256"],"limits":{"rpm":5}}]}`)
	r := serveTest(t, cfg)
	if b := get(r); !strings.Contains(b, `"ES256"`) || !strings.Contains(b, `"rpm":5`) {
		t.Fatalf("first start: %s", b)
	}
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	write(`{"issuers":[{"name":"corp","issuer":"https://idp.example.com","audiences":["sluice","api"],"algorithms":["RS256"]}]}`)
	r = serveTest(t, cfg)
	if b := get(r); !strings.Contains(b, `"RS256"`) || strings.Contains(b, `"ES256"`) || !strings.Contains(b, `"api"`) {
		t.Fatalf("second start: %s", b)
	}
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{
		`{"issuers":[{"name":"x","issuer":"http://idp.example.com","audiences":["a"],"allow_insecure_http":true}]}`,
		`{"issuers":[{"name":"x","issuer":"https://idp.example.com","audiences":["a"],"nope":1}]}`,
		`{"issuers":[]} {}`,
		`not json`,
	} {
		write(bad)
		if _, err := New(context.Background(), cfg, nil, Version{Version: "test"}); err == nil || !strings.Contains(err.Error(), "issuers file") {
			t.Fatalf("%s: %v", bad, err)
		}
	}
}

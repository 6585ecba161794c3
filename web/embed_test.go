package web_test

import (
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/sluice-ai/sluice/web"
)

func serve(t *testing.T, method, path string, hdr map[string]string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(method, path, nil)
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	web.Handler().ServeHTTP(w, r)
	return w
}

func readDist(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile("dist/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestHandler(t *testing.T) {
	index := readDist(t, "index.html")
	tests := []struct {
		name, method, path string
		status             int
		ctype              string // prefix
		body               string // exact, when set
		location           string
	}{
		{"redirect bare prefix", "GET", "/ui", http.StatusMovedPermanently, "", "", "/ui/"},
		{"index", "GET", "/ui/", 200, "text/html", index, ""},
		{"index by name", "GET", "/ui/index.html", 200, "text/html", index, ""},
		{"script", "GET", "/ui/app.js", 200, "text/javascript", readDist(t, "app.js"), ""},
		{"style", "GET", "/ui/app.css", 200, "text/css", readDist(t, "app.css"), ""},
		{"head", "HEAD", "/ui/app.js", 200, "text/javascript", "", ""},
		{"spa fallback", "GET", "/ui/usage/keys", 200, "text/html", index, ""},
		{"unknown file falls back", "GET", "/ui/nope.js", 200, "text/html", index, ""},
		{"no directory listing", "GET", "/ui/dist/", 200, "text/html", index, ""},
		{"no dot-dot", "GET", "/ui/../embed.go", 200, "text/html", index, ""},
		{"no dist prefix", "GET", "/ui/dist/app.js", 200, "text/html", index, ""},
		{"outside prefix", "GET", "/app.js", 404, "text/plain", "", ""},
		{"post", "POST", "/ui/", 405, "text/plain", "", ""},
		{"delete", "DELETE", "/ui/app.js", 405, "text/plain", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := serve(t, tt.method, tt.path, nil)
			if w.Code != tt.status {
				t.Fatalf("status %d, want %d: %s", w.Code, tt.status, w.Body)
			}
			h := w.Header()
			for k, v := range map[string]string{
				"Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'",
				"X-Content-Type-Options":  "nosniff",
				"Referrer-Policy":         "no-referrer",
				"Cache-Control":           "no-cache",
			} {
				if got := h.Get(k); got != v {
					t.Fatalf("%s = %q, want %q", k, got, v)
				}
			}
			if tt.ctype != "" && !strings.HasPrefix(h.Get("Content-Type"), tt.ctype) {
				t.Fatalf("Content-Type = %q, want %s", h.Get("Content-Type"), tt.ctype)
			}
			if tt.body != "" && w.Body.String() != tt.body {
				t.Fatalf("body differs from dist (%d bytes)", w.Body.Len())
			}
			if tt.method == "HEAD" && w.Body.Len() != 0 {
				t.Fatal("HEAD has a body")
			}
			if tt.location != "" && h.Get("Location") != tt.location {
				t.Fatalf("Location = %q", h.Get("Location"))
			}
			if tt.status == 405 && h.Get("Allow") != "GET, HEAD" {
				t.Fatalf("Allow = %q", h.Get("Allow"))
			}
		})
	}
}

func TestHandlerETag(t *testing.T) {
	w := serve(t, "GET", "/ui/app.js", nil)
	etag := w.Header().Get("ETag")
	if !regexp.MustCompile(`^"[0-9a-f]{16}"$`).MatchString(etag) {
		t.Fatalf("ETag = %q", etag)
	}
	if w := serve(t, "GET", "/ui/app.js", map[string]string{"If-None-Match": etag}); w.Code != http.StatusNotModified {
		t.Fatalf("revalidation = %d, want 304", w.Code)
	}
	if other := serve(t, "GET", "/ui/app.css", nil).Header().Get("ETag"); other == etag {
		t.Fatal("two files share an ETag")
	}
}

// TestNoInlineCode enforces what the CSP would otherwise break at run time:
// no inline scripts, styles or event handlers, and nothing loaded from
// another origin.
func TestNoInlineCode(t *testing.T) {
	err := fs.WalkDir(os.DirFS("dist"), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		s := readDist(t, p)
		checks := map[string]*regexp.Regexp{
			"inline script":      regexp.MustCompile(`<script(?:\s[^>]*)?>\s*[^<\s]`),
			"style element":      regexp.MustCompile(`<style`),
			"style attribute":    regexp.MustCompile(`\sstyle\s*=`),
			"event handler":      regexp.MustCompile(`\son[a-z]+\s*=\s*["']`),
			"external URL":       regexp.MustCompile(`(?:src|href)\s*=\s*["']?(?:https?:)?//`),
			"innerHTML":          regexp.MustCompile(`innerHTML|outerHTML|insertAdjacentHTML|document\.write`),
			"eval":               regexp.MustCompile(`\beval\(|new Function\(`),
			"localStorage":       regexp.MustCompile(`localStorage`),
			"import from URL":    regexp.MustCompile(`(?m)^\s*import\s.*from\s+["'](?:https?:)?//`),
			"setAttribute style": regexp.MustCompile(`setAttribute\(\s*["']style`),
		}
		for _, tag := range regexp.MustCompile(`<script[^>]*>`).FindAllString(s, -1) {
			if !strings.Contains(tag, " src=") {
				t.Errorf("%s: script without src: %s", p, tag)
			}
		}
		for name, re := range checks {
			if loc := re.FindStringIndex(s); loc != nil {
				t.Errorf("%s: %s at %d: %q", p, name, loc[0], s[loc[0]:min(len(s), loc[1]+20)])
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

package router

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// TestUnknownPathNotEchoedWhole: the 404 for an unknown path names it, but
// not all of a path (or method) up to the header limit. Before, a 60 KB
// path came back whole in the error message.
func TestUnknownPathNotEchoedWhole(t *testing.T) {
	srv, _ := newTestProxyWith(t, nil, time.Second, "http://127.0.0.1:1")
	req, _ := http.NewRequest(strings.Repeat("M", 4000), srv.URL+"/"+strings.Repeat("a", 60000), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var e struct {
		Error struct{ Message, Code string }
	}
	if resp.StatusCode != 404 || json.Unmarshal(b, &e) != nil || e.Error.Code != "unknown_url" {
		t.Fatalf("%d %.200s", resp.StatusCode, b)
	}
	if len(e.Error.Message) > 400 || !strings.HasPrefix(e.Error.Message, "unknown path MMMM") || !strings.Contains(e.Error.Message, "/aaaa") {
		t.Fatalf("message of %d bytes: %.300s", len(e.Error.Message), e.Error.Message)
	}
}

// TestErrorBodyValidUTF8: an error message holding bytes that are not
// UTF-8 (a percent-decoded path, a name cut mid-rune) is still valid JSON
// text: they become U+FFFD. Before, they were copied raw.
func TestErrorBodyValidUTF8(t *testing.T) {
	for _, s := range []string{"a\xffb", "\xe2\x82", "é€𝄞", "x\xed\xa0\x80y", strings.Repeat("é", 200)[:257]} {
		b := appendJSONString(nil, s)
		var back string
		if !utf8.Valid(b) || json.Unmarshal(b, &back) != nil {
			t.Fatalf("%q -> %q", s, b)
		}
		if want := strings.ToValidUTF8(s, "\uFFFD"); utf8.ValidString(s) && back != want {
			t.Fatalf("%q -> %q", s, back)
		}
	}
	srv, _ := newTestProxyWith(t, nil, time.Second, "http://127.0.0.1:1")
	resp, err := http.Get(srv.URL + "/%ff%fe")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 404 || !utf8.Valid(b) {
		t.Fatalf("%d %q", resp.StatusCode, b)
	}
}

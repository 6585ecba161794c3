package providers

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/sluice-ai/sluice/llm"
)

func TestValidateBaseURL(t *testing.T) {
	bad := map[string]string{
		"https://api.example.com/v1?x=1":                 "query",
		"https://api.example.com/v1?":                    "query",
		"https://api.example.com/v1#frag":                "fragment",
		"https://api.example.com/v1#":                    "fragment",
		"https://user:pw@api.example.com/v1":             "credentials",
		"ftp://api.example.com/v1":                       "http or https",
		"file:///etc/passwd":                             "http or https",
		"unix:///var/run/x.sock":                         "http or https",
		"api.example.com/v1":                             "http or https",
		"https:api.example.com":                          "http or https",
		"https://":                                       "http or https",
		"https://api.example.com/v 1":                    "spaces",
		"https://api.example.com/\r\nX: 1":               "control",
		"https://api.example.com:99999/v1":               "port",
		"http://2130706433/v1":                           "standard notation",
		"http://0x7f.1/v1":                               "standard notation",
		"http://127.1/v1":                                "standard notation",
		"https://h.example/" + strings.Repeat("a", 3000): "at most",
	}
	for u, want := range bad {
		p := &llm.Provider{Name: "x", Type: llm.ProviderOpenAICompatible, BaseURL: u}
		err := (Options{}).Validate(p)
		var ce *ConfigError
		if !errors.As(err, &ce) || ce.Field != "base_url" || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: got %v, want a base_url error about %s", u, err, want)
		}
	}
	for _, u := range []string{"https://api.example.com/v1/", "http://127.0.0.1:8000/v1", "http://[::1]:8000", "http://ollama:11434/v1", "https://10.0.0.7/v1"} {
		p := &llm.Provider{Name: "x", Type: llm.ProviderOpenAICompatible, BaseURL: u}
		if err := (Options{}).Validate(p); err != nil {
			t.Errorf("%q: %v", u, err)
		}
		if strings.HasSuffix(p.BaseURL, "/") {
			t.Errorf("%q kept its trailing slash", u)
		}
	}
	p := &llm.Provider{Name: "x", Type: llm.ProviderOpenAI}
	if err := (Options{}).Validate(p); err != nil || p.BaseURL != DefaultOpenAIBaseURL {
		t.Errorf("openai default: %v %q", err, p.BaseURL)
	}
	p = &llm.Provider{Name: "x", Type: llm.ProviderOpenAICompatible}
	if err := (Options{}).Validate(p); err == nil {
		t.Error("openai-compatible without base_url accepted")
	}
}

// Headers the transport owns, or that are not valid HTTP, are refused
// (they were stored and silently ignored or dropped).
func TestValidateHeaders(t *testing.T) {
	bad := []map[string]string{
		{"Host": "evil.example"},
		{"content-length": "5"},
		{"Transfer-Encoding": "chunked"},
		{"Connection": "close"},
		{"Upgrade": "h2c"},
		{"TE": "trailers"},
		{"Trailer": "X"},
		{"Keep-Alive": "timeout=5"},
		{"Proxy-Authorization": "Basic eA=="},
		{"Proxy-Connection": "keep-alive"},
		{"Expect": "100-continue"},
		{"Accept-Encoding": "gzip"},
		{"Content-Encoding": "gzip"},
		{"X-A": "a\r\nInjected: 1"},
		{"X-A": "a\nb"},
		{"X-A": "nul\x00"},
		{"X-A": " padded"},
		{"Bad Name": "v"},
		{"Bad:Name": "v"},
		{"": "v"},
		{"X-Ünicode": "v"},
		{"X-A": strings.Repeat("v", 9<<10)},
		{"x-dup": "1", "X-Dup": "2"},
	}
	for _, h := range bad {
		p := &llm.Provider{Name: "x", Type: llm.ProviderOpenAI, Headers: h}
		if err := (Options{}).Validate(p); err == nil {
			t.Errorf("headers %q accepted", h)
		} else if strings.Contains(err.Error(), "Injected") || strings.Contains(err.Error(), "Basic eA") {
			t.Errorf("error echoes a value: %v", err)
		}
	}
	p := &llm.Provider{Name: "x", Type: llm.ProviderOpenAI, Headers: map[string]string{"x-title": "app", "authorization": "Bearer t"}}
	if err := (Options{}).Validate(p); err != nil || p.Headers["X-Title"] != "app" || p.Headers["Authorization"] != "Bearer t" {
		t.Errorf("good headers: %v %v", err, p.Headers)
	}
}

func TestValidateOptionsAndSecrets(t *testing.T) {
	bad := []*llm.Provider{
		{Type: llm.ProviderOpenAI, Options: []byte(`{"organisation":"x"}`)},
		{Type: llm.ProviderOpenAI, Options: []byte(`{"organization":1}`)},
		{Type: llm.ProviderOpenAI, Options: []byte(`[]`)},
		{Type: llm.ProviderOpenAI, Options: []byte(`{"organization":"a"} {}`)},
		{Type: llm.ProviderOpenAI, Options: []byte(`{"organization":"a\r\nX: y"}`)},
		{Type: llm.ProviderOpenAICompatible, Options: []byte(`{"organization":"x"}`)},
		{Type: llm.ProviderOpenAI, Secrets: map[string]string{"x": "y"}},
		{Type: "mystery"},
		{Type: ""},
	}
	for _, p := range bad {
		p.Name = "x"
		if p.BaseURL == "" && p.Type == llm.ProviderOpenAICompatible {
			p.BaseURL = "https://x.example"
		}
		if err := (Options{}).Validate(p); err == nil {
			t.Errorf("%s options %s secrets %v accepted", p.Type, p.Options, p.Secrets)
		}
	}
	p := &llm.Provider{Name: "x", Type: llm.ProviderOpenAI, Options: []byte(` { "project" : "p1" } `)}
	if err := (Options{}).Validate(p); err != nil || string(p.Options) != `{"project":"p1"}` {
		t.Errorf("options not canonical: %v %s", err, p.Options)
	}
	p = &llm.Provider{Name: "x", Type: llm.ProviderOpenAICompatible, BaseURL: "https://x.example", Options: []byte(`null`)}
	if err := (Options{}).Validate(p); err != nil || string(p.Options) != `{}` {
		t.Errorf("null options: %v %s", err, p.Options)
	}
}

func TestDeniedAddr(t *testing.T) {
	denied := []string{"127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "0.0.0.0", "100.64.0.1",
		"224.0.0.1", "255.255.255.255", "240.0.0.1", "198.18.0.1", "::1", "::", "fe80::1", "fc00::1", "fd12::1", "ff02::1",
		"::ffff:127.0.0.1", "::ffff:169.254.169.254", "64:ff9b::a9fe:a9fe", "2002:7f00:1::", "fec0::1", "fe80::1%eth0"}
	for _, s := range denied {
		if !deniedAddr(netip.MustParseAddr(s)) {
			t.Errorf("%s allowed", s)
		}
	}
	for _, s := range []string{"8.8.8.8", "1.1.1.1", "2606:4700::1111", "100.128.0.1", "172.32.0.1", "64:ff9b::808:808", "2002:808:808::"} {
		if deniedAddr(netip.MustParseAddr(s)) {
			t.Errorf("%s denied", s)
		}
	}
}

// With DenyPrivate, literal non-public targets and localhost are refused
// at validation, and whatever a name resolves to is checked again at
// connect time (DNS rebinding cannot bypass the check).
func TestDenyPrivate(t *testing.T) {
	deny := Options{DenyPrivate: true}
	for _, u := range []string{"http://127.0.0.1:6379", "http://169.254.169.254/latest", "http://[::1]/v1", "http://[::ffff:10.0.0.1]/v1",
		"http://localhost:8000/v1", "http://LOCALHOST./v1", "http://redis.localhost/v1", "http://0.0.0.0/v1", "http://[fe80::1%25eth0]/v1"} {
		p := &llm.Provider{Name: "x", Type: llm.ProviderOpenAICompatible, BaseURL: u}
		if err := deny.Validate(p); err == nil || !strings.Contains(err.Error(), "SLUICE_UPSTREAM_DENY_PRIVATE") {
			t.Errorf("%s: %v", u, err)
		}
	}
	p := &llm.Provider{Name: "x", Type: llm.ProviderOpenAICompatible, BaseURL: "https://api.example.com/v1"}
	if err := deny.Validate(p); err != nil {
		t.Errorf("public name refused: %v", err)
	}

	var hit bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hit = true }))
	defer srv.Close()
	// A name that passes validation but resolves to loopback, as a
	// rebinding DNS name would: the dialer refuses the address.
	name := strings.Replace(srv.URL, "127.0.0.1", "localhost", 1)
	prov, err := NewOpenAI(&llm.Provider{Name: "r", Type: llm.ProviderOpenAICompatible, BaseURL: name}, NewClient(llm.Timeouts{}, deny))
	if err != nil {
		t.Fatal(err)
	}
	e, err := do(prov)
	if err != nil {
		t.Fatal(err)
	}
	if hit || e.Kind != llm.KindUnreachable || !errors.Is(e, errDeniedAddr) {
		t.Fatalf("hit=%v err=%+v", hit, e)
	}
	// Without the setting the same target is reachable.
	prov, _ = NewOpenAI(&llm.Provider{Name: "r", Type: llm.ProviderOpenAICompatible, BaseURL: name}, NewClient(llm.Timeouts{}, Options{}))
	if _, err := do(prov); err == nil || !hit {
		t.Fatalf("allowed target not reached: %v", err)
	}
}

package providers

import (
	"bytes"
	"encoding/base64"
	"strconv"
	"strings"
	"testing"

	"github.com/sluice-ai/sluice/llm"
)

func TestRedactor(t *testing.T) {
	r := newRedactor([]string{secret, "short5", "abc", "", "aws/secret+key/0123456789ABCDEF"})
	tests := []struct{ in, want string }{
		{"nothing here", "nothing here"},
		{"key " + secret + " end", "key [redacted] end"},
		{"key sk-proj-abcdefgh***6789 end", "key [redacted]***6789 end"},
		{secret + secret, "[redacted]"},
		{"x short5 y", "x [redacted] y"},
		{"abc is too short to be a secret", "abc is too short to be a secret"},
		{`json "aws\/secret+key\/0123456789ABCDEF"`, `json "[redacted]"`},
		{"url aws%2Fsecret%2Bkey%2F0123456789ABCDEF", "url [redacted]"},
		{"tail " + secret[len(secret)-fragLen:], "tail [redacted]"},
		{secret[:fragLen-1], secret[:fragLen-1]},
	}
	for _, tt := range tests {
		if got := string(r.Redact(nil, []byte(tt.in))); got != tt.want {
			t.Errorf("Redact(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if got := r.str(tt.in); got != tt.want {
			t.Errorf("str(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	if newRedactor([]string{"", "ab"}) != nil {
		t.Error("a redactor with nothing to redact")
	}
	var nilR *redactor
	if got := nilR.str("x"); got != "x" {
		t.Error("nil redactor changed text")
	}
}

// Redact returns its input without allocating when nothing matches, and
// appends to dst when something does.
func TestRedactNoAllocWhenClean(t *testing.T) {
	r := newRedactor([]string{secret, "Bearer tok-0123456789"})
	clean := []byte(`{"error":{"message":"The server had an error while processing your request.","type":"server_error"}}`)
	var out []byte
	if n := testing.AllocsPerRun(100, func() { out = r.Redact(nil, clean) }); n != 0 {
		t.Fatalf("%v allocations for a clean input", n)
	}
	if &out[0] != &clean[0] {
		t.Fatal("clean input was copied")
	}
	dst := make([]byte, 0, 256)
	got := r.Redact(dst, []byte("x "+secret))
	if string(got) != "x [redacted]" || &got[0] != &dst[:1][0] {
		t.Fatalf("dirty input: %q", got)
	}
}

// The secrets of a provider: api_key, every secret, and credential-like
// header values with and without their scheme; ordinary headers are not.
func TestProviderSecrets(t *testing.T) {
	p := &llm.Provider{APIKey: "k1-0123456789", Secrets: map[string]string{"aws_secret": "s1-0123456789"},
		Headers: map[string]string{"Authorization": "Bearer t1-0123456789", "X-Goog-Api-Key": "g1-0123456789", "X-Title": "my-app-0123456789",
			"X-Upstream-Auth": "Basic " + base64.StdEncoding.EncodeToString([]byte("alice:pw-0123456789"))}}
	got := strings.Join(providerSecrets(p), " ")
	for _, want := range []string{"k1-0123456789", "s1-0123456789", "Bearer t1-0123456789", " t1-0123456789", "g1-0123456789", " pw-0123456789"} {
		if !strings.Contains(got, want) {
			t.Errorf("secrets %q lack %q", got, want)
		}
	}
	if strings.Contains(got, "my-app") {
		t.Errorf("ordinary header redacted: %q", got)
	}
}

// The cost of Redact is linear in the input: the same work per byte for
// 1 KiB and 1 MiB (see BenchmarkRedact); this checks the output of a long
// input with many matches.
func TestRedactLongInput(t *testing.T) {
	r := newRedactor([]string{secret})
	in := bytes.Repeat([]byte("ab "+secret[3:20]+" cd "), 1<<14)
	out := r.Redact(nil, in)
	if bytes.Contains(out, []byte(secret[3:3+fragLen])) || bytes.Count(out, []byte(redacted)) != 1<<14 {
		t.Fatalf("long input not redacted: %d markers", bytes.Count(out, []byte(redacted)))
	}
}

func BenchmarkRedact(b *testing.B) {
	r := newRedactor([]string{secret, "Bearer tok-0123456789abcdef", "aws/secret+key/0123456789ABCDEF"})
	for _, n := range []int{256, 64 << 10} {
		clean := bytes.Repeat([]byte(`{"choices":[{"delta":{"content":"hello world"}}]} `), n/50+1)[:n]
		b.Run("clean-"+strconv.Itoa(n), func(b *testing.B) {
			b.SetBytes(int64(n))
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				r.Redact(nil, clean)
			}
		})
	}
}

// TestRedactWhole: whole echoes of a credential are removed from an
// answer, in any of its forms; fragments ("sk-proj-" style prefixes, a
// masked "sk-abc*****xyz") are content and stay, and a clean answer is
// returned as is.
func TestRedactWhole(t *testing.T) {
	r := newRedactor([]string{secret})
	in := []byte(`{"content":"key ` + secret + `, prefix ` + secret[:8] + `, masked ` + secret[:6] + `*****` + secret[len(secret)-4:] + `"}`)
	got := string(r.RedactWhole(nil, in))
	want := `{"content":"key [redacted], prefix ` + secret[:8] + `, masked ` + secret[:6] + `*****` + secret[len(secret)-4:] + `"}`
	if got != want {
		t.Errorf("RedactWhole:\n got %s\nwant %s", got, want)
	}
	clean := []byte(`{"content":"nothing to see"}`)
	if out := r.RedactWhole(nil, clean); &out[0] != &clean[0] {
		t.Errorf("RedactWhole copied a clean input")
	}
	var nilR *redactor
	if out := nilR.RedactWhole(nil, in); string(out) != string(in) {
		t.Errorf("nil redactor changed its input")
	}
}

// A short credential (a 5-byte header token) does not lower the bar for
// the long ones: fragments of the API key in an answer stay content, the
// short token itself is still removed.
func TestRedactWholeMixedLengths(t *testing.T) {
	r := newRedactor([]string{secret, "tok42"})
	in := []byte(`{"content":"prefix ` + secret[:fragLen] + ` and tok42"}`)
	want := `{"content":"prefix ` + secret[:fragLen] + ` and [redacted]"}`
	if got := string(r.RedactWhole(nil, in)); got != want {
		t.Fatalf("got %s\nwant %s", got, want)
	}
}

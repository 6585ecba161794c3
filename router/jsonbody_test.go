package router

import (
	"encoding/json"
	"github.com/sluice-ai/sluice/llm"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestParseRequest(t *testing.T) {
	tests := []struct {
		name, body string
		ok         bool
		model      string
		stream     bool
		incl       bool
	}{
		{"plain", `{"model":"m","messages":[]}`, true, "m", false, false},
		{"stream", `{"model":"m","stream":true}`, true, "m", true, false},
		{"stream usage", ` { "stream" : true , "stream_options":{"include_usage":true}, "model" : "m" } `, true, "m", true, true},
		{"escaped key", `{"mod\u0065l":"m"}`, true, "m", false, false},
		{"dup model", `{"model":"a","model":"b"}`, false, "", false, false},
		{"dup escaped", `{"model":"a","mod\u0065l":"b"}`, false, "", false, false},
		{"case variant", `{"model":"a","Model":"b"}`, false, "", false, false},
		{"missing model", `{"messages":[]}`, false, "", false, false},
		{"empty model", `{"model":""}`, false, "", false, false},
		{"model not string", `{"model":1}`, false, "", false, false},
		{"stream not bool", `{"model":"m","stream":"yes"}`, false, "", false, false},
		{"array", `[1]`, false, "", false, false},
		{"trailing", `{"model":"m"} x`, false, "", false, false},
		{"bad utf8", "{\"model\":\"a\xffb\"}", false, "", false, false},
		{"truncated", `{"model":"m"`, false, "", false, false},
		{"unicode case variant", `{"model":"a","ſtream":true}`, false, "", false, false},
		{"BOM", "\xef\xbb\xbf{\"model\":\"m\"}", false, "", false, false},
		{"include_usage null", `{"model":"m","stream":true,"stream_options":{"include_usage":null}}`, true, "m", true, false},
		{"include_usage case variant", `{"model":"m","stream":true,"stream_options":{"Include_Usage":true}}`, false, "", false, false},
		{"include_usage dup", `{"model":"m","stream":true,"stream_options":{"include_usage":false,"include_usage":true}}`, false, "", false, false},
		{"include_usage not bool", `{"model":"m","stream":true,"stream_options":{"include_usage":"yes"}}`, false, "", false, false},
		{"stream_options array", `{"model":"m","stream":true,"stream_options":[]}`, false, "", false, false},
		{"stream_options other members", `{"model":"m","stream":true,"stream_options":{"x":{"include_usage":false},"include_usage":true}}`, true, "m", true, true},
		{"model object", `{"model":{"name":"m"}}`, false, "", false, false},
		{"model array", `{"model":["m"]}`, false, "", false, false},
		{"model null", `{"model":null}`, false, "", false, false},
		{"stream number", `{"model":"m","stream":1}`, false, "", false, false},
		{"stream string", `{"model":"m","stream":"true"}`, false, "", false, false},
		{"surrogate pair", `{"model":"m","x":"\ud83d\ude00"}`, true, "m", false, false},
		{"escaped backslash u", `{"model":"m","x":"\\ud800"}`, true, "m", false, false},
		{"lone surrogate in content", `{"model":"m","x":"\ud800"}`, true, "m", false, false},
		{"lone high surrogate in model", `{"model":"m\ud800"}`, false, "", false, false},
		{"high surrogate then letter in model", `{"model":"m\ud800\u0041"}`, false, "", false, false},
		{"lone low surrogate in model", `{"model":"a\uDC00"}`, false, "", false, false},
		{"surrogate pair in model", `{"model":"a\uD83D\uDE00"}`, true, "a\U0001F600", false, false},
		{"escaped backslash u in key", `{"model":"m","a\\ud800":1}`, true, "m", false, false},
		{"surrogate in key", `{"model":"m","\ud800":1}`, false, "", false, false},
		{"surrogates in two keys", `{"model":"m","\ud800":1,"\udbff":2}`, false, "", false, false},
		{"surrogate in stream_options key", `{"model":"m","stream_options":{"\udc00":1}}`, false, "", false, false},
		{"trailing second object", `{"model":"m"}{}`, false, "", false, false},
		{"nul escape", `{"model":"m","x":"\u0000"}`, true, "m", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := parseRequest([]byte(tt.body), llm.DialectOpenAIChat)
			if tt.ok != (err == nil) {
				t.Fatalf("ok=%v err=%v", tt.ok, err)
			}
			if err != nil {
				if err.Status != 400 {
					t.Fatalf("status %d", err.Status)
				}
				return
			}
			if r.model != tt.model || r.stream != tt.stream || r.includeUsage != tt.incl {
				t.Fatalf("got model=%q stream=%v incl=%v", r.model, r.stream, r.includeUsage)
			}
		})
	}
}

func TestUpstreamBody(t *testing.T) {
	tests := []struct {
		name, body, upstream string
		check                func(map[string]any) bool
	}{
		{"same model no stream", `{"model":"m","x":1}`, "m", func(m map[string]any) bool { return m["model"] == "m" && m["stream_options"] == nil }},
		{"rename", `{"model":"m","x":1}`, "up/\"q\"", func(m map[string]any) bool { return m["model"] == "up/\"q\"" }},
		{"stream inject", `{"model":"m","stream":true}`, "u", func(m map[string]any) bool {
			so, _ := m["stream_options"].(map[string]any)
			return m["model"] == "u" && so["include_usage"] == true
		}},
		{"stream null opts", `{"stream_options":null,"model":"m","stream":true}`, "u", func(m map[string]any) bool {
			so, _ := m["stream_options"].(map[string]any)
			return so["include_usage"] == true
		}},
		{"stream merge opts", `{"model":"m","stream":true,"stream_options":{"include_usage":false,"other":1}}`, "m", func(m map[string]any) bool {
			so, _ := m["stream_options"].(map[string]any)
			return so["include_usage"] == true && so["other"] == float64(1)
		}},
	}
	// stream_options is spliced, not decoded and re-encoded: the client's
	// other members reach the upstream byte for byte.
	for in, want := range map[string]string{
		`{"model":"m","stream":true,"stream_options":{"include_usage":false,"b":1,"a":[2]}}`: `{"model":"m","stream":true,"stream_options":{"include_usage":true,"b":1,"a":[2]}}`,
		`{"model":"m","stream":true,"stream_options":{"b":1 , "a":{"include_usage":false}}}`: `{"model":"m","stream":true,"stream_options":{"include_usage":true,"b":1 , "a":{"include_usage":false}}}`,
		`{"model":"m","stream":true,"stream_options":{ }}`:                                   `{"model":"m","stream":true,"stream_options":{"include_usage":true}}`,
		`{"model":"m","stream":true,"stream_options":{"include_usage":null}}`:                `{"model":"m","stream":true,"stream_options":{"include_usage":true}}`,
		`{"stream_options":null,"model":"m","stream":true}`:                                  `{"stream_options":{"include_usage":true},"model":"m","stream":true}`,
		`{"model":"m","stream":true}`:                                                        `{"model":"m","stream":true,"stream_options":{"include_usage":true}}`,
		`{"model":"m","stream":true,"stream_options":{"include_usage":true,"x":1}}`:          `{"model":"m","stream":true,"stream_options":{"include_usage":true,"x":1}}`,
	} {
		r, err := parseRequest([]byte(in), llm.DialectOpenAIChat)
		if err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		if got := string(r.upstreamBody("m")); got != want {
			t.Errorf("upstreamBody(%s) = %s, want %s", in, got, want)
		}
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := parseRequest([]byte(tt.body), llm.DialectOpenAIChat)
			if err != nil {
				t.Fatal(err)
			}
			out := r.upstreamBody(tt.upstream)
			var m map[string]any
			if e := json.Unmarshal(out, &m); e != nil {
				t.Fatalf("invalid JSON %s: %v", out, e)
			}
			if !tt.check(m) {
				t.Fatalf("unexpected body %s", out)
			}
		})
	}
}

func TestEmptyChoices(t *testing.T) {
	for in, want := range map[string]bool{"": true, "null": true, "[]": true, "[ ]": true, `[{"a":1}]`: false} {
		if got := emptyChoices([]byte(in)); got != want {
			t.Errorf("emptyChoices(%q) = %v", in, got)
		}
	}
}

// FuzzParseRequest checks that no input panics and that an accepted body
// rewrites to valid JSON with the new model.
func FuzzParseRequest(f *testing.F) {
	for _, s := range []string{`{"model":"m"}`, `{"model":"m","stream":true}`, `{"`, `{"a":`, `{"model":"m","stream_options":{}}`, `{"model":"m","stream":true,"stream_options":null}`} {
		f.Add([]byte(s))
	}
	f.Add([]byte(`{"model":"m","stream":true,"stream_options":{"include_usage":false,"x":[1,{"y":"\ud83d\ude00"}]}}`))
	f.Add([]byte(`{"model":"m","stream":true,"stream_options":{"x":1}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		defer timeBound(t, len(b))()
		_ = member(b, "usage")
		_, _, _, _ = chunkMembers(b)
		r, err := parseRequest(b, llm.DialectOpenAIChat)
		if err != nil {
			if err.Status != 400 || err.Type != "invalid_request_error" {
				t.Fatalf("error %+v", err)
			}
			return
		}
		for _, model := range []string{r.model, "rewritten"} {
			out := r.upstreamBody(model)
			var m map[string]any
			if json.Unmarshal(out, &m) != nil || m["model"] != model {
				t.Fatalf("bad rewrite of %q: %q", b, out)
			}
			if so, _ := m["stream_options"].(map[string]any); r.stream && so["include_usage"] != true {
				t.Fatalf("rewrite of %q does not ask for usage: %q", b, out)
			}
			if _, err := parseRequest(out, llm.DialectOpenAIChat); err != nil {
				t.Fatalf("rewrite %q of %q is refused: %v", out, b, err)
			}
		}
	})
}

// membersBody is a request with n top-level members, model first.
func membersBody(n int) []byte {
	b := append(make([]byte, 0, 16*n), `{"model":"m"`...)
	for i := 1; i < n; i++ {
		b = append(b, `,"k`...)
		b = strconv.AppendInt(b, int64(i), 10)
		b = append(b, `":1`...)
	}
	return append(b, '}')
}

func TestParseRequestMemberLimit(t *testing.T) {
	// 200,000 members: the old pairwise duplicate check took minutes of
	// CPU here; the limit now refuses the body after maxMembers of them.
	for _, n := range []int{maxMembers + 1, 200000} {
		_, err := parseRequest(membersBody(n), llm.DialectOpenAIChat)
		if err == nil || err.Status != 400 || err.Code != "too_many_members" || !strings.Contains(err.Message, strconv.Itoa(maxMembers)) {
			t.Fatalf("%d members: %+v", n, err)
		}
	}
	if r, err := parseRequest(membersBody(maxMembers), llm.DialectOpenAIChat); err != nil || r.model != "m" {
		t.Fatalf("%d members: %v", maxMembers, err)
	}
	// Duplicates are still found past the slice of the first 16 keys.
	dup := append(membersBody(500)[:len(membersBody(500))-1], `,"k400":2}`...)
	if _, err := parseRequest(dup, llm.DialectOpenAIChat); err == nil || err.Param != "k400" {
		t.Fatalf("duplicate k400: %+v", err)
	}
	so := `{"model":"m","stream":true,"stream_options":` + string(membersBody(maxMembers+1)) + `}`
	if _, err := parseRequest([]byte(so), llm.DialectOpenAIChat); err == nil || err.Code != "too_many_members" {
		t.Fatalf("stream_options with %d members: %+v", maxMembers+1, err)
	}
}

func TestParseRequestShapeLimits(t *testing.T) {
	nest := func(depth int) string {
		return `{"model":"m","x":` + strings.Repeat("[", depth-1) + strings.Repeat("]", depth-1) + "}"
	}
	num := func(digits int) string { return `{"model":"m","x":` + strings.Repeat("9", digits) + "}" }
	tests := []struct {
		name, body string
		code       string // "" means accepted
	}{
		{"depth at limit", nest(maxDepth), ""},
		{"depth past limit", nest(maxDepth + 1), "body_too_deep"},
		{"depth 100000", nest(100000), "body_too_deep"},
		{"depth in strings ignored", `{"model":"m","x":"` + strings.Repeat("[", 1000) + `"}`, ""},
		{"number at limit", num(maxNumberBytes), ""},
		{"number past limit", num(maxNumberBytes + 1), "number_too_long"},
		{"exponent past limit", `{"model":"m","x":1e` + strings.Repeat("0", maxNumberBytes) + "}", "number_too_long"},
		{"digits in strings ignored", `{"model":"m","x":"` + strings.Repeat("9", 10000) + `"}`, ""},
		{"huge string", `{"model":"m","x":"` + strings.Repeat("\\n", 200000) + `"}`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseRequest([]byte(tt.body), llm.DialectOpenAIChat)
			if tt.code == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || err.Status != 400 || err.Code != tt.code {
				t.Fatalf("got %+v, want code %s", err, tt.code)
			}
			if tt.code == "body_too_deep" && !strings.Contains(err.Message, strconv.Itoa(maxDepth)) {
				t.Fatalf("message does not name the limit: %s", err.Message)
			}
		})
	}
}

// BenchmarkParseRequestMembers shows parsing linear in the member count
// (ns/op over members stays flat); beyond maxMembers the body is refused
// after maxMembers of them.
func BenchmarkParseRequestMembers(b *testing.B) {
	for _, n := range []int{100, 1000, 10000, 40000, 200000} {
		body := membersBody(n)
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				_, _ = parseRequest(body, llm.DialectOpenAIChat)
			}
		})
	}
}

// BenchmarkParseRequestSize parses accepted bodies of growing size (one
// long message), to show the whole validation linear in bytes.
func BenchmarkParseRequestSize(b *testing.B) {
	for _, kb := range []int{1, 64, 1024, 8192} {
		body := []byte(`{"model":"m","stream":true,"messages":[{"role":"user","content":"` + strings.Repeat("lorem ipsum \\n ", kb*1024/15) + `"}]}`)
		b.Run(strconv.Itoa(kb)+"KiB", func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				r, _ := parseRequest(body, llm.DialectOpenAIChat)
				_ = r.upstreamBody("u")
			}
		})
	}
}

func BenchmarkParseAndRewrite(b *testing.B) {
	body := []byte(`{"model":"gpt-4o-mini","messages":[{"role":"system","content":"You are a helpful assistant."},{"role":"user","content":"Hello! Tell me a joke about gateways, please."}],"temperature":0.7,"stream":true}`)
	b.ReportAllocs()
	for b.Loop() {
		r, _ := parseRequest(body, llm.DialectOpenAIChat)
		_ = r.upstreamBody("gpt-4o-mini-2024-07-18")
	}
}

func TestProxyRefusesHostileBodies(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("a refused body reached the upstream")
	}))
	defer up.Close()
	srv, _ := newTestProxyWith(t, func(o *Options) { o.MaxBodyBytes = 8 << 20 }, time.Second, up.URL)
	long := "a" + strings.Repeat("é", 100) // a duplicate key longer than the 64 bytes shown, cut mid-rune
	for name, tt := range map[string]struct {
		body, want string
	}{
		"200k members": {string(membersBody(200000)), "more than 1024 top-level members"},
		"deep":         {`{"model":"m","x":` + strings.Repeat("[", 1<<20) + strings.Repeat("]", 1<<20) + `}`, "deeper than 128 levels"},
		"long number":  {`{"model":"m","x":` + strings.Repeat("1", 5000) + `}`, "longer than 256 characters"},
		"dup long key": {`{"model":"m","` + long + `":1,"` + long + `":2}`, "duplicate member"},
	} {
		t.Run(name, func(t *testing.T) {
			resp := post(t, srv.URL, tt.body)
			b, _ := io.ReadAll(resp.Body)
			var e struct {
				Error struct{ Message, Type string }
			}
			if resp.StatusCode != 400 || !utf8.Valid(b) || json.Unmarshal(b, &e) != nil || e.Error.Type != "invalid_request_error" || !strings.Contains(e.Error.Message, tt.want) {
				t.Fatalf("status %d body %.300s", resp.StatusCode, b)
			}
		})
	}
}

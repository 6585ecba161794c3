package router

import (
	"encoding/json"
	"testing"
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
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := parseRequest([]byte(tt.body))
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
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := parseRequest([]byte(tt.body))
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
	f.Fuzz(func(t *testing.T, b []byte) {
		_ = member(b, "usage")
		r, err := parseRequest(b)
		if err != nil {
			return
		}
		out := r.upstreamBody("rewritten")
		var m map[string]any
		if json.Unmarshal(out, &m) != nil || m["model"] != "rewritten" {
			t.Fatalf("bad rewrite of %q: %q", b, out)
		}
	})
}

func BenchmarkParseAndRewrite(b *testing.B) {
	body := []byte(`{"model":"gpt-4o-mini","messages":[{"role":"system","content":"You are a helpful assistant."},{"role":"user","content":"Hello! Tell me a joke about gateways, please."}],"temperature":0.7,"stream":true}`)
	b.ReportAllocs()
	for b.Loop() {
		r, _ := parseRequest(body)
		_ = r.upstreamBody("gpt-4o-mini-2024-07-18")
	}
}

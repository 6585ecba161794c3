package jsonspan

import (
	"encoding/json"
	"strings"
	"testing"
)

var validCases = []string{
	`{}`, `[]`, ` {"a":1} `, `"x"`, `0`, `-0.5e+10`, `true`, `null`, `[1,[2,[3,{"a":[]}]]]`,
	`{"a":"\u00e9\n\"","b":[true,false,null],"c":{"d":-1.25E-3}}`,
	"\"caf\xc3\xa9\"", "\"\xff\"",
	strings.Repeat("[", 200) + strings.Repeat("]", 200),
	strings.Repeat(`{"a":`, 100) + "1" + strings.Repeat("}", 100),
	// invalid
	``, ` `, `{`, `}`, `[1,]`, `{"a":1,}`, `{"a"}`, `{"a":}`, `{1:2}`, `[1 2]`, `01`, `-`, `1.`, `.5`, `1e`, `+1`,
	`tru`, `nul`, `"\x"`, `"\u12"`, "\"a\x01\"", `"open`, `{"a":1}}`, `[]]`, `[}`, `{]`, `1 2`, `{"a":1}x`,
	strings.Repeat("[", 200) + strings.Repeat("]", 199),
}

func TestValidAgreesWithEncodingJSON(t *testing.T) {
	for _, c := range validCases {
		if got, want := Valid([]byte(c)), json.Valid([]byte(c)); got != want {
			t.Errorf("Valid(%.60q) = %t, encoding/json says %t", c, got, want)
		}
	}
}

// FuzzValid: Valid must agree with encoding/json.Valid on every input, and
// stay linear.
func FuzzValid(f *testing.F) {
	for _, c := range validCases {
		f.Add(c)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := Valid([]byte(s)), json.Valid([]byte(s)); got != want {
			t.Fatalf("Valid(%q) = %t, encoding/json says %t", s, got, want)
		}
	})
}

func BenchmarkValid(b *testing.B) {
	body := []byte(`{"id":"chatcmpl-mock9b16a67c2","object":"chat.completion","created":1795975529,"model":"gpt-4o-mini","system_fingerprint":"fp_mockllm","choices":[{"index":0,"message":{"role":"assistant","content":"Hello from the mock LLM! ","refusal":null,"annotations":[]},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":2,"completion_tokens":5,"total_tokens":7,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}},"service_tier":"default"}`)
	b.Run("jsonspan", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			Valid(body)
		}
	})
	b.Run("encoding/json", func(b *testing.B) {
		for b.Loop() {
			json.Valid(body)
		}
	})
}

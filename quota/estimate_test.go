package quota

import "testing"

func TestCountOffline(t *testing.T) {
	e := NewEstimator()
	if got := e.Count("hello world"); got != 2 {
		t.Fatalf("Count(hello world) = %d, want 2", got)
	}
	if e.err != nil {
		t.Fatalf("encoding did not load offline: %v", e.err)
	}
}

func TestPromptTokens(t *testing.T) {
	e := NewEstimator()
	tests := []struct {
		name string
		body string
		min  int
	}{
		{"chat string", `{"model":"m","messages":[{"role":"user","content":"hello world"}]}`, 8},
		{"chat parts", `{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"hello world"}]}]}`, 8},
		{"prompt", `{"model":"m","prompt":"hello world"}`, 2},
		{"embedding list", `{"model":"m","input":["hello","world"]}`, 2},
		{"bad json", `{`, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := e.PromptTokens([]byte(tt.body)); got < tt.min || (tt.min == 0 && got != 0) {
				t.Fatalf("PromptTokens = %d, want >= %d", got, tt.min)
			}
		})
	}
}

func BenchmarkCount(b *testing.B) {
	e := NewEstimator()
	e.Count("warm")
	for b.Loop() {
		e.Count("The quick brown fox jumps over the lazy dog, again and again.")
	}
}

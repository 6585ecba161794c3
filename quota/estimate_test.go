package quota

import (
	"strings"
	"testing"
	"time"
)

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

func BenchmarkCountLongRun(b *testing.B) {
	e := NewEstimator()
	e.Warm()
	s := strings.Repeat("x", 1<<20)
	for b.Loop() {
		e.Count(s)
	}
}

func BenchmarkCount(b *testing.B) {
	e := NewEstimator()
	e.Count("warm")
	for b.Loop() {
		e.Count("The quick brown fox jumps over the lazy dog, again and again.")
	}
}

func TestCountIsBoundedOnPathologicalInput(t *testing.T) {
	e := NewEstimator()
	e.Warm()
	tests := []struct {
		name string
		s    string
		min  int
	}{
		{"one long run", strings.Repeat("x", 1<<20), 1 << 18},
		{"long text", strings.Repeat("hello world ", 200000), 400000},
		{"base64 in prose", "look: " + strings.Repeat("QUJD", 5000) + " done", 5000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A liveness guard, not a timing assertion: unbounded merging
			// takes minutes here; bounded counting takes milliseconds.
			done := make(chan int, 1)
			go func() { done <- e.Count(tt.s) }()
			var n int
			select {
			case n = <-done:
			case <-time.After(30 * time.Second):
				t.Fatal("Count did not finish")
			}
			if n < tt.min {
				t.Fatalf("Count = %d, want >= %d", n, tt.min)
			}
		})
	}
}

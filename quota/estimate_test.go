package quota

import (
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestCountOffline(t *testing.T) {
	e := NewEstimator()
	if got := e.Count("hello world"); got != 2 {
		t.Fatalf("Count(hello world) = %d, want 2", got)
	}
	if e.o200k.err != nil || e.o200k.enc == nil {
		t.Fatalf("encoding did not load offline: %v", e.o200k.err)
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
		{"one long run", strings.Repeat("x", 1<<20), 1 << 17}, // exact: eight x a token
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

func TestPromptTokensMatchesNamesExactly(t *testing.T) {
	// encoding/json matched "Content" to content and "MESSAGES" to
	// messages: the later variant hid the text the upstream reads.
	e := NewEstimator()
	text := strings.Repeat("hello world ", 500)
	for _, body := range []string{
		`{"model":"m","messages":[{"role":"user","content":"` + text + `","Content":""}]}`,
		`{"model":"m","messages":[{"role":"user","content":"` + text + `"}],"MESSAGES":[]}`,
		`{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"` + text + `","TEXT":""}]}]}`,
		`{"model":"m","prompt":"` + text + `","Prompt":""}`,
		`{"model":"m","input":"` + text + `","INPUT":null}`,
		`{"model":"m","messages":[{"role":"user","cont\u0065nt":"` + text + `"}]}`,
	} {
		if got := e.PromptTokens([]byte(body)); got < 1000 {
			t.Errorf("PromptTokens = %d, want >= 1000 for %.80s", got, body)
		}
	}
	// Exact names only: a variant alone is not read.
	if got := e.PromptTokens([]byte(`{"model":"m","Prompt":"` + text + `"}`)); got != 0 {
		t.Errorf("PromptTokens of a case variant = %d", got)
	}
}

func TestPromptTokensMemoryIsBounded(t *testing.T) {
	// Decoding a million empty messages into structs allocated about
	// 350 MB (and took seconds) for a 3 MB body.
	e := NewEstimator()
	e.Warm()
	body := []byte(`{"model":"m","messages":[` + strings.Repeat(`{},`, 1_000_000) + `{"role":"user","content":"hi"}]}`)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	n := e.PromptTokens(body)
	runtime.ReadMemStats(&after)
	if n < 3_000_000 {
		t.Fatalf("PromptTokens = %d, want >= 3 per message", n)
	}
	if got := after.TotalAlloc - before.TotalAlloc; got > 64<<20 {
		t.Fatalf("PromptTokens allocated %d MB for a %d MB body", got>>20, len(body)>>20)
	}
}

func TestPromptTokensSamplesLongText(t *testing.T) {
	// Text past sampleBytes is measured, not copied: the estimate still
	// grows with it.
	e := NewEstimator()
	msg := `{"role":"user","content":"` + strings.Repeat("hello world ", 1000) + `"},`
	small := e.PromptTokens([]byte(`{"model":"m","messages":[` + msg + `{}]}`))
	big := e.PromptTokens([]byte(`{"model":"m","messages":[` + strings.Repeat(msg, 100) + `{}]}`))
	if big < 90*small || big > 110*small {
		t.Fatalf("100 copies: %d tokens, one: %d", big, small)
	}
}

func FuzzPromptTokens(f *testing.F) {
	long := strings.Repeat(`It's a \"long\" text\n\u00e9\ud83d\ude00 `, 12)
	f.Add([]byte(`{"model":"m","system":"` + long + `","messages":[{"role":"user","name":"n","content":[{"type":"text","text":"` + long + `"}]}]}`))
	for _, s := range []string{`{"model":"m","messages":[{"role":"user","content":"hi"}]}`, `{"prompt":["a","b"]}`, `{"input":[{"text":"x"}]}`, `{"messages":[{"content":[{"type":"text","text":"a"}]}]}`, `{`} {
		f.Add([]byte(s))
	}
	e, plain := NewEstimator(), &Estimator{}
	e.Warm()
	f.Fuzz(func(t *testing.T, b []byte) {
		start := time.Now()
		n := e.PromptTokens(b)
		if n < 0 {
			t.Fatalf("PromptTokens = %d", n)
		}
		if d, limit := time.Since(start), time.Second*time.Duration(1+len(b)>>20); d > limit {
			t.Fatalf("PromptTokens of %d bytes took %v", len(b), d)
		}
		// The cache changes nothing: again from it, and without one.
		if again, want := e.PromptTokens(b), plain.PromptTokens(b); again != n || want != n {
			t.Fatalf("PromptTokens = %d, then %d; %d without the cache", n, again, want)
		}
	})
}

func BenchmarkCountSpaces(b *testing.B) {
	e := NewEstimator()
	e.Warm()
	s := strings.Repeat(" ", 64<<10)
	for b.Loop() {
		e.Count(s)
	}
}

func BenchmarkPromptTokens(b *testing.B) {
	e := NewEstimator()
	e.Warm()
	var sb strings.Builder
	sb.WriteString(`{"model":"m","messages":[`)
	for i := 0; i < 100; i++ {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(`{"role":"user","content":"The quick brown fox jumps over the lazy dog, again and again."}`)
	}
	sb.WriteString(`]}`)
	body := []byte(sb.String())
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		e.PromptTokens(body)
	}
}

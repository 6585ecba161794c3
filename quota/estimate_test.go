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

// recordingEncoder passes calls through and records the longest ASCII
// whitespace run and the longest run of one repeated byte it was given.
type recordingEncoder struct {
	enc            encoder
	maxWS, maxSame int
}

func (r *recordingEncoder) EncodeOrdinary(s string) []int {
	ws, same := 0, 0
	for i := 0; i < len(s); i++ {
		if isSpace(s[i]) {
			ws++
		} else {
			ws = 0
		}
		if i > 0 && s[i] == s[i-1] {
			same++
		} else {
			same = 1
		}
		r.maxWS, r.maxSame = max(r.maxWS, ws), max(r.maxSame, same)
	}
	return r.enc.EncodeOrdinary(s)
}

func TestCountNeverMergesLongRuns(t *testing.T) {
	// tiktoken's merge is quadratic in one pre-token: 64 KiB of spaces took
	// 3.8 s. The tokenizer must never see a run longer than maxRunBytes,
	// and the counts of such runs stay exact.
	e := NewEstimator()
	e.Warm()
	tests := []struct {
		name string
		s    string
		want int // 0: at least len/4
	}{
		{"spaces", strings.Repeat(" ", 65000), 509},
		{"newlines", strings.Repeat("\n", 65000), 4063},
		{"word then spaces", "hello" + strings.Repeat(" ", 65000) + "world", 0},
		{"word then newlines", "hello" + strings.Repeat("\n", 65000), 0},
		{"space newline", strings.Repeat(" \n", 32000), 16000},
		{"punctuation then newlines", "!" + strings.Repeat("\n", 65000), 0},
		{"slash newline", strings.Repeat("/\n", 32000), 0},
		{"ideographic spaces", strings.Repeat(" \u3000", 16000), 0},
		{"letters", strings.Repeat("x", 65000), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recordingEncoder{enc: e.enc}
			n := count(rec, tt.s)
			if rec.maxWS > maxRunBytes || rec.maxSame > maxRunBytes {
				t.Fatalf("tokenizer given a run of %d whitespace / %d equal bytes", rec.maxWS, rec.maxSame)
			}
			if tt.want != 0 && n != tt.want || tt.want == 0 && n < 1 {
				t.Fatalf("count = %d, want %d", n, tt.want)
			}
		})
	}
}

func TestCountExactWithoutLongStretches(t *testing.T) {
	// Cutting at cutBefore must not change the count of ordinary text.
	e := NewEstimator()
	e.Warm()
	for _, s := range []string{
		"Hello, world! It's a test.\nNew line\there  and   spaces\r\n\r\n",
		"def f(x):\n    return x**2  # comment\n\n\nprint(f(3))",
		"naïve café — 日本語のテキスト, mixed with English words and 12345 numbers.",
		"a/b/c\n/d\n\n!\n?  x's y'LL z'Re",
	} {
		if got, want := count(e.enc, s), len(e.enc.EncodeOrdinary(s)); got != want {
			t.Errorf("count(%q) = %d, tiktoken says %d", s, got, want)
		}
	}
}

// FuzzCount: counting is exact when no stretch is long, never slow, and
// never negative.
func FuzzCount(f *testing.F) {
	for _, s := range []string{"hello world", "a\n\n\nb", "x's  y\t\tz", "!\n\n/\n", " \u3000 \u3000", "日本語 text"} {
		f.Add(s)
	}
	e := NewEstimator()
	e.Warm()
	f.Fuzz(func(t *testing.T, s string) {
		start := time.Now()
		n := e.Count(s)
		if d, limit := time.Since(start), time.Second*time.Duration(1+len(s)>>20); d > limit {
			t.Fatalf("Count of %d bytes took %v", len(s), d)
		}
		if n < 0 {
			t.Fatalf("Count = %d", n)
		}
		long := false
		for i, st := 1, 0; i <= len(s); i++ {
			if i == len(s) || cutBefore(s, i) {
				long = long || i-st > maxRunBytes
				st = i
			}
		}
		if !long && len(s) <= sampleBytes {
			if want := len(e.enc.EncodeOrdinary(s)); n != want {
				t.Fatalf("Count(%q) = %d, tiktoken says %d", s, n, want)
			}
		}
	})
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
	for _, s := range []string{`{"model":"m","messages":[{"role":"user","content":"hi"}]}`, `{"prompt":["a","b"]}`, `{"input":[{"text":"x"}]}`, `{"messages":[{"content":[{"type":"text","text":"a"}]}]}`, `{`} {
		f.Add([]byte(s))
	}
	e := NewEstimator()
	e.Warm()
	f.Fuzz(func(t *testing.T, b []byte) {
		start := time.Now()
		if n := e.PromptTokens(b); n < 0 {
			t.Fatalf("PromptTokens = %d", n)
		}
		if d, limit := time.Since(start), time.Second*time.Duration(1+len(b)>>20); d > limit {
			t.Fatalf("PromptTokens of %d bytes took %v", len(b), d)
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

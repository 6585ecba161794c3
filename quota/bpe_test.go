package quota

import (
	"encoding/json"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	tiktoken "github.com/pkoukk/tiktoken-go"
	tiktokenloader "github.com/pkoukk/tiktoken-go-loader"
)

// The oracle: tiktoken-go's own encoder (regexp2 pre-tokenizer, its
// byte-pair merge), which the Estimator used before it had its own
// counter. Built once per test binary: loading takes a while.
var oracles = sync.OnceValues(func() (map[bool]*tiktoken.Tiktoken, error) {
	out := map[bool]*tiktoken.Tiktoken{}
	for _, cl := range []bool{false, true} {
		file, pat, name := "o200k_base.tiktoken", o200kPattern, tiktoken.MODEL_O200K_BASE
		if cl {
			file, pat, name = "cl100k_base.tiktoken", cl100kPattern, tiktoken.MODEL_CL100K_BASE
		}
		ranks, err := tiktokenloader.NewOfflineLoader().LoadTiktokenBpe(file)
		if err != nil {
			return nil, err
		}
		special := map[string]int{tiktoken.ENDOFTEXT: 199999}
		bpe, err := tiktoken.NewCoreBPE(ranks, special, pat)
		if err != nil {
			return nil, err
		}
		enc := &tiktoken.Encoding{Name: name, PatStr: pat, MergeableRanks: ranks, SpecialTokens: special}
		out[cl] = tiktoken.NewTiktoken(bpe, enc, nil)
	}
	return out, nil
})

func oracleCount(tb testing.TB, cl bool, s string) int {
	tb.Helper()
	o, err := oracles()
	if err != nil {
		tb.Fatal(err)
	}
	return len(o[cl].EncodeOrdinary(s))
}

// models naming each encoding.
var encodingModels = map[bool]string{false: "gpt-4o", true: "gpt-4"}

// tricky are texts that exercise each branch of the two patterns.
var tricky = []string{
	"", "a", " ", "hello world", "Hello, World!",
	// contractions, both cases, and near misses
	"I'm you're we've they'll she'd it's don't", "I'M YOU'RE WE'VE THEY'LL SHE'D IT'S DON'T",
	"it'S we'Re x'vE y'Ll z'D", "'s 't 're 've 'm 'll 'd", "'S'T'RE'VE'M'LL'D", "'x 'r 'v 'l '", "a'", "'",
	"rock'n'roll", "o'clock O'Neil McDonald's", "Word's", "ÉCOLE'S", "naïve'll",
	// letters of every case class
	"CamelCaseWord HTTPServer getHTTPResponse iPhone", "ǅungla ǈj ǋ", "ʰʱʲ ˆ", "中文字符 かなカナ", "ÀÉÎÕÜ àéîõü",
	"ΑΒΓ αβγ Ωmega", "Привет МИР", "straße STRASSE",
	// marks
	"e\u0301 a\u0308 \u0301\u0301A \u0301abc", "\u0301", "!\u0301x", "A\u0301B\u0301c", "क्षत्रिय हिन्दी", "ไทย", "مرحبا بالعالم",
	// numbers
	"1 12 123 1234 12345 1234567890", "３．１４ １２３４", "Ⅻ ½ ¾ ²³", "v1.2.3 0x1F 1e10 -42", "٣٤٥٦",
	// whitespace
	"a  b   c    d", "a\tb\t\tc", "\r\n", "a\r\nb\r\n\r\nc", "line\n\n\nline", "  \n  \n  x", " \u00a0 \u00a0x",
	"\u3000\u3000x", "x\u2028y\u0085z", "\v\f x", "   ", "\n", " \n ", "\t\n\t", "x \n", "trailing   ",
	// punctuation, slashes, newlines after punctuation
	"!!! ??? ...", "a/b/c /d/ //", "!\n\n/\n", "foo();\n\tbar();\r\n", "<html><body>", "{\"a\": [1, 2]}",
	" ?x", " !", "@@ -1,2 +1,3 @@", "https://example.com/path?q=1&r=2#frag", "--flag=value", "C:\\Windows\\",
	// symbols, emoji
	"👍 👍🏽 👨‍👩‍👧 🇫🇷", "€100 £5 ¥", "©®™", "→ ⇒ ∀x∈ℝ", "\u200b\u200d\ufeff",
	// invalid UTF-8
	"\xff", "\xff\xfe", "a\xffb", "\xed\xa0\x80", "\xe4\xb8", "caf\xe9", "\xc0\xaf", "\xef\xbf\xbd",
	// control characters
	"\x00\x01\x1b[0m", "a\x7fb",
}

// alphabet has runes of every class the patterns name.
var alphabet = []rune("aZqQ'sStTrReEvVmMlLdD  \t\n\r\u00a0\u3000\u2028\u0085\v0159０Ⅻ½!?./-_()\"'#@\u0301\u0308\u093fǅʰ中かÀé日Ωж😀\U0001F3FD\u200d€\x00\U00010400\U0001D7D8")

func randomText(r *rand.Rand) string {
	var b strings.Builder
	for n := r.IntN(40); n > 0; n-- {
		if r.IntN(20) == 0 {
			b.WriteByte(byte(0x80 + r.IntN(0x80))) // a stray byte
			continue
		}
		b.WriteRune(alphabet[r.IntN(len(alphabet))])
	}
	return b.String()
}

func TestCountMatchesTiktoken(t *testing.T) {
	e := NewEstimator()
	texts := append([]string(nil), tricky...)
	texts = append(texts, benchProse, benchCode, benchJSON, benchCJK, string(benchChat(4<<10)))
	r := rand.New(rand.NewPCG(1, 2))
	for range 3000 {
		texts = append(texts, randomText(r))
	}
	for _, cl := range []bool{false, true} {
		model := encodingModels[cl]
		for _, s := range texts {
			if got, want := e.CountFor(model, s), oracleCount(t, cl, s); got != want {
				t.Errorf("%s: CountFor(%q) = %d, tiktoken says %d", model, s, got, want)
			}
		}
	}
}

func TestCountLongPiecesMatchTiktoken(t *testing.T) {
	// Pieces longer than smallPiece go through mergeHeap; tiktoken-go is
	// quadratic on them, so they stay a few KiB here.
	e := NewEstimator()
	r := rand.New(rand.NewPCG(3, 4))
	letters := func(n int, set string) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = set[r.IntN(len(set))]
		}
		return string(b)
	}
	for _, s := range []string{
		strings.Repeat("x", 3000), strings.Repeat("ab", 1500), strings.Repeat(" ", 3000), strings.Repeat("\n", 2000),
		strings.Repeat(" \n", 1000), strings.Repeat("\t ", 1000) + "x", strings.Repeat("!", 2000), strings.Repeat("/\n", 1000),
		"word" + strings.Repeat(" ", 2000) + "word", strings.Repeat(" \u3000", 700),
		letters(3000, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+/"), // base64
		letters(2000, "abcdefghijklmnopqrstuvwxyz"), letters(2000, "ABCDEFGHIJ"), letters(2000, "!@#$%^&*()[]{}<>"),
		strings.Repeat("日本語", 500), strings.Repeat("e\u0301", 500), strings.Repeat("😀", 300),
	} {
		for _, cl := range []bool{false, true} {
			if got, want := e.CountFor(encodingModels[cl], s), oracleCount(t, cl, s); got != want {
				t.Errorf("%s: CountFor(%.40q… %d bytes) = %d, tiktoken says %d", encodingModels[cl], s, len(s), got, want)
			}
		}
	}
}

func TestMergeHeapMatchesMergeSmall(t *testing.T) {
	e := NewEstimator()
	enc := e.encoding("")
	r := rand.New(rand.NewPCG(5, 6))
	sc := new(mergeScratch)
	for range 20000 {
		b := make([]byte, 2+r.IntN(smallPiece-1))
		set := []string{"ab ", "xyz", "aaaa", "0123456789", "ab\x00\xff", "the quick"}[r.IntN(6)]
		for i := range b {
			b[i] = set[r.IntN(len(set))]
		}
		if small, heap := enc.mergeSmall(string(b)), enc.mergeHeap(string(b), sc); small != heap {
			t.Fatalf("%q: mergeSmall %d, mergeHeap %d", b, small, heap)
		}
	}
}

// FuzzCountMatchesTiktoken: counts equal tiktoken-go's for both
// encodings, and counting takes under a second a MiB.
func FuzzCountMatchesTiktoken(f *testing.F) {
	for _, s := range tricky {
		f.Add(s)
	}
	e := NewEstimator()
	e.Warm()
	e.WarmFor("gpt-4")
	oracleCount(f, false, "warm")
	f.Fuzz(func(t *testing.T, s string) {
		for _, cl := range []bool{false, true} {
			start := time.Now()
			n := e.CountFor(encodingModels[cl], s)
			if d, limit := time.Since(start), time.Second*time.Duration(1+len(s)>>20); d > limit {
				t.Fatalf("Count of %d bytes took %v", len(s), d)
			}
			if len(s) <= 16<<10 { // the oracle is quadratic in a piece
				if want := oracleCount(t, cl, s); n != want {
					t.Fatalf("%s: CountFor(%q) = %d, tiktoken says %d", encodingModels[cl], s, n, want)
				}
			}
		}
	})
}

func TestCountIsLinear(t *testing.T) {
	// Whitespace runs, one repeated letter and unbroken base64 were
	// quadratic in tiktoken-go (64 KiB of spaces took 3.8 s). The sample
	// (sampleBytes) is now counted exactly; these finish in milliseconds.
	e := NewEstimator()
	e.WarmFor("gpt-4")
	for _, s := range []string{
		strings.Repeat(" ", sampleBytes), strings.Repeat("\n", sampleBytes), strings.Repeat(" \n", sampleBytes/2),
		strings.Repeat("x", sampleBytes), strings.Repeat("QUJD", sampleBytes/4), strings.Repeat("A\u0301", sampleBytes/3),
		strings.Repeat("\u0301", sampleBytes/2), strings.Repeat("!", sampleBytes), strings.Repeat("1", sampleBytes),
	} {
		for _, model := range []string{"", "gpt-4"} {
			done := make(chan int, 1)
			go func() { done <- e.CountFor(model, s) }()
			select {
			case n := <-done:
				if n < 1 {
					t.Fatalf("Count(%.20q…) = %d", s, n)
				}
			case <-time.After(30 * time.Second): // a liveness guard, not a timing assertion
				t.Fatalf("Count(%.20q…) did not finish", s)
			}
		}
	}
}

func TestUsesCl100k(t *testing.T) {
	for model, want := range map[string]bool{
		"gpt-4": true, "gpt-4-turbo": true, "gpt-4-0613": true, "GPT-4-32k": true, "gpt-3.5-turbo": true,
		"gpt-35-turbo": true, "text-embedding-3-small": true, "text-embedding-ada-002": true, "openai/gpt-4": true,
		"azure/gpt-35-turbo-16k": true, "ft:gpt-3.5-turbo:acme::abc": true, "davinci-002": true,
		"gpt-4o": false, "gpt-4o-mini": false, "gpt-4.1": false, "gpt-4.5-preview": false, "gpt-5": false, "o1": false,
		"o3-mini": false, "o4-mini": false, "chatgpt-4o-latest": false, "ft:gpt-4o-mini:acme::x": false,
		"claude-sonnet-4-5": false, "gemini-2.5-pro": false, "llama-3.1-70b": false, "mistral-large": false, "": false,
	} {
		if got := usesCl100k(model); got != want {
			t.Errorf("usesCl100k(%q) = %v", model, got)
		}
	}
}

func TestEncodingsLoadOnceEach(t *testing.T) {
	e := NewEstimator()
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() { e.CountFor([]string{"gpt-4o", "gpt-4", "claude-3"}[i%3], "hello") })
	}
	wg.Wait()
	a, b := e.encoding("gpt-4o"), e.encoding("gpt-4")
	if a == nil || b == nil || a == b || !b.cl100k || a.cl100k || a.classes != b.classes {
		t.Fatalf("encodings: %p %p", a, b)
	}
	if e.encoding("") != a || e.encoding("gpt-3.5-turbo") != b {
		t.Fatal("an encoding was loaded twice")
	}
	// "hello world" is 2 tokens in both; "  indented" differs.
	if e.CountFor("gpt-4", "hello world") != 2 || e.CountFor("gpt-4o", "hello world") != 2 {
		t.Fatal("hello world is not 2 tokens")
	}
}

func TestPromptTokensForCountsPerMessage(t *testing.T) {
	e := NewEstimator()
	sys := strings.Repeat("You are a helpful assistant. ", 20)
	user := "What's the weather in Paris?\n\"Quoted\" \\ and tab\t, é, \u00e9, 😀."
	body, _ := json.Marshal(map[string]any{"model": "gpt-4", "messages": []map[string]string{
		{"role": "system", "content": sys}, {"role": "user", "content": user, "name": "bob"},
	}})
	for _, model := range []string{"gpt-4", "gpt-4o"} {
		want := 3 + e.CountFor(model, "system") + e.CountFor(model, sys) +
			3 + e.CountFor(model, "user") + 1 + e.CountFor(model, "bob") + e.CountFor(model, user) + 3
		for range 3 { // cold, then from the cache
			if got := e.PromptTokensFor(model, body); got != want {
				t.Fatalf("%s: PromptTokensFor = %d, want %d", model, got, want)
			}
		}
	}
}

func TestPromptTokensCacheIsTransparent(t *testing.T) {
	// The same bodies give the same counts with and without the cache, in
	// any order, and concurrently.
	cached, plain := NewEstimator(), &Estimator{}
	var bodies [][]byte
	for i := range 20 {
		bodies = append(bodies, conversation(i+1))
	}
	bodies = append(bodies, benchChat(8<<10), benchChat(100<<10))
	want := make([]int, len(bodies))
	for i, b := range bodies {
		want[i] = plain.PromptTokensFor("gpt-4o", b)
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(g), 7))
			for range 60 {
				i := r.IntN(len(bodies))
				if got := cached.PromptTokensFor("gpt-4o", bodies[i]); got != want[i] {
					t.Errorf("body %d: %d with the cache, %d without", i, got, want[i])
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestCountCache(t *testing.T) {
	c := newCountCache()
	other := newCountCache()
	s := []byte(strings.Repeat("system prompt ", 30))
	if c.key(s, 1) == other.key(s, 1) {
		t.Fatal("two caches hash alike: the seed is not random")
	}
	if c.key(s, 1) == c.key(s, 2) {
		t.Fatal("encodings share keys")
	}
	h := c.key(s, 1)
	c.put(h, len(s), 77)
	if n, ok := c.get(h, len(s)); !ok || n != 77 {
		t.Fatalf("get = %d, %v", n, ok)
	}
	if _, ok := c.get(h, len(s)+1); ok {
		t.Fatal("a hit for another length")
	}
	// Every key has two different slots.
	pr := rand.New(rand.NewPCG(1, 2))
	for range 100000 {
		if _, i, j := c.place(pr.Uint64()); i == j || i >= cacheSlots || j >= cacheSlots {
			t.Fatalf("slots %d and %d", i, j)
		}
	}
	// Far more keys than slots: the cache stays its size, and a key in
	// steady use survives a stream of new ones.
	r := rand.New(rand.NewPCG(8, 9))
	for i := range 100000 {
		c.put(r.Uint64(), 300, i)
		if i%64 == 0 {
			c.get(h, len(s))
		}
	}
	if n, ok := c.get(h, len(s)); !ok || n != 77 {
		t.Errorf("a key in steady use was evicted")
	}
	entries := 0
	for i := range c.shards {
		for _, e := range c.shards[i].slots {
			if e.size != 0 {
				entries++
			}
		}
	}
	if entries > cacheShards*cacheSlots || entries < cacheShards*cacheSlots*9/10 {
		t.Errorf("%d entries after 100000 puts", entries)
	}
}

func BenchmarkPromptTokensCachedParallel(b *testing.B) {
	// Concurrent requests of one conversation: the cache's shards are
	// locked for a few loads each.
	e := NewEstimator()
	body := conversation(20)
	e.PromptTokens(body)
	b.SetBytes(int64(len(body)))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			e.PromptTokens(body)
		}
	})
}

// conversation is a chat body of turns turns, each the same as in every
// longer conversation: the request a client sends at its turn-th turn.
func conversation(turns int) []byte {
	type msg struct {
		Role    string `json:"role"`
		Content string `json:"content"`
	}
	parts := []string{benchProse, benchCode, benchJSON, benchCJK}
	msgs := []msg{{"system", "You are a careful assistant. Answer briefly, cite sources, and format code in fenced blocks.\n" + benchProse}}
	for i := range turns {
		msgs = append(msgs, msg{"user", "Question " + string(rune('A'+i%26)) + ": " + parts[i%len(parts)]})
		if i < turns-1 {
			msgs = append(msgs, msg{"assistant", "Answer: " + parts[(i+1)%len(parts)]})
		}
	}
	b, _ := json.Marshal(map[string]any{"model": "gpt-4o", "messages": msgs})
	return b
}

func TestAppendUnescaped(t *testing.T) {
	for _, s := range []string{
		`plain`, `a\"b`, `\\`, `\/`, `\b\f\n\r\t`, `\u00e9\u4e2d`, `\ud83d\ude00`, `\ud83d`, `\ude00x`, `\ud83dx\ude00`,
		`\ud83d\u0041`, `\uD83D\uDE00`, `tail\u00`, `bad\q`, `end\`, "raw é 中 \xff", "ctl\x01\\n", `q"\n`,
	} {
		got, ok := appendUnescaped(nil, []byte(s))
		var want string
		err := json.Unmarshal([]byte(`"`+s+`"`), &want)
		if ok != (err == nil) || ok && string(got) != want && utf8.ValidString(s) {
			t.Errorf("appendUnescaped(%q) = %q, %v; encoding/json: %q, %v", s, got, ok, want, err)
		}
	}
}

func FuzzAppendUnescaped(f *testing.F) {
	for _, s := range []string{`a\"b`, `\ud83d\ude00`, `\ud83d`, `\u00e9`, `x\\y`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var want string
		if !utf8.ValidString(s) || json.Unmarshal([]byte(`"`+s+`"`), &want) != nil {
			appendUnescaped(nil, []byte(s)) // must not panic
			return
		}
		if got, ok := appendUnescaped(nil, []byte(s)); !ok || string(got) != want {
			t.Fatalf("appendUnescaped(%q) = %q, %v; encoding/json: %q", s, got, ok, want)
		}
	})
}

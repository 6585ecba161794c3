package quota

import (
	"encoding/base64"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	tiktokenloader "github.com/pkoukk/tiktoken-go-loader"
	tiktokenassets "github.com/pkoukk/tiktoken-go-loader/assets"
)

// TestRankTableMatchesLoader checks the table against tiktoken-go-loader's
// map for both encodings: every token has its rank, and sequences that are
// no token (a token with a byte added, changed or cut) have none unless the
// map has them.
func TestRankTableMatchesLoader(t *testing.T) {
	for _, file := range []string{"o200k_base.tiktoken", "cl100k_base.tiktoken"} {
		t.Run(file, func(t *testing.T) {
			want, err := tiktokenloader.NewOfflineLoader().LoadTiktokenBpe(file)
			if err != nil {
				t.Fatal(err)
			}
			data, err := tiktokenassets.Assets.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			tab, err := parseRanks(data)
			if err != nil {
				t.Fatal(err)
			}
			if tab.n != len(want) {
				t.Fatalf("%d tokens, want %d", tab.n, len(want))
			}
			maxLen := 0
			for tok, r := range want {
				maxLen = max(maxLen, len(tok))
				if got := tab.rank(tok); got != int32(r) {
					t.Fatalf("rank(%q) = %d, want %d", tok, got, r)
				}
				for _, probe := range []string{tok + "x", tok[:len(tok)-1], "\x00" + tok, tok[1:]} {
					r, ok := want[probe]
					if !ok {
						r = -1
					}
					if got := tab.rank(probe); got != int32(r) {
						t.Fatalf("rank(%q) = %d, want %d", probe, got, r)
					}
				}
			}
			if tab.maxLen != maxLen {
				t.Errorf("maxLen = %d, want %d", tab.maxLen, maxLen)
			}
			seen := 0
			tab.each(func(tok string, r int) {
				seen++
				if want[tok] != r {
					t.Fatalf("each: %q has rank %d, want %d", tok, r, want[tok])
				}
			})
			if seen != len(want) {
				t.Errorf("each visited %d tokens, want %d", seen, len(want))
			}
		})
	}
}

// TestParseRanksRejects checks the parser's refusals (abuse beside use):
// a line without rank, an unordered or repeated rank, a rank out of range,
// bad base64, an empty token, a token listed twice. A gap in the ranks is
// accepted and has no token.
func TestParseRanksRejects(t *testing.T) {
	for _, bad := range []string{
		"YQ==\n", "YQ== 1\nYg== 0\n", "YQ== 0\nYg== 0\n", "YQ== 99999999\n", "eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eA== 0\n", "YQ== -1\n",
		"!!!! 0\n", " 0\n", "YQ== 0\nYQ== 1\n", "YQ== x\n",
	} {
		if _, err := parseRanks([]byte(bad)); err == nil {
			t.Errorf("parseRanks(%q) accepted", bad)
		}
	}
	tab, err := parseRanks([]byte("YQ== 0\nYmM= 5\n\nYw== 6")) // a, bc, c; no final newline
	if err != nil {
		t.Fatal(err)
	}
	for s, want := range map[string]int32{"a": 0, "bc": 5, "c": 6, "b": -1, "": -1, "abc": -1} {
		if got := tab.rank(s); got != want {
			t.Errorf("rank(%q) = %d, want %d", s, got, want)
		}
	}
}

// TestParseRanksLinear: a long file of long lines parses in time linear in
// its size (a million bytes, well under a second even under -race).
func TestParseRanksLinear(t *testing.T) {
	var b strings.Builder
	for i := range 20000 {
		tok := fmt.Sprintf("token %d %s", i, strings.Repeat("x", 40))
		fmt.Fprintf(&b, "%s %d\n", base64.StdEncoding.EncodeToString([]byte(tok)), i)
	}
	start := time.Now()
	tab, err := parseRanks([]byte(b.String()))
	if err != nil || tab.n != 20000 {
		t.Fatalf("parseRanks: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("parseRanks took %v", d)
	}
}

// BenchmarkRank: lookups of long pieces (beyond shortRanks), hits and
// misses, as the merge makes them.
func BenchmarkRank(b *testing.B) {
	e := NewEstimator().encoding("")
	var hits, misses []string
	e.ranks.each(func(tok string, _ int) {
		if len(tok) > shortMax && len(hits) < 4096 {
			hits = append(hits, tok)
			misses = append(misses, tok+"q")
		}
	})
	for _, c := range []struct {
		name string
		s    []string
	}{{"hit", hits}, {"miss", misses}} {
		b.Run(c.name, func(b *testing.B) {
			i := 0
			for b.Loop() {
				e.rank(c.s[i&4095])
				i++
			}
		})
	}
}

// BenchmarkGCWithTables: one op is a full collection (runtime.GC) of a
// heap holding both encodings warmed, the tables the gateway keeps for
// its life. It reports the heap in use after the collection (heap-MB) and
// the objects the collector marks (objects).
func BenchmarkGCWithTables(b *testing.B) {
	e := NewEstimator()
	e.Warm()
	e.WarmFor("gpt-4")
	runtime.GC()
	var ms runtime.MemStats
	b.ResetTimer()
	for b.Loop() {
		runtime.GC()
	}
	b.StopTimer()
	runtime.ReadMemStats(&ms)
	b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "heap-MB")
	b.ReportMetric(float64(ms.HeapObjects), "objects")
	runtime.KeepAlive(e)
}

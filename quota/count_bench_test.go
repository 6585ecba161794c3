package quota

import (
	"encoding/json"
	"fmt"
	"runtime"
	"strings"
	"testing"
)

// Benchmark corpora: realistic prompt text of each kind, about 8 KiB each
// (built deterministically, so figures compare across runs and commits).

const benchProse = `The committee met on Tuesday to review the proposal for the new library wing. ` +
	`After a long discussion about costs, several members argued that the project should be delayed until next spring, ` +
	`when the city's budget would be clearer. Others weren't convinced: they'd seen three delays already, and they said ` +
	`the building's roof couldn't survive another winter. "We've waited long enough," said Margaret Ellison, who has chaired ` +
	`the group since 2019. In the end, the vote was 7 to 4 in favour of starting construction in March, with a review of ` +
	`spending every quarter. The architects will present revised drawings at the next meeting, on the 14th.` + "\n\n"

const benchCode = `package main

import (
	"fmt"
	"os"
	"strings"
)

// wordFreq counts how often each word occurs in the named files.
func wordFreq(paths []string) (map[string]int, error) {
	counts := make(map[string]int)
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", p, err)
		}
		for _, w := range strings.Fields(string(data)) {
			counts[strings.ToLower(w)]++
		}
	}
	return counts, nil
}

func main() {
	counts, err := wordFreq(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	for w, n := range counts {
		if n > 10 {
			fmt.Printf("%-20s %6d\n", w, n)
		}
	}
}
`

const benchJSON = `{"type":"function","function":{"name":"get_weather","description":"Get the current weather for a city.",` +
	`"parameters":{"type":"object","properties":{"city":{"type":"string","description":"City name, e.g. Paris"},` +
	`"unit":{"type":"string","enum":["celsius","fahrenheit"]},"days":{"type":"integer","minimum":1,"maximum":14}},` +
	`"required":["city"]}},"result":{"temperature":21.5,"humidity":0.63,"wind_kph":14,"conditions":"partly cloudy",` +
	`"forecast":[{"day":"2024-06-01","high":24,"low":15},{"day":"2024-06-02","high":22,"low":14}]}}` + "\n"

const benchCJK = `人工智能技术的快速发展正在深刻改变我们的生活方式和工作方式。从智能手机上的语音助手，到自动驾驶汽车，` +
	`再到医疗诊断系统，人工智能已经渗透到社会的各个领域。然而，这项技术也带来了许多新的挑战，例如隐私保护、` +
	`就业结构的变化以及算法的公平性问題。東京の研究者たちは、新しい言語モデルの開発に取り組んでおり、` +
	`日本語の自然な文章を生成できるようになった。한국어 자연어 처리 연구도 활발하게 진행되고 있습니다。` + "\n"

// repeatTo repeats s up to about n bytes.
func repeatTo(s string, n int) string { return strings.Repeat(s, max(1, n/len(s))) }

// benchChat builds an OpenAI chat body of about size bytes: a system
// prompt, then alternating user and assistant turns mixing prose, code and
// JSON.
func benchChat(size int) []byte {
	type msg struct {
		Role    string `json:"role"`
		Content string `json:"content"`
	}
	parts := []string{benchProse, benchCode, benchJSON, benchProse[:300] + benchCJK[:200]}
	msgs := []msg{{"system", "You are a careful assistant. Answer briefly, cite sources, and format code in fenced blocks.\n" + benchProse}}
	n := 0
	for i := 0; n < size; i++ {
		role := "user"
		if i%2 == 1 {
			role = "assistant"
		}
		c := fmt.Sprintf("Turn %d: %s", i, parts[i%len(parts)])
		msgs = append(msgs, msg{role, c})
		n += len(c) + 40
	}
	b, _ := json.Marshal(map[string]any{"model": "gpt-4o", "messages": msgs})
	return b
}

// benchAlloc runs fn b.N times and reports tokens/s and the bytes and
// allocations per KiB of input.
func benchAlloc(b *testing.B, size int, fn func() int) {
	b.Helper()
	tokens := fn()
	b.SetBytes(int64(size))
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	b.ResetTimer()
	for b.Loop() {
		fn()
	}
	b.StopTimer()
	runtime.ReadMemStats(&after)
	kib := float64(size) / 1024
	ops := float64(b.N)
	b.ReportMetric(float64(tokens)*ops/b.Elapsed().Seconds(), "tokens/s")
	b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/ops/kib, "B/KiB")
	b.ReportMetric(float64(after.Mallocs-before.Mallocs)/ops/kib, "allocs/KiB")
}

// benchCorpora are the texts BenchmarkCountCorpus counts.
var benchCorpora = []struct{ name, text string }{
	{"prose", repeatTo(benchProse, 8<<10)},
	{"code", repeatTo(benchCode, 8<<10)},
	{"json", repeatTo(benchJSON, 8<<10)},
	{"cjk", repeatTo(benchCJK, 8<<10)},
	{"sentence", "The quick brown fox jumps over the lazy dog, again and again."},
}

func BenchmarkCountCorpus(b *testing.B) {
	e := NewEstimator()
	e.Warm()
	for _, c := range benchCorpora {
		b.Run(c.name, func(b *testing.B) {
			benchAlloc(b, len(c.text), func() int { return e.Count(c.text) })
		})
	}
}

// BenchmarkTiktokenGo is the same corpus through tiktoken-go's
// EncodeOrdinary (the oracle), for reference.
func BenchmarkTiktokenGo(b *testing.B) {
	o, err := oracles()
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range benchCorpora {
		b.Run(c.name, func(b *testing.B) {
			benchAlloc(b, len(c.text), func() int { return len(o[false].EncodeOrdinary(c.text)) })
		})
	}
}

// BenchmarkPromptTokensChat: chat bodies of 8 and 64 KiB, counted with no
// cache (as a new conversation is) and again (every text remembered).
func BenchmarkPromptTokensChat(b *testing.B) {
	for _, size := range []int{8 << 10, 64 << 10} {
		body := benchChat(size)
		b.Run(fmt.Sprintf("%dKiB", size>>10), func(b *testing.B) {
			e := &Estimator{} // no cache
			e.Warm()
			benchAlloc(b, len(body), func() int { return e.PromptTokens(body) })
		})
		b.Run(fmt.Sprintf("%dKiB_cached", size>>10), func(b *testing.B) {
			e := NewEstimator()
			e.Warm()
			benchAlloc(b, len(body), func() int { return e.PromptTokens(body) })
		})
	}
}

// BenchmarkConversation20: one op is a 20-turn conversation, that is the
// 20 requests its client sends, each repeating the earlier turns (about
// 90 KiB of bodies in all, 18 KiB the last). With the cache, each request
// counts only its new turn; the cache starts empty in each op.
func BenchmarkConversation20(b *testing.B) {
	var bodies [][]byte
	size := 0
	for i := range 20 {
		bodies = append(bodies, conversation(i+1))
		size += len(bodies[i])
	}
	for _, cached := range []bool{false, true} {
		name := "nocache"
		if cached {
			name = "cache"
		}
		b.Run(name, func(b *testing.B) {
			e := NewEstimator()
			e.Warm()
			if !cached {
				e.cache = nil
			}
			tokens := 0
			for _, body := range bodies {
				tokens += e.PromptTokens(body)
			}
			b.SetBytes(int64(size))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if cached {
					b.StopTimer()
					e.cache = newCountCache()
					b.StartTimer()
				}
				for _, body := range bodies {
					e.PromptTokens(body)
				}
			}
			b.ReportMetric(float64(tokens)*float64(b.N)/b.Elapsed().Seconds(), "tokens/s")
		})
	}
}

package quota

import (
	"encoding/json"
	"strings"
	"sync"
	"unicode/utf8"

	tiktoken "github.com/pkoukk/tiktoken-go"
	tiktokenloader "github.com/pkoukk/tiktoken-go-loader"
)

// Estimator counts tokens with tiktoken's BPE ranks, which are embedded in
// the binary (no network). Encodings are loaded on first use. It is safe for
// concurrent use.
type Estimator struct {
	once sync.Once
	enc  *tiktoken.Tiktoken
	err  error
}

// NewEstimator returns an Estimator using o200k_base, the encoding of the
// GPT-4o family; for other models it is an estimate, which is all a
// fallback count can be.
func NewEstimator() *Estimator { return &Estimator{} }

// o200kPattern is o200k_base's pre-tokenizer, as tiktoken defines it.
const o200kPattern = `[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?` + "|" +
	`[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?` + "|" +
	`\p{N}{1,3}` + "|" +
	` ?[^\s\p{L}\p{N}]+[\r\n/]*` + "|" +
	`\s*[\r\n]+` + "|" +
	`\s+(?!\S)` + "|" +
	`\s+`

// load builds the o200k_base encoding from the ranks embedded by
// tiktoken-go-loader. It does not go through tiktoken.GetEncoding, whose
// loader and cache are package globals of tiktoken-go.
func (e *Estimator) load() {
	e.once.Do(func() {
		ranks, err := tiktokenloader.NewOfflineLoader().LoadTiktokenBpe("o200k_base.tiktoken")
		if err != nil {
			e.err = err
			return
		}
		special := map[string]int{tiktoken.ENDOFTEXT: 199999, tiktoken.ENDOFPROMPT: 200018}
		bpe, err := tiktoken.NewCoreBPE(ranks, special, o200kPattern)
		if err != nil {
			e.err = err
			return
		}
		enc := &tiktoken.Encoding{Name: tiktoken.MODEL_O200K_BASE, PatStr: o200kPattern, MergeableRanks: ranks, SpecialTokens: special}
		e.enc = tiktoken.NewTiktoken(bpe, enc, map[string]any{tiktoken.ENDOFTEXT: true, tiktoken.ENDOFPROMPT: true})
	})
}

// Warm loads the encoding now, so the first estimate on the request path
// does not pay for it (about 150 ms). Safe to call from a goroutine.
func (e *Estimator) Warm() { e.load() }

// Bounds that keep counting linear. tiktoken's byte-pair merge is quadratic
// in the length of one pre-token, so a long run without whitespace (base64,
// a repeated character) is estimated at four bytes a token instead of being
// merged; and text beyond sampleBytes is extrapolated from its first
// sampleBytes. Without them a 1 MiB run of one letter takes minutes.
const (
	maxRunBytes = 128
	sampleBytes = 64 << 10
)

// Count returns the number of tokens in s. If the encoding cannot be loaded
// it falls back to one token per four bytes.
func (e *Estimator) Count(s string) int {
	if s == "" {
		return 0
	}
	e.load()
	if e.err != nil {
		return (len(s) + 3) / 4
	}
	if len(s) > sampleBytes {
		cut := sampleBytes
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		n := e.count(s[:cut])
		return int(int64(n) * int64(len(s)) / int64(cut))
	}
	return e.count(s)
}

// count tokenizes s, estimating overlong whitespace-free runs.
func (e *Estimator) count(s string) int {
	extra := 0
	var sb *strings.Builder
	last, run := 0, 0
	for i := 0; i <= len(s); i++ {
		if i < len(s) && !isSpace(s[i]) {
			run++
			continue
		}
		if run > maxRunBytes {
			if sb == nil {
				sb = &strings.Builder{}
				sb.Grow(len(s))
			}
			sb.WriteString(s[last : i-run])
			extra += (run + 3) / 4
			last = i
		}
		run = 0
	}
	if sb == nil {
		return len(e.enc.EncodeOrdinary(s))
	}
	sb.WriteString(s[last:])
	return extra + len(e.enc.EncodeOrdinary(sb.String()))
}

func isSpace(c byte) bool { return c == ' ' || c == '\n' || c == '\t' || c == '\r' }

// PromptTokens estimates the prompt tokens of an OpenAI-format request body:
// chat messages (string or text-part content), a completions prompt, or
// embeddings input. Per-message overhead follows OpenAI's published rule of
// thumb (3 tokens per message, 3 to prime the reply).
func (e *Estimator) PromptTokens(body []byte) int {
	var req struct {
		Messages []struct {
			Role    string          `json:"role"`
			Content json.RawMessage `json:"content"`
			Name    string          `json:"name"`
		} `json:"messages"`
		Prompt json.RawMessage `json:"prompt"`
		Input  json.RawMessage `json:"input"`
	}
	if json.Unmarshal(body, &req) != nil {
		return 0
	}
	var sb strings.Builder
	n := 0
	for _, m := range req.Messages {
		n += 3
		sb.WriteString(m.Role)
		sb.WriteByte(' ')
		sb.WriteString(m.Name)
		sb.WriteByte(' ')
		appendText(&sb, m.Content)
		sb.WriteByte('\n')
	}
	if len(req.Messages) > 0 {
		n += 3
	}
	appendText(&sb, req.Prompt)
	appendText(&sb, req.Input)
	return n + e.Count(sb.String())
}

// appendText appends the text found in a JSON string, an array of strings,
// or an array of content parts ({"type":"text","text":...}).
func appendText(sb *strings.Builder, raw json.RawMessage) {
	if len(raw) == 0 {
		return
	}
	switch raw[0] {
	case '"':
		var s string
		if json.Unmarshal(raw, &s) == nil {
			sb.WriteString(s)
		}
	case '[':
		var parts []json.RawMessage
		if json.Unmarshal(raw, &parts) != nil {
			return
		}
		for _, p := range parts {
			if len(p) == 0 {
				continue
			}
			switch p[0] {
			case '"':
				appendText(sb, p)
				sb.WriteByte(' ')
			case '{':
				var part struct {
					Text string `json:"text"`
				}
				if json.Unmarshal(p, &part) == nil {
					sb.WriteString(part.Text)
					sb.WriteByte(' ')
				}
			}
		}
	}
}

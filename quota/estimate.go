package quota

import (
	"bytes"
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
// in the length of one pre-token, so text is counted in stretches that no
// pre-token can span (see cutBefore), and a stretch longer than maxRunBytes
// (a run of whitespace, base64, one repeated character, text without ASCII
// spaces) is not merged whole: its leading whitespace is counted in
// maxRunBytes pieces and the rest, when long, at four bytes a token. Text
// beyond sampleBytes is extrapolated from its first sampleBytes. Without
// these bounds 64 KiB of spaces takes seconds and 1 MiB of one letter
// minutes.
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

// cutBefore reports whether no o200k pre-token spans s[i-1] and s[i]: an
// ASCII space after a printable ASCII character, or ASCII whitespace after
// an ASCII letter or digit. (Letters, digits and punctuation runs never
// take a following space, letters and digits no whitespace at all, and no
// pre-token pattern looks behind.) Text cut there counts the same in
// pieces as whole.
func cutBefore(s string, i int) bool {
	c, p := s[i], s[i-1]
	if c == ' ' {
		return p > ' ' && p < 0x7f
	}
	return isSpace(c) && (p >= 'a' && p <= 'z' || p >= 'A' && p <= 'Z' || p >= '0' && p <= '9')
}

// encoder is the part of *tiktoken.Tiktoken that counting uses.
type encoder interface {
	EncodeOrdinary(text string) []int
}

// count tokenizes s stretch by stretch (stretches end at cutBefore),
// encoding runs of ordinary stretches together and long ones with
// countLong.
func (e *Estimator) count(s string) int { return count(e.enc, s) }

func count(enc encoder, s string) int {
	n := 0
	seg, start := 0, 0 // start of the pending ordinary text; of the current stretch
	for i := 1; i <= len(s); i++ {
		if i < len(s) && !cutBefore(s, i) {
			continue
		}
		if i-start > maxRunBytes {
			if seg < start {
				n += len(enc.EncodeOrdinary(s[seg:start]))
			}
			n += countLong(enc, s[start:i])
			seg = i
		}
		start = i
	}
	if seg < len(s) {
		n += len(enc.EncodeOrdinary(s[seg:]))
	}
	return n
}

// countLong counts a stretch longer than maxRunBytes: its leading
// whitespace in pieces of maxRunBytes, the rest whole if short, else at
// four bytes a token.
func countLong(enc encoder, s string) int {
	n, w := 0, 0
	for w < len(s) && isSpace(s[w]) {
		w++
	}
	for i := 0; i < w; i += maxRunBytes {
		n += len(enc.EncodeOrdinary(s[i:min(i+maxRunBytes, w)]))
	}
	if rest := s[w:]; len(rest) <= maxRunBytes {
		n += len(enc.EncodeOrdinary(rest))
	} else {
		n += (len(rest) + 3) / 4
	}
	return n
}

func isSpace(c byte) bool { return c == ' ' || c == '\n' || c == '\t' || c == '\r' }

// PromptTokens estimates the prompt tokens of an OpenAI-format request body:
// chat messages (string or text-part content), a completions prompt, or
// embeddings input. Per-message overhead follows OpenAI's published rule of
// thumb (3 tokens per message, 3 to prime the reply). Member names match
// exactly and the last of duplicates wins, as in the upstreams' parsers
// (encoding/json's case-insensitive matching let "Content": "" hide the
// "content" the upstream reads). It is one pass over body with no
// allocation per element, and text past sampleBytes is measured, not
// copied.
func (e *Estimator) PromptTokens(body []byte) int {
	var messages, prompt, input, system []byte
	if !eachMember(body, func(name, v []byte) {
		switch {
		case nameIs(name, "system"), nameIs(name, "instructions"):
			// Anthropic's system prompt, the Responses API's instructions.
			system = v
		case nameIs(name, "messages"):
			messages = v
		case nameIs(name, "prompt"):
			prompt = v
		case nameIs(name, "input"):
			input = v
		}
	}) {
		return 0
	}
	t := &textSample{}
	n := 0
	t.text(system)
	eachElement(messages, func(m []byte) {
		var role, name, content []byte
		eachMember(m, func(k, v []byte) {
			switch {
			case nameIs(k, "role"):
				role = v
			case nameIs(k, "name"):
				name = v
			case nameIs(k, "content"):
				content = v
			}
		})
		n += 3
		t.str(role)
		t.add(" ")
		t.str(name)
		t.add(" ")
		t.text(content)
		t.add("\n")
	})
	if n > 0 {
		n += 3
	}
	t.text(prompt)
	t.text(input)
	if t.sb.Len() == 0 {
		return n
	}
	c := e.Count(t.sb.String())
	if t.more > 0 {
		c = int(int64(c) * int64(t.sb.Len()+t.more) / int64(t.sb.Len()))
	}
	return n + c
}

// textSample gathers text up to sampleBytes and measures the rest.
type textSample struct {
	sb   strings.Builder
	more int // bytes of text past the sample
}

func (t *textSample) add(s string) {
	if t.sb.Len() < sampleBytes {
		t.sb.WriteString(s)
	} else {
		t.more += len(s)
	}
}

// str adds the JSON string raw, if it is one.
func (t *textSample) str(raw []byte) {
	if len(raw) < 2 || raw[0] != '"' {
		return
	}
	if t.sb.Len() >= sampleBytes {
		t.more += len(raw) - 2
		return
	}
	if bytes.IndexByte(raw, '\\') < 0 {
		t.sb.Write(raw[1 : len(raw)-1])
		return
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		t.sb.WriteString(s)
	}
}

// text adds the text of a JSON string, an array of strings, or an array of
// content parts ({"type":"text","text":...}).
func (t *textSample) text(raw []byte) {
	if len(raw) == 0 {
		return
	}
	switch raw[0] {
	case '"':
		t.str(raw)
	case '[':
		eachElement(raw, func(p []byte) {
			switch p[0] {
			case '"':
				t.str(p)
				t.add(" ")
			case '{':
				var text []byte
				eachMember(p, func(k, v []byte) {
					if nameIs(k, "text") {
						text = v
					}
				})
				t.str(text)
				t.add(" ")
			}
		})
	}
}

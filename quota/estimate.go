package quota

import (
	"bytes"
	"strings"
	"sync"
	"unicode/utf8"
	"unsafe"

	tiktokenassets "github.com/pkoukk/tiktoken-go-loader/assets"

	"github.com/sluice-ai/sluice/wire/jsonspan"
)

// Estimator counts tokens exactly as tiktoken does (o200k_base or
// cl100k_base, with the ranks embedded in the binary: no network), with its
// own pre-tokenizer and merge (bpe.go) rather than tiktoken-go's, which is
// several times slower and allocates for every piece. Encodings are loaded
// on first use, once each. Counts of long message texts are remembered
// across requests (countCache). It is safe for concurrent use.
type Estimator struct {
	classesOnce sync.Once
	classes     *runeClasses
	o200k       lazyEncoding
	cl100k      lazyEncoding
	cache       *countCache // nil: no caching (the zero Estimator)
}

// lazyEncoding is one encoding, loaded on first use.
type lazyEncoding struct {
	once sync.Once
	enc  *bpeEncoding
	err  error
}

// NewEstimator returns an Estimator. Count and PromptTokens use
// o200k_base, the encoding of the GPT-4o family; CountFor and
// PromptTokensFor choose by model. For other vendors' models the count is
// an estimate, which is all a fallback count can be.
func NewEstimator() *Estimator { return &Estimator{cache: newCountCache()} }

// o200kPattern is o200k_base's pre-tokenizer, as tiktoken defines it;
// nextO200k implements it.
const o200kPattern = `[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?` + "|" +
	`[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?` + "|" +
	`\p{N}{1,3}` + "|" +
	` ?[^\s\p{L}\p{N}]+[\r\n/]*` + "|" +
	`\s*[\r\n]+` + "|" +
	`\s+(?!\S)` + "|" +
	`\s+`

// cl100kPattern is cl100k_base's pre-tokenizer as tiktoken-go writes it
// (tiktoken's possessive quantifiers, which Go's regexp engines lack, make
// no difference to it); nextCl100k implements it.
const cl100kPattern = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`

// encoding returns the loaded encoding for model ("" for o200k_base), or
// nil when it cannot be loaded.
func (e *Estimator) encoding(model string) *bpeEncoding {
	l, file, cl := &e.o200k, "o200k_base.tiktoken", false
	if usesCl100k(model) {
		l, file, cl = &e.cl100k, "cl100k_base.tiktoken", true
	}
	l.once.Do(func() {
		e.classesOnce.Do(func() { e.classes = newRuneClasses() })
		// Not through tiktoken.GetEncoding, whose loader and cache are
		// package globals of tiktoken-go, nor through the loader's
		// map[string]int: parseRanks reads the embedded file into a
		// table with no pointers for the collector to scan.
		data, err := tiktokenassets.Assets.ReadFile(file)
		if err != nil {
			l.err = err
			return
		}
		ranks, err := parseRanks(data)
		if err != nil {
			l.err = err
			return
		}
		l.enc = newBPEEncoding(ranks, e.classes, cl)
	})
	return l.enc
}

// usesCl100k reports whether model is of a family tokenized with
// cl100k_base: GPT-4 (not 4o, 4.1, 4.5), GPT-3.5, the text-embedding-3 and
// ada-002 embeddings, davinci-002 and babbage-002 — as tiktoken's model
// table has them. A provider prefix ("openai/", "azure/") and a fine-tune
// prefix ("ft:") are ignored, and so is case. Everything else, including
// other vendors' models, is counted with o200k_base.
func usesCl100k(model string) bool {
	if model == "" {
		return false
	}
	if i := strings.LastIndexByte(model, '/'); i >= 0 {
		model = model[i+1:]
	}
	model = strings.TrimPrefix(strings.ToLower(model), "ft:")
	switch {
	case model == "gpt-4", strings.HasPrefix(model, "gpt-4-"),
		strings.HasPrefix(model, "gpt-3.5"), strings.HasPrefix(model, "gpt-35"),
		strings.HasPrefix(model, "text-embedding-3"), strings.HasPrefix(model, "text-embedding-ada"),
		strings.HasPrefix(model, "davinci-002"), strings.HasPrefix(model, "babbage-002"):
		return true
	}
	return false
}

// Warm loads o200k_base now, so the first estimate on the request path
// does not pay for it (0.1–0.25 s: the ranks are decoded and indexed).
// Safe to call from a goroutine.
func (e *Estimator) Warm() { e.encoding("") }

// WarmFor loads the encoding of model now.
func (e *Estimator) WarmFor(model string) { e.encoding(model) }

// sampleBytes bounds the text tokenized per call: text beyond it is
// extrapolated from the tokens of the first sampleBytes. Counting is
// linear (the pre-tokenizer is one forward scan, a merge of n bytes
// O(n log n)), so this bounds time per request, not a blow-up.
const sampleBytes = 64 << 10

// Count returns the number of o200k_base tokens in s (of its first
// sampleBytes, extrapolated to the rest). If the encoding cannot be loaded
// it falls back to one token per four bytes.
func (e *Estimator) Count(s string) int { return e.CountFor("", s) }

// CountFor is Count with the encoding of model (see usesCl100k).
func (e *Estimator) CountFor(model, s string) int {
	if s == "" {
		return 0
	}
	return countWith(e.encoding(model), s)
}

func countWith(enc *bpeEncoding, s string) int {
	if enc == nil {
		return (len(s) + 3) / 4
	}
	if len(s) > sampleBytes {
		cut := sampleBytes
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		n := enc.count(s[:cut])
		return int(int64(n) * int64(len(s)) / int64(cut))
	}
	return enc.count(s)
}

// PromptTokens estimates the prompt tokens of a request body in o200k_base
// tokens; PromptTokensFor with no model.
func (e *Estimator) PromptTokens(body []byte) int { return e.PromptTokensFor("", body) }

// PromptTokensFor estimates the prompt tokens of a request body for model
// (whose family chooses the encoding, see usesCl100k): OpenAI chat messages
// (string or text-part content), a completions prompt, embeddings input,
// Anthropic's system prompt, the Responses API's instructions and input.
// Each text is counted on its own, as the upstream tokenizes each message
// on its own; per message OpenAI's published rule adds 3 tokens (and 1 for
// a name), and 3 prime the reply. Member names match exactly and the last
// of duplicates wins, as in the upstreams' parsers (encoding/json's
// case-insensitive matching let "Content": "" hide the "content" the
// upstream reads). It is one pass over body with no allocation per
// element; texts after the first sampleBytes are measured, not counted,
// and the count extrapolated to them. The counts of texts of at least
// cacheMinBytes are remembered across calls, which spares counting a
// conversation's earlier turns again in each of its requests; the result
// does not depend on what is remembered.
func (e *Estimator) PromptTokensFor(model string, body []byte) int {
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
	t := &tally{enc: e.encoding(model), cache: e.cache, encID: 1}
	if usesCl100k(model) {
		t.encID = 2
	}
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
		if len(name) > 2 && name[0] == '"' {
			n++
			t.str(name)
		}
		t.text(content)
	})
	if n > 0 {
		n += 3
	}
	t.text(prompt)
	t.text(input)
	return n + t.total()
}

// tally counts the texts of one request: each JSON string on its own,
// through the cache when long, until sampleBytes of them are counted; the
// bytes of later ones are only measured.
type tally struct {
	enc     *bpeEncoding // nil: four bytes a token
	cache   *countCache
	encID   uint64 // which encoding, in cache keys
	tokens  int    // of the counted texts
	counted int    // bytes (as they stand in the JSON) of the counted texts
	more    int    // bytes of the texts past the sample
	buf     []byte // for unescaping
}

func (t *tally) total() int {
	if t.more == 0 || t.counted == 0 {
		return t.tokens
	}
	return int(int64(t.tokens) * int64(t.counted+t.more) / int64(t.counted))
}

// str counts the JSON string raw, if it is one.
func (t *tally) str(raw []byte) {
	if len(raw) < 2 || raw[0] != '"' {
		return
	}
	raw = raw[1 : len(raw)-1]
	if t.counted >= sampleBytes {
		t.more += len(raw)
		return
	}
	t.counted += len(raw)
	var h uint64
	if t.cache != nil && len(raw) >= cacheMinBytes {
		// Keyed by the text as escaped in the JSON: a hit neither
		// unescapes nor counts.
		h = t.cache.key(raw, t.encID)
		if n, ok := t.cache.get(h, len(raw)); ok {
			t.tokens += n
			return
		}
	}
	n := 0
	if bytes.IndexByte(raw, '\\') < 0 {
		// The body is not modified while it is counted, and the count
		// keeps nothing of it.
		n = countWith(t.enc, unsafe.String(unsafe.SliceData(raw), len(raw)))
	} else {
		var ok bool
		if t.buf, ok = appendUnescaped(t.buf[:0], raw); !ok {
			return
		}
		n = countWith(t.enc, unsafe.String(unsafe.SliceData(t.buf), len(t.buf)))
	}
	if h != 0 {
		t.cache.put(h, len(raw), n)
	}
	t.tokens += n
}

// text counts a JSON string, an array of strings, or an array of content
// parts ({"type":"text","text":...}).
func (t *tally) text(raw []byte) {
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
			case '{':
				var text []byte
				eachMember(p, func(k, v []byte) {
					if nameIs(k, "text") {
						text = v
					}
				})
				t.str(text)
			}
		})
	}
}

// appendUnescaped appends the text of the JSON string body raw (without
// its quotes) to dst, as encoding/json decodes it (jsonspan.AppendUnquoted:
// an unpaired surrogate and invalid UTF-8 become U+FFFD). It reports false
// for an invalid escape, a raw quote or a raw control character, which a
// body that passed jsonspan.Valid, as the router's do, never holds.
func appendUnescaped(dst, raw []byte) ([]byte, bool) {
	return jsonspan.AppendUnquoted(dst, raw)
}

package router

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/sluice-ai/sluice/llm"

	"github.com/sluice-ai/sluice/wire/jsonspan"
)

// The router never decodes a whole request body into a map and re-encodes
// it: it validates the JSON, scans the top-level object for the few members
// it needs (model, stream, stream_options) and splices the rewritten model
// name into the original bytes. Top-level members are validated strictly
// (no duplicate keys, no case variants of the keys it reads, valid UTF-8,
// no trailing data) so that what the gateway checked is what the upstream
// reads.

// errBadJSON is returned for a body that is not one valid JSON object.
var errBadJSON = errors.New("request body must be a JSON object")

// Limits on the shape of a request body. Every check is one linear pass;
// the limits keep what the gateway forwards within what upstream parsers
// take without failing (a 5xx there would count against the deployment).
const (
	// maxMembers bounds the members of the top-level object and of
	// stream_options (OpenAI's requests have a few dozen).
	maxMembers = 1024
	// maxDepth bounds the nesting of objects and arrays (Python's json
	// gives up near 1000, pydantic's parser at 200).
	maxDepth = 128
	// maxNumberBytes bounds one number literal (Python refuses integers of
	// more than 4300 digits).
	maxNumberBytes = 256
)

// checkShape enforces maxDepth and maxNumberBytes in one pass over b. It
// does not validate the JSON otherwise.
func checkShape(b []byte) *llm.Error {
	depth, num := 0, 0
	for i := 0; i < len(b); i++ {
		c := b[i]
		switch c {
		case '"':
			i = skipString(b, i) - 1
			num = 0
			continue
		case '{', '[':
			if depth++; depth > maxDepth {
				e := llm.Errorf(llm.KindInvalidRequest, "request body nests objects and arrays deeper than %d levels", maxDepth)
				e.Code = "body_too_deep"
				return e
			}
		case '}', ']':
			depth--
		}
		if c >= '0' && c <= '9' || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E' {
			if num++; num > maxNumberBytes {
				e := llm.Errorf(llm.KindInvalidRequest, "request body has a number longer than %d characters", maxNumberBytes)
				e.Code = "number_too_long"
				return e
			}
		} else {
			num = 0
		}
	}
	return nil
}

// skipString is stringEnd with a fast path for strings without escapes.
func skipString(b []byte, i int) int {
	if q := bytes.IndexByte(b[i+1:], '"'); q >= 0 && bytes.IndexByte(b[i+1:i+1+q], '\\') < 0 {
		return i + 2 + q
	}
	return jsonspan.StringEnd(b, i)
}

// loneSurrogate returns the first \u escape of an unpaired UTF-16
// surrogate in the raw string s, or nil. Decoders replace such escapes (Go)
// or keep them (Python), so in a member name or the model the gateway and
// the upstream would read different text.
func loneSurrogate(s []byte) []byte {
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			continue
		}
		i++
		if i >= len(s) || s[i] != 'u' {
			continue
		}
		r, ok := hex4(s, i+1)
		if !ok {
			continue
		}
		i += 4 // the last hex digit
		switch {
		case r >= 0xDC00 && r <= 0xDFFF:
			return s[i-5 : i+1]
		case r >= 0xD800 && r <= 0xDBFF:
			lo, ok := rune(0), i+6 < len(s) && s[i+1] == '\\' && s[i+2] == 'u'
			if ok {
				lo, ok = hex4(s, i+3)
			}
			if !ok || lo < 0xDC00 || lo > 0xDFFF {
				return s[i-5 : i+1]
			}
			i += 6
		}
	}
	return nil
}

func surrogateError(esc []byte) *llm.Error {
	return llm.Errorf(llm.KindInvalidRequest, "request body has an unpaired UTF-16 surrogate escape (%s) in a member name or the model", esc)
}

// hex4 decodes the four hex digits at b[i:].
func hex4(b []byte, i int) (rune, bool) {
	if i+4 > len(b) {
		return 0, false
	}
	var r rune
	for _, c := range b[i : i+4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// keySet finds duplicate member names in linear time: a slice while small,
// then a map (Go's maps are seeded per map, so no choice of keys makes one
// degrade).
type keySet struct {
	small [16]string
	n     int
	m     map[string]struct{}
}

// add adds k and reports whether it was new.
func (s *keySet) add(k string) bool {
	if s.m == nil {
		for _, x := range s.small[:s.n] {
			if x == k {
				return false
			}
		}
		if s.n < len(s.small) {
			s.small[s.n] = k
			s.n++
			return true
		}
		s.m = make(map[string]struct{}, 64)
		for _, x := range s.small {
			s.m[x] = struct{}{}
		}
	}
	if _, dup := s.m[k]; dup {
		return false
	}
	s.m[k] = struct{}{}
	return true
}

// unescapeKey returns the key as a Go string, decoding escapes if any.
func unescapeKey(raw []byte) (string, bool) {
	if bytes.IndexByte(raw, '\\') < 0 {
		return string(raw), true
	}
	var s string
	q := make([]byte, 0, len(raw)+2)
	q = append(append(append(q, '"'), raw...), '"')
	if json.Unmarshal(q, &s) != nil {
		return "", false
	}
	return s, true
}

// request is what the router needs to know about a client's body.
type request struct {
	body         []byte
	model        string
	modelVS      int // span of the model value in body
	modelVE      int
	dialect      llm.Dialect
	stream       bool
	hasStreamOpt bool // stream_options present and not null
	soVS, soVE   int  // span of the stream_options value (when present)
	iuVS, iuVE   int  // span of stream_options.include_usage's value (0 when absent)
	soEmpty      bool // stream_options is {}
	includeUsage bool // the client asked for stream_options.include_usage
	closeBrace   int
	// maxTokens is the larger of max_tokens and max_completion_tokens and
	// choices the larger of n and best_of (0 when absent or not a positive
	// integer): together they bound the completion tokens usage may report.
	maxTokens, choices int
	// sys and conv are the spans of the system prompt (system,
	// instructions, systemInstruction) and of the conversation (messages,
	// input, contents), for prompt-cache affinity; zero when absent.
	sys, conv span
}

// utf8BOM is the byte order mark some Windows tools put before JSON.
const utf8BOM = "\xef\xbb\xbf"

// parseRequest validates body and extracts the members the router uses.
// It is linear in len(body).
//
// The members read are the same in every dialect (model, stream, the
// output bound), except stream_options, which only OpenAI chat and
// completions have, and max_output_tokens, the Responses API's bound.
func parseRequest(body []byte, d llm.Dialect) (*request, *llm.Error) {
	if bytes.HasPrefix(body, []byte(utf8BOM)) {
		return nil, llm.Errorf(llm.KindInvalidRequest, "request body starts with a byte order mark; send JSON without one")
	}
	if !utf8.Valid(body) {
		return nil, llm.Errorf(llm.KindInvalidRequest, "request body is not valid UTF-8")
	}
	if e := checkShape(body); e != nil {
		return nil, e
	}
	if !jsonspan.Valid(body) {
		return nil, llm.Errorf(llm.KindInvalidRequest, "request body is not valid JSON")
	}
	r := &request{body: body, soVS: -1, dialect: d}
	openAIStream := d == llm.DialectOpenAIChat || d == llm.DialectOpenAICompletions
	var seen keySet
	n := 0
	var perr *llm.Error
	closeBrace, err := jsonspan.EachMember(body, func(rawKey []byte, vs, ve int) error {
		if n++; n > maxMembers {
			perr = llm.Errorf(llm.KindInvalidRequest, "request body has more than %d top-level members", maxMembers)
			perr.Code = "too_many_members"
			return errBadJSON
		}
		if esc := loneSurrogate(rawKey); esc != nil {
			perr = surrogateError(esc)
			return errBadJSON
		}
		key, ok := unescapeKey(rawKey)
		if !ok {
			perr = llm.Errorf(llm.KindInvalidRequest, "request body has an invalid member name")
			return errBadJSON
		}
		if !seen.add(key) {
			perr = llm.Errorf(llm.KindInvalidRequest, "request body has a duplicate member %q", truncate(key, 64))
			if len(key) <= 64 { // a cut key could end mid-rune: no invalid UTF-8 in the answer
				perr.Param = key
			}
			return errBadJSON
		}
		v := body[vs:ve]
		switch key {
		case "model":
			var m string
			if v[0] != '"' || json.Unmarshal(v, &m) != nil {
				perr = llm.Errorf(llm.KindInvalidRequest, "model must be a string")
				perr.Param = "model"
				return errBadJSON
			}
			if esc := loneSurrogate(v); esc != nil {
				perr = surrogateError(esc)
				perr.Param = "model"
				return errBadJSON
			}
			r.model, r.modelVS, r.modelVE = m, vs, ve
		case "stream":
			var ok bool
			if r.stream, ok = jsonBool(v); !ok {
				perr = llm.Errorf(llm.KindInvalidRequest, "stream must be a boolean")
				perr.Param = "stream"
				return errBadJSON
			}
		case "stream_options":
			if !openAIStream {
				return nil // another dialect's member: forwarded as sent
			}
			r.soVS, r.soVE = vs, ve
			if string(v) == "null" {
				return nil
			}
			if perr = r.parseStreamOptions(vs); perr != nil {
				return errBadJSON
			}
		case "max_tokens", "max_completion_tokens", "max_output_tokens":
			r.maxTokens = max(r.maxTokens, positiveInt(v))
		case "n", "best_of":
			r.choices = max(r.choices, positiveInt(v))
		case "system", "instructions", "systemInstruction", "system_instruction":
			r.sys = span{vs, ve}
		case "messages", "input", "contents":
			r.conv = span{vs, ve}
		default:
			if perr = caseVariant(key, "model", "stream", "stream_options",
				"max_tokens", "max_completion_tokens", "max_output_tokens", "n", "best_of"); perr != nil {
				return errBadJSON
			}
		}
		return nil
	})
	if perr != nil {
		return nil, perr
	}
	if err != nil {
		return nil, llm.Errorf(llm.KindInvalidRequest, "request body must be a JSON object")
	}
	if r.modelVE == 0 || r.model == "" {
		e := llm.Errorf(llm.KindInvalidRequest, "you must provide a model parameter")
		e.Param = "model"
		return nil, e
	}
	r.closeBrace = closeBrace
	return r, nil
}

// jsonBool reads a JSON boolean value, null counting as false; ok is false
// for anything else.
func jsonBool(v []byte) (val, ok bool) {
	switch string(v) {
	case "true":
		return true, true
	case "false", "null":
		return false, true
	}
	return false, false
}

// positiveInt is the JSON integer v when it is positive and fits an int, else 0.
func positiveInt(v []byte) int {
	n, err := strconv.Atoi(string(v))
	if err != nil || n <= 0 {
		return 0
	}
	return n
}

// usageLimits are what usage of this request can possibly be: completion
// tokens at most max tokens per choice times the choices (when the client
// bounded them), prompt tokens at the global bound.
func (r *request) usageLimits() llm.UsageLimits {
	if r.maxTokens <= 0 {
		return llm.UsageLimits{}
	}
	c := max(r.choices, 1)
	if r.maxTokens > llm.MaxTokensPerRequest/c {
		return llm.UsageLimits{}
	}
	return llm.UsageLimits{MaxCompletion: r.maxTokens * c}
}

// caseVariant refuses key when it differs from one of names only in case:
// the gateway and an upstream that matches names case-insensitively (Go's
// encoding/json does) would read different values.
func caseVariant(key string, names ...string) *llm.Error {
	for _, k := range names {
		if strings.EqualFold(key, k) { // with Unicode folds: "ſtream" too
			e := llm.Errorf(llm.KindInvalidRequest, "unknown member %q (did you mean %q?)", key, k)
			e.Param = key
			return e
		}
	}
	return nil
}

// parseStreamOptions reads the stream_options object at body[vs:] as
// strictly as the top level: include_usage must be a boolean or null,
// appear once, and have no case variant (else the gateway could skip
// asking for usage that the upstream then does not report).
func (r *request) parseStreamOptions(vs int) *llm.Error {
	const param = "stream_options"
	v := r.body[vs:r.soVE]
	if v[0] != '{' {
		e := llm.Errorf(llm.KindInvalidRequest, "stream_options must be an object")
		e.Param = param
		return e
	}
	var seen keySet
	n := 0
	var perr *llm.Error
	_, err := jsonspan.EachMember(v, func(rawKey []byte, s, e int) error {
		if n++; n > maxMembers {
			perr = llm.Errorf(llm.KindInvalidRequest, "stream_options has more than %d members", maxMembers)
			perr.Param, perr.Code = param, "too_many_members"
			return errBadJSON
		}
		if esc := loneSurrogate(rawKey); esc != nil {
			perr = surrogateError(esc)
			perr.Param = param
			return errBadJSON
		}
		key, ok := unescapeKey(rawKey)
		if !ok || !seen.add(key) {
			perr = llm.Errorf(llm.KindInvalidRequest, "stream_options has a duplicate or invalid member %q", truncate(key, 64))
			perr.Param = param
			return errBadJSON
		}
		if key != "include_usage" {
			if perr = caseVariant(key, "include_usage"); perr != nil {
				perr.Param = param
				return errBadJSON
			}
			return nil
		}
		if r.includeUsage, ok = jsonBool(v[s:e]); !ok {
			perr = llm.Errorf(llm.KindInvalidRequest, "stream_options.include_usage must be a boolean")
			perr.Param = "stream_options.include_usage"
			return errBadJSON
		}
		r.iuVS, r.iuVE = vs+s, vs+e
		return nil
	})
	if perr != nil {
		return perr
	}
	if err != nil {
		e := llm.Errorf(llm.KindInvalidRequest, "stream_options must be an object")
		e.Param = param
		return e
	}
	r.hasStreamOpt, r.soEmpty = true, n == 0
	return nil
}

// includeUsageTrue is stream_options' value when the gateway asks for usage.
const includeUsageTrue = `{"include_usage":true}`

// upstreamBody returns the body to send upstream: the model replaced by
// upstreamModel and, for streams, stream_options.include_usage forced on so
// the upstream reports usage. It returns r.body itself when nothing changes.
func (r *request) upstreamBody(upstreamModel string) []byte {
	return r.rewrite(upstreamModel, true)
}

// injectsUsage reports whether upstreamBody adds include_usage.
func (r *request) injectsUsage() bool {
	return r.stream && !r.includeUsage && (r.dialect == llm.DialectOpenAIChat || r.dialect == llm.DialectOpenAICompletions)
}

// rewrite is upstreamBody with the include_usage injection optional.
func (r *request) rewrite(upstreamModel string, injectUsage bool) []byte {
	changeModel := upstreamModel != r.model
	changeSO := injectUsage && r.injectsUsage()
	if !changeModel && !changeSO {
		return r.body
	}
	type splice struct {
		s, e int
		with []byte
	}
	var sp [2]splice
	n := 0
	if changeModel {
		q, _ := json.Marshal(upstreamModel)
		sp[n] = splice{r.modelVS, r.modelVE, q}
		n++
	}
	if changeSO {
		switch {
		case r.iuVE > 0: // "include_usage": false or null
			sp[n] = splice{r.iuVS, r.iuVE, []byte("true")}
		case r.hasStreamOpt && r.soEmpty:
			sp[n] = splice{r.soVS, r.soVE, []byte(includeUsageTrue)}
		case r.hasStreamOpt: // add the member first, keeping the others as sent
			sp[n] = splice{r.soVS + 1, r.soVS + 1, []byte(`"include_usage":true,`)}
		case r.soVS >= 0: // "stream_options": null
			sp[n] = splice{r.soVS, r.soVE, []byte(includeUsageTrue)}
		default:
			sp[n] = splice{r.closeBrace, r.closeBrace, []byte(`,"stream_options":` + includeUsageTrue)}
		}
		n++
	}
	if n == 2 && sp[1].s < sp[0].s {
		sp[0], sp[1] = sp[1], sp[0]
	}
	size := len(r.body)
	for _, s := range sp[:n] {
		size += len(s.with) - (s.e - s.s)
	}
	out := make([]byte, 0, size)
	prev := 0
	for _, s := range sp[:n] {
		out = append(out, r.body[prev:s.s]...)
		out = append(out, s.with...)
		prev = s.e
	}
	return append(out, r.body[prev:]...)
}

// member returns the raw value of the top-level member key of the JSON
// object b, or nil. b must be valid JSON.
func member(b []byte, key string) []byte {
	var out []byte
	_, _ = jsonspan.EachMember(b, func(k []byte, vs, ve int) error {
		if out == nil && string(k) == key {
			out = b[vs:ve]
		}
		return nil
	})
	return out
}

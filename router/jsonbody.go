package router

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"unicode/utf8"

	"github.com/sluice-ai/sluice/llm"
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

// skipWS returns the index of the first non-space byte at or after i.
func skipWS(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// stringEnd returns the index just past the JSON string starting at b[i]=='"'.
func stringEnd(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return len(b)
}

// valueEnd returns the index just past the JSON value starting at b[i].
// b must be valid JSON.
func valueEnd(b []byte, i int) int {
	switch b[i] {
	case '"':
		return stringEnd(b, i)
	case '{', '[':
		depth := 0
		for ; i < len(b); i++ {
			switch b[i] {
			case '"':
				i = stringEnd(b, i) - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
		}
		return len(b)
	default:
		for ; i < len(b); i++ {
			switch b[i] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return i
			}
		}
		return len(b)
	}
}

// eachMember calls fn for each member of the JSON object in b, with the raw
// key (without quotes, still escaped) and the value's span. b must be valid
// JSON. It returns the index of the object's closing brace.
func eachMember(b []byte, fn func(key []byte, vs, ve int) error) (int, error) {
	i := skipWS(b, 0)
	if i >= len(b) || b[i] != '{' {
		return 0, errBadJSON
	}
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == '}' {
		return i, nil
	}
	for i < len(b) {
		if b[i] != '"' {
			return 0, errBadJSON
		}
		ke := stringEnd(b, i)
		if ke-1 <= i || b[ke-1] != '"' {
			return 0, errBadJSON
		}
		key := b[i+1 : ke-1]
		i = skipWS(b, ke)
		if i >= len(b) || b[i] != ':' {
			return 0, errBadJSON
		}
		vs := skipWS(b, i+1)
		if vs >= len(b) {
			return 0, errBadJSON
		}
		ve := valueEnd(b, vs)
		if err := fn(key, vs, ve); err != nil {
			return 0, err
		}
		i = skipWS(b, ve)
		if i >= len(b) {
			break
		}
		if b[i] == '}' {
			return i, nil
		}
		if b[i] != ',' {
			return 0, errBadJSON
		}
		i = skipWS(b, i+1)
	}
	return 0, errBadJSON
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
	stream       bool
	hasStreamOpt bool // stream_options present and not null
	soVS, soVE   int  // span of the stream_options value (when present)
	includeUsage bool // the client asked for stream_options.include_usage
	closeBrace   int
}

// parseRequest validates body and extracts the members the router uses.
func parseRequest(body []byte) (*request, *llm.Error) {
	if !utf8.Valid(body) {
		return nil, llm.Errorf(llm.KindInvalidRequest, "request body is not valid UTF-8")
	}
	if !json.Valid(body) {
		return nil, llm.Errorf(llm.KindInvalidRequest, "request body is not valid JSON")
	}
	r := &request{body: body, soVS: -1}
	seen := make([]string, 0, 8)
	var perr *llm.Error
	closeBrace, err := eachMember(body, func(rawKey []byte, vs, ve int) error {
		key, ok := unescapeKey(rawKey)
		if !ok {
			perr = llm.Errorf(llm.KindInvalidRequest, "request body has an invalid member name")
			return errBadJSON
		}
		for _, s := range seen {
			if s == key {
				perr = llm.Errorf(llm.KindInvalidRequest, "request body has a duplicate member %q", key)
				perr.Param = key
				return errBadJSON
			}
		}
		seen = append(seen, key)
		v := body[vs:ve]
		switch key {
		case "model":
			var m string
			if v[0] != '"' || json.Unmarshal(v, &m) != nil {
				perr = llm.Errorf(llm.KindInvalidRequest, "model must be a string")
				perr.Param = "model"
				return errBadJSON
			}
			r.model, r.modelVS, r.modelVE = m, vs, ve
		case "stream":
			switch string(v) {
			case "true":
				r.stream = true
			case "false", "null":
			default:
				perr = llm.Errorf(llm.KindInvalidRequest, "stream must be a boolean")
				perr.Param = "stream"
				return errBadJSON
			}
		case "stream_options":
			if string(v) == "null" {
				r.soVS, r.soVE = vs, ve
				return nil
			}
			var so struct {
				IncludeUsage *bool `json:"include_usage"`
			}
			if v[0] != '{' || json.Unmarshal(v, &so) != nil {
				perr = llm.Errorf(llm.KindInvalidRequest, "stream_options must be an object")
				perr.Param = "stream_options"
				return errBadJSON
			}
			r.hasStreamOpt, r.soVS, r.soVE = true, vs, ve
			r.includeUsage = so.IncludeUsage != nil && *so.IncludeUsage
		default:
			for _, k := range [...]string{"model", "stream", "stream_options"} {
				if strings.EqualFold(key, k) {
					perr = llm.Errorf(llm.KindInvalidRequest, "unknown member %q (did you mean %q?)", key, k)
					perr.Param = key
					return errBadJSON
				}
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

// includeUsageTrue is stream_options' value when the gateway asks for usage.
const includeUsageTrue = `{"include_usage":true}`

// upstreamBody returns the body to send upstream: the model replaced by
// upstreamModel and, for streams, stream_options.include_usage forced on so
// the upstream reports usage. It returns r.body itself when nothing changes.
func (r *request) upstreamBody(upstreamModel string) []byte {
	return r.rewrite(upstreamModel, true)
}

// injectsUsage reports whether upstreamBody adds include_usage.
func (r *request) injectsUsage() bool { return r.stream && !r.includeUsage }

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
		case r.hasStreamOpt:
			var m map[string]json.RawMessage
			_ = json.Unmarshal(r.body[r.soVS:r.soVE], &m)
			if m == nil {
				m = map[string]json.RawMessage{}
			}
			m["include_usage"] = json.RawMessage("true")
			v, _ := json.Marshal(m)
			sp[n] = splice{r.soVS, r.soVE, v}
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
	_, _ = eachMember(b, func(k []byte, vs, ve int) error {
		if out == nil && string(k) == key {
			out = b[vs:ve]
		}
		return nil
	})
	return out
}

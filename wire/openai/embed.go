package openai

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"

	"github.com/sluice-ai/sluice/llm"
)

// MaxEmbedInputs bounds the inputs of one embeddings request (OpenAI's
// own limit is 2048).
const MaxEmbedInputs = 2048

// DecodeEmbedRequest decodes an OpenAI embeddings request: input is a
// string or an array of strings (token arrays are refused: only
// OpenAI-compatible providers take them, on the raw lane), with model,
// dimensions, encoding_format ("float" or "base64") and user.
func DecodeEmbedRequest(raw []byte) (*llm.EmbedRequest, *llm.Error) {
	var in struct {
		Model          json.RawMessage `json:"model"`
		Input          json.RawMessage `json:"input"`
		Dimensions     json.RawMessage `json:"dimensions"`
		EncodingFormat json.RawMessage `json:"encoding_format"`
		User           json.RawMessage `json:"user"`
	}
	if b := bytes.TrimSpace(raw); len(b) == 0 || b[0] != '{' || json.Unmarshal(b, &in) != nil {
		return nil, invalid("", "the request body must be a JSON object")
	}
	r := &llm.EmbedRequest{}
	var e *llm.Error
	if r.Model, e = str(in.Model, "model"); e != nil {
		return nil, e
	}
	if r.User, e = str(in.User, "user"); e != nil {
		return nil, e
	}
	switch f, e := str(in.EncodingFormat, "encoding_format"); {
	case e != nil:
		return nil, e
	case f == "base64":
		r.Base64 = true
	case f != "" && f != "float":
		return nil, invalid("encoding_format", "encoding_format must be float or base64")
	}
	if n, e := integer(in.Dimensions, "dimensions"); e != nil {
		return nil, e
	} else if n != nil {
		if *n < 1 || *n > 1<<20 {
			return nil, invalid("dimensions", "dimensions must be a positive integer")
		}
		r.Dimensions = int(*n)
	}
	tokens := invalid("input", "token inputs are only supported by OpenAI-compatible providers")
	switch {
	case isNull(in.Input):
		return nil, invalid("input", "input is required")
	case in.Input[0] == '"':
		s, e := str(in.Input, "input")
		if e != nil {
			return nil, e
		}
		r.Inputs = []string{s}
	case in.Input[0] == '[':
		a, e := array(in.Input, "input")
		if e != nil {
			return nil, e
		}
		if len(a) == 0 {
			return nil, invalid("input", "input must not be empty")
		}
		if len(a) > MaxEmbedInputs {
			return nil, invalid("input", "input has more than %d items", MaxEmbedInputs)
		}
		r.Inputs = make([]string, 0, len(a))
		for i, x := range a {
			if len(x) > 0 && (x[0] == '[' || x[0] == '-' || (x[0] >= '0' && x[0] <= '9')) {
				return nil, tokens
			}
			if len(x) == 0 || x[0] != '"' {
				return nil, invalid(fmt.Sprintf("input[%d]", i), "input[%d] must be a string", i)
			}
			s, e := str(x, fmt.Sprintf("input[%d]", i))
			if e != nil {
				return nil, e
			}
			r.Inputs = append(r.Inputs, s)
		}
	default:
		return nil, invalid("input", "input must be a string or an array of strings")
	}
	return r, nil
}

// AppendEmbedRequest appends r as an OpenAI embeddings request. It asks
// for floats (every OpenAI-compatible server has them); Base64 is the
// client's wish for the answer the gateway writes, not the upstream's.
func AppendEmbedRequest(dst []byte, r *llm.EmbedRequest) ([]byte, *llm.Error) {
	if len(r.Inputs) == 0 {
		return dst, invalid("input", "input must not be empty")
	}
	b := append(dst, `{"model":`...)
	b = appendString(b, r.Model)
	b = append(b, `,"input":[`...)
	for i, s := range r.Inputs {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, s)
	}
	b = append(b, ']')
	if r.Dimensions > 0 {
		b = append(b, `,"dimensions":`...)
		b = appendInt(b, int64(r.Dimensions))
	}
	if r.User != "" {
		b = append(b, `,"user":`...)
		b = appendString(b, r.User)
	}
	b = append(b, `,"encoding_format":"float"}`...)
	return b, nil
}

// AppendEmbedResponse appends r as an OpenAI embeddings list with each
// vector an array of numbers (encoding_format float, the default).
func AppendEmbedResponse(dst []byte, r *llm.EmbedResponse) []byte {
	return appendEmbedResponse(dst, r, false)
}

// AppendEmbedResponseBase64 appends r as an OpenAI embeddings list with
// each vector the base64 of its little-endian float32 bytes, as OpenAI
// answers encoding_format base64 (llm.EmbedRequest.Base64).
func AppendEmbedResponseBase64(dst []byte, r *llm.EmbedResponse) []byte {
	return appendEmbedResponse(dst, r, true)
}

func appendEmbedResponse(dst []byte, r *llm.EmbedResponse, base64Vectors bool) []byte {
	b := append(dst, `{"object":"list","data":[`...)
	var raw []byte
	for i, v := range r.Vectors {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"object":"embedding","index":`...)
		b = appendInt(b, int64(i))
		b = append(b, `,"embedding":`...)
		if base64Vectors {
			raw = raw[:0]
			for _, f := range v {
				raw = binary.LittleEndian.AppendUint32(raw, math.Float32bits(f))
			}
			b = append(b, '"')
			b = base64.StdEncoding.AppendEncode(b, raw)
			b = append(b, '"')
		} else {
			b = append(b, '[')
			for j, f := range v {
				if j > 0 {
					b = append(b, ',')
				}
				if math.IsNaN(float64(f)) || math.IsInf(float64(f), 0) {
					b = append(b, '0')
					continue
				}
				b = appendFloat32(b, f)
			}
			b = append(b, ']')
		}
		b = append(b, '}')
	}
	b = append(b, `],"model":`...)
	b = appendString(b, r.Model)
	b = append(b, `,"usage":{"prompt_tokens":`...)
	b = appendInt(b, int64(r.Usage.PromptTokens))
	b = append(b, `,"total_tokens":`...)
	b = appendInt(b, int64(r.Usage.PromptTokens)+int64(r.Usage.CompletionTokens))
	return append(b, "}}"...)
}

// DecodeEmbedResponse decodes an OpenAI embeddings answer: data items in
// index order (each index once, below the item count), embeddings as
// number arrays or base64 little-endian float32. An error member is a
// KindUpstream error as in DecodeChatResponse.
func DecodeEmbedResponse(body []byte) (*llm.EmbedResponse, *llm.Error) {
	var in struct {
		Model json.RawMessage `json:"model"`
		Data  json.RawMessage `json:"data"`
		Usage json.RawMessage `json:"usage"`
		Error json.RawMessage `json:"error"`
	}
	if b := bytes.TrimSpace(body); len(b) == 0 || b[0] != '{' || json.Unmarshal(b, &in) != nil {
		return nil, malformed("upstream sent an embeddings answer that is not a JSON object")
	}
	if isErrorValue(in.Error) {
		return nil, InbandError(in.Error)
	}
	var sc []byte
	r := &llm.EmbedResponse{Model: rawStr(in.Model, &sc)}
	var items []struct {
		Index     json.RawMessage `json:"index"`
		Embedding json.RawMessage `json:"embedding"`
	}
	if isNull(in.Data) || in.Data[0] != '[' || json.Unmarshal(in.Data, &items) != nil {
		return nil, malformed("upstream sent an embeddings answer without a data array")
	}
	if len(items) > MaxEmbedInputs {
		return nil, malformed("upstream sent more than %d embeddings", MaxEmbedInputs)
	}
	r.Vectors = make([][]float32, len(items))
	for i, it := range items {
		at := i
		if !isNull(it.Index) {
			n, ok := index(it.Index, len(items))
			if !ok {
				return nil, malformed("upstream sent an embedding index out of range")
			}
			at = n
		}
		if r.Vectors[at] != nil {
			return nil, malformed("upstream sent embedding %d twice", at)
		}
		v, ok := vector(it.Embedding)
		if !ok {
			return nil, malformed("upstream sent an embedding that is neither numbers nor base64")
		}
		r.Vectors[at] = v
	}
	if !isNull(in.Usage) {
		r.Usage, r.UsageKnown = decodeUsage(in.Usage)
	}
	return r, nil
}

// vector reads an embedding: an array of numbers or a base64 string of
// little-endian float32s. It is never nil when ok.
func vector(v json.RawMessage) ([]float32, bool) {
	switch {
	case len(v) > 0 && v[0] == '[':
		var f []float32
		if json.Unmarshal(v, &f) != nil {
			return nil, false
		}
		if f == nil {
			f = []float32{}
		}
		return f, true
	case len(v) > 0 && v[0] == '"':
		var s string
		if json.Unmarshal(v, &s) != nil {
			return nil, false
		}
		raw, err := base64.StdEncoding.DecodeString(s)
		if err != nil || len(raw)%4 != 0 {
			return nil, false
		}
		f := make([]float32, len(raw)/4)
		for i := range f {
			f[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[i*4:]))
		}
		return f, true
	}
	return nil, false
}

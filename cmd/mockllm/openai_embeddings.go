package main

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
)

// Limits of one embedding request.
const (
	maxEmbeddingInputs = 2048
	maxEmbeddingFloats = 4 << 20 // inputs × dimensions
)

// textInput is one input of a prompt or embedding request: a hash of its
// content (the seed of its embedding) and its token count (words of a
// string, length of a token array).
type textInput struct {
	hash   uint64
	tokens int
}

const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

func stringInput(s string) textInput {
	h := uint64(fnvOffset)
	for i := 0; i < len(s); i++ {
		h = (h ^ uint64(s[i])) * fnvPrime
	}
	return textInput{hash: h, tokens: countWords(s)}
}

func tokensInput(t []int) textInput {
	h := uint64(fnvOffset) ^ 0x7f // differs from the string hash of ""
	for _, v := range t {
		for k := 0; k < 8; k++ {
			h = (h ^ uint64(byte(v>>(8*k)))) * fnvPrime
		}
	}
	return textInput{hash: h, tokens: len(t)}
}

// errInputShape describes the accepted shapes of prompt and input.
var errInputShape = errors.New("must be a string, an array of strings, an array of integers or an array of integer arrays")

// parseInputs decodes an OpenAI prompt/input value: a string, an array of
// strings, an array of token ids or an array of token-id arrays. A missing or
// null value gives nil and no error.
func parseInputs(raw json.RawMessage) ([]textInput, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	switch raw[0] {
	case '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, err
		}
		return []textInput{stringInput(s)}, nil
	case '[':
	default:
		return nil, errInputShape
	}
	var elems []json.RawMessage
	if err := json.Unmarshal(raw, &elems); err != nil {
		return nil, err
	}
	if len(elems) == 0 {
		return nil, errors.New("must not be empty")
	}
	first := bytes.TrimSpace(elems[0])
	if len(first) == 0 {
		return nil, errInputShape
	}
	switch first[0] {
	case '"':
		var ss []string
		if err := json.Unmarshal(raw, &ss); err != nil {
			return nil, errInputShape
		}
		out := make([]textInput, len(ss))
		for i, s := range ss {
			out[i] = stringInput(s)
		}
		return out, nil
	case '[':
		var tt [][]int
		if err := json.Unmarshal(raw, &tt); err != nil {
			return nil, errInputShape
		}
		out := make([]textInput, len(tt))
		for i, t := range tt {
			out[i] = tokensInput(t)
		}
		return out, nil
	default:
		var t []int
		if err := json.Unmarshal(raw, &t); err != nil {
			return nil, errInputShape
		}
		return []textInput{tokensInput(t)}, nil
	}
}

// sumTokens adds the token counts of inputs.
func sumTokens(inputs []textInput) int {
	n := 0
	for _, in := range inputs {
		n += in.tokens
	}
	return n
}

// fillEmbedding writes a deterministic unit vector for seed into dst
// (splitmix64 values in [-1, 1), then L2-normalised).
func fillEmbedding(seed uint64, dst []float32) {
	x := seed
	var sum float64
	vals := make([]float64, len(dst))
	for i := range vals {
		x += 0x9e3779b97f4a7c15
		z := x
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
		z = (z ^ (z >> 27)) * 0x94d049bb133111eb
		z ^= z >> 31
		f := float64(z>>11)/(1<<53)*2 - 1
		vals[i] = f
		sum += f * f
	}
	norm := math.Sqrt(sum)
	if norm == 0 {
		norm = 1
	}
	for i, f := range vals {
		dst[i] = float32(f / norm)
	}
}

// handleEmbeddings serves POST /v1/embeddings.
func (m *mock) handleEmbeddings(w http.ResponseWriter, r *http.Request) outcome {
	b, body, o, ok := m.openaiBegin(w, r)
	if !ok {
		return o
	}
	var req embeddingRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return m.badJSON(w, r, &b, err)
	}
	if b.deployment != "" {
		req.Model = b.deployment
	}
	if req.Model == "" {
		return m.missingParam(w, r, &b, "model")
	}
	inputs, err := parseInputs(req.Input)
	if err != nil {
		return m.openaiError(w, r, &b, http.StatusBadRequest, "Invalid 'input': "+err.Error(), "input")
	}
	if inputs == nil {
		return m.missingParam(w, r, &b, "input")
	}
	if len(inputs) > maxEmbeddingInputs {
		return m.openaiError(w, r, &b, http.StatusBadRequest,
			fmt.Sprintf("Invalid 'input': at most %d inputs are allowed.", maxEmbeddingInputs), "input")
	}
	dims := m.cfg.EmbeddingDims
	if req.Dimensions != 0 {
		dims = req.Dimensions
	}
	if dims < 1 || dims > maxEmbeddingDims || dims*len(inputs) > maxEmbeddingFloats {
		return m.openaiError(w, r, &b, http.StatusBadRequest,
			fmt.Sprintf("Invalid 'dimensions': must be between 1 and %d (and inputs × dimensions at most %d).",
				maxEmbeddingDims, maxEmbeddingFloats), "dimensions")
	}
	b64 := false
	switch req.EncodingFormat {
	case "", "float":
	case "base64":
		b64 = true
	default:
		return m.openaiError(w, r, &b, http.StatusBadRequest,
			"Invalid 'encoding_format': must be 'float' or 'base64'.", "encoding_format")
	}
	prompt := b.promptTokens
	if prompt == 0 {
		prompt = max(sumTokens(inputs), 1)
	}

	vec := make([]float32, dims)
	raw := make([]byte, 4*dims)
	buf := make([]byte, 0, 64+len(inputs)*(48+dims*12))
	buf = append(buf, `{"object":"list","data":[`...)
	for i, in := range inputs {
		if i > 0 {
			buf = append(buf, ',')
		}
		fillEmbedding(in.hash, vec)
		buf = append(buf, `{"object":"embedding","index":`...)
		buf = strconv.AppendInt(buf, int64(i), 10)
		buf = append(buf, `,"embedding":`...)
		if b64 {
			for k, f := range vec {
				binary.LittleEndian.PutUint32(raw[4*k:], math.Float32bits(f))
			}
			buf = append(buf, '"')
			buf = base64.StdEncoding.AppendEncode(buf, raw)
			buf = append(buf, '"')
		} else {
			buf = append(buf, '[')
			for k, f := range vec {
				if k > 0 {
					buf = append(buf, ',')
				}
				buf = strconv.AppendFloat(buf, float64(f), 'g', -1, 32)
			}
			buf = append(buf, ']')
		}
		buf = append(buf, '}')
	}
	buf = append(buf, `],"model":`...)
	buf = appendString(buf, req.Model)
	if !b.noUsage {
		buf = append(buf, `,"usage":{"prompt_tokens":`...)
		buf = strconv.AppendInt(buf, int64(prompt), 10)
		buf = append(buf, `,"total_tokens":`...)
		buf = strconv.AppendInt(buf, int64(prompt), 10)
		buf = append(buf, '}')
	}
	buf = append(buf, '}')

	h := w.Header()
	h["X-Request-Id"] = []string{m.requestID(m.nextID())}
	setRetryAfter(h, &b)
	return m.respondJSON(w, r, &b, buf)
}

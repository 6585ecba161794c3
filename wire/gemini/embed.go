package gemini

import (
	"encoding/json"
	"strings"

	"github.com/sluice-ai/sluice/llm"
)

type (
	embedRequest struct {
		Requests []embedOne `json:"requests"`
	}
	embedOne struct {
		Model                string       `json:"model"`
		Content              embedContent `json:"content"`
		OutputDimensionality int          `json:"outputDimensionality,omitempty"`
	}
	embedContent struct {
		Parts []embedPart `json:"parts"`
	}
	embedPart struct {
		Text string `json:"text"`
	}
	embedResponse struct {
		Embeddings []struct {
			Values []float32 `json:"values"`
		} `json:"embeddings"`
		Error *apiError `json:"error"`
	}
)

// AppendEmbedRequest appends a batchEmbedContents body for r to dst: one
// request per input, each naming "models/<model>". Gemini takes at most
// MaxEmbedInputs texts per call. User and Base64 are not Gemini's (the
// gateway encodes base64 answers itself).
func AppendEmbedRequest(dst []byte, model string, r *llm.EmbedRequest) ([]byte, *llm.Error) {
	if len(r.Inputs) == 0 {
		return dst, invalid("input: at least one text is required")
	}
	if len(r.Inputs) > MaxEmbedInputs {
		return dst, invalid("input: Gemini embeds at most %d texts per request", MaxEmbedInputs)
	}
	if r.Dimensions < 0 {
		return dst, invalid("dimensions must not be negative")
	}
	if model == "" {
		return dst, invalid("model is required")
	}
	name := model
	if !strings.HasPrefix(name, "models/") {
		name = "models/" + name
	}
	req := embedRequest{Requests: make([]embedOne, len(r.Inputs))}
	for i, in := range r.Inputs {
		req.Requests[i] = embedOne{Model: name, Content: embedContent{Parts: []embedPart{{Text: in}}}, OutputDimensionality: r.Dimensions}
	}
	b, err := json.Marshal(&req)
	if err != nil {
		return dst, invalid("the request cannot be encoded for Gemini")
	}
	return append(dst, b...), nil
}

// DecodeEmbedResponse decodes a batchEmbedContents answer. Gemini reports
// no usage: UsageKnown is false.
func DecodeEmbedResponse(body []byte) (*llm.EmbedResponse, *llm.Error) {
	var r embedResponse
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, llm.Errorf(llm.KindUpstream, "upstream sent an embeddings answer that is not valid Gemini JSON")
	}
	if r.Error != nil {
		return nil, r.Error.toError()
	}
	if len(r.Embeddings) == 0 {
		return nil, llm.Errorf(llm.KindUpstream, "upstream sent no embeddings")
	}
	out := &llm.EmbedResponse{Vectors: make([][]float32, len(r.Embeddings))}
	for i := range r.Embeddings {
		out.Vectors[i] = r.Embeddings[i].Values
	}
	return out, nil
}

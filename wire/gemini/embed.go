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

type (
	predictRequest struct {
		Instances  []predictInstance `json:"instances"`
		Parameters *predictParams    `json:"parameters,omitempty"`
	}
	predictInstance struct {
		Content string `json:"content"`
	}
	predictParams struct {
		OutputDimensionality int `json:"outputDimensionality,omitempty"`
	}
	predictResponse struct {
		Predictions []struct {
			Embeddings struct {
				Values     []float32 `json:"values"`
				Statistics *struct {
					TokenCount json.Number `json:"token_count"`
				} `json:"statistics"`
			} `json:"embeddings"`
		} `json:"predictions"`
		Error *apiError `json:"error"`
	}
)

// AppendPredictEmbedRequest appends a Vertex AI text-embedding :predict
// body for r to dst ({"instances":[{"content"}],"parameters":
// {"outputDimensionality"}}), the form Vertex's Google embedding models
// take.
func AppendPredictEmbedRequest(dst []byte, r *llm.EmbedRequest) ([]byte, *llm.Error) {
	if len(r.Inputs) == 0 {
		return dst, invalid("input: at least one text is required")
	}
	if len(r.Inputs) > MaxEmbedInputs {
		return dst, invalid("input: Vertex AI embeds at most %d texts per request", MaxEmbedInputs)
	}
	if r.Dimensions < 0 {
		return dst, invalid("dimensions must not be negative")
	}
	req := predictRequest{Instances: make([]predictInstance, len(r.Inputs))}
	for i, in := range r.Inputs {
		req.Instances[i].Content = in
	}
	if r.Dimensions > 0 {
		req.Parameters = &predictParams{OutputDimensionality: r.Dimensions}
	}
	b, err := json.Marshal(&req)
	if err != nil {
		return dst, invalid("the request cannot be encoded for Vertex AI")
	}
	return append(dst, b...), nil
}

// DecodePredictEmbedResponse decodes a Vertex AI :predict embeddings
// answer. The prompt tokens are the sum of the predictions'
// statistics.token_count (UsageKnown when every prediction has one).
func DecodePredictEmbedResponse(body []byte) (*llm.EmbedResponse, *llm.Error) {
	var r predictResponse
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, llm.Errorf(llm.KindUpstream, "upstream sent an embeddings answer that is not valid Vertex AI JSON")
	}
	if r.Error != nil {
		return nil, r.Error.toError()
	}
	if len(r.Predictions) == 0 {
		return nil, llm.Errorf(llm.KindUpstream, "upstream sent no embeddings")
	}
	out := &llm.EmbedResponse{Vectors: make([][]float32, len(r.Predictions)), UsageKnown: true}
	for i := range r.Predictions {
		p := &r.Predictions[i].Embeddings
		out.Vectors[i] = p.Values
		n := int64(-1)
		if p.Statistics != nil {
			if v, err := p.Statistics.TokenCount.Int64(); err == nil {
				n = v
			} else if f, err := p.Statistics.TokenCount.Float64(); err == nil && f >= 0 && f < 1<<40 {
				n = int64(f)
			}
		}
		if n < 0 || n > 1<<40 {
			out.UsageKnown = false
			continue
		}
		out.Usage.PromptTokens += int(n)
	}
	if !out.UsageKnown {
		out.Usage = llm.Usage{}
	}
	return out, nil
}

// Package gemini is the codec of Google's Gemini wire format
// (generateContent, streamGenerateContent with alt=sse, batchEmbedContents),
// spoken by the Gemini API (AI Studio) and by Vertex AI's Google publisher
// models. It is outbound only: clients never speak Gemini to the gateway,
// so the package encodes neutral requests and decodes Gemini answers.
// Codecs are pure functions over bytes and readers, bounded and linear in
// their input.
package gemini

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"

	"github.com/sluice-ai/sluice/llm"
)

// Limits on what a request may hold and an answer may make the decoder keep.
const (
	// MaxCandidates bounds the candidates (choices) of an answer and their
	// indexes.
	MaxCandidates = 128
	// MaxToolCalls bounds the function calls of one candidate.
	MaxToolCalls = 128
	// MaxParts bounds the parts of one candidate (per event when streamed).
	MaxParts = 4096
	// maxSchemaDepth bounds the nesting of a JSON Schema the encoder rewrites.
	maxSchemaDepth = 64
	// MaxEmbedInputs is the most texts batchEmbedContents takes at once.
	MaxEmbedInputs = 100
)

// dummySignature is the value Google documents for function calls whose
// thought signature is unknown (a conversation started with another
// model, or a client that dropped it): Gemini 3 models refuse function
// calls of the current turn without a signature.
const dummySignature = "skip_thought_signature_validator"

// Request body types. Only what the encoder sends.
type (
	request struct {
		Contents          []content   `json:"contents"`
		SystemInstruction *content    `json:"systemInstruction,omitempty"`
		Tools             []tool      `json:"tools,omitempty"`
		ToolConfig        *toolConfig `json:"toolConfig,omitempty"`
		GenerationConfig  *genConfig  `json:"generationConfig,omitempty"`
	}
	content struct {
		Role  string `json:"role,omitempty"`
		Parts []part `json:"parts"`
	}
	part struct {
		Text             string        `json:"text,omitempty"`
		InlineData       *blob         `json:"inlineData,omitempty"`
		FunctionCall     *functionCall `json:"functionCall,omitempty"`
		FunctionResponse *functionResp `json:"functionResponse,omitempty"`
		ThoughtSignature string        `json:"thoughtSignature,omitempty"`
	}
	blob struct {
		MimeType string `json:"mimeType"`
		Data     string `json:"data"`
	}
	functionCall struct {
		Name string          `json:"name"`
		Args json.RawMessage `json:"args"`
	}
	functionResp struct {
		Name     string          `json:"name"`
		Response json.RawMessage `json:"response"`
	}
	tool struct {
		FunctionDeclarations []functionDecl `json:"functionDeclarations"`
	}
	functionDecl struct {
		Name        string          `json:"name"`
		Description string          `json:"description,omitempty"`
		Parameters  json.RawMessage `json:"parameters,omitempty"`
	}
	toolConfig struct {
		FunctionCallingConfig fcConfig `json:"functionCallingConfig"`
	}
	fcConfig struct {
		Mode                 string   `json:"mode"`
		AllowedFunctionNames []string `json:"allowedFunctionNames,omitempty"`
	}
	genConfig struct {
		MaxOutputTokens  int             `json:"maxOutputTokens,omitempty"`
		Temperature      *float64        `json:"temperature,omitempty"`
		TopP             *float64        `json:"topP,omitempty"`
		TopK             *int            `json:"topK,omitempty"`
		StopSequences    []string        `json:"stopSequences,omitempty"`
		CandidateCount   int             `json:"candidateCount,omitempty"`
		Seed             *int32          `json:"seed,omitempty"`
		PresencePenalty  *float64        `json:"presencePenalty,omitempty"`
		FrequencyPenalty *float64        `json:"frequencyPenalty,omitempty"`
		ResponseMimeType string          `json:"responseMimeType,omitempty"`
		ResponseSchema   json.RawMessage `json:"responseSchema,omitempty"`
		ThinkingConfig   *thinkingConfig `json:"thinkingConfig,omitempty"`
	}
	thinkingConfig struct {
		ThinkingBudget  *int `json:"thinkingBudget,omitempty"`
		IncludeThoughts bool `json:"includeThoughts,omitempty"`
	}
)

// effortBudget returns the thinking budget for OpenAI's reasoning_effort,
// as Google's OpenAI-compatible endpoint maps them.
func effortBudget(effort string) (int, bool) {
	switch effort {
	case "none":
		return 0, true
	case "minimal", "low":
		return 1024, true
	case "medium":
		return 8192, true
	case "high":
		return 24576, true
	}
	return 0, false
}

func invalid(format string, args ...any) *llm.Error {
	return llm.Errorf(llm.KindInvalidRequest, format, args...)
}

// AppendRequest appends r encoded as a generateContent (or
// streamGenerateContent: the body is the same) request body to dst.
//
// The conversation becomes contents of role "user" and "model"; the
// system prompt, and system messages later in the conversation, become
// systemInstruction. A tool result becomes a functionResponse part named
// after the function of the assistant tool call it answers (found by
// ToolCallID); consecutive results share one user turn, and a result that
// is not a JSON object is wrapped as {"result": …} ({"error": …} for
// IsError). Adjacent turns of one role are merged. Images must carry Data:
// the provider fetches URLs first, and an image URL left here is an
// invalid request. Thinking text is not sent back; a thinking part's
// Signature is attached, as Gemini's thoughtSignature, to the turn's first
// function call (or first part). Tool parameter and response schemas are
// rewritten to the OpenAPI subset Gemini accepts (see sanitizeSchema).
// User, ParallelToolCalls and Detail have no Gemini equivalent and are
// dropped.
func AppendRequest(dst []byte, r *llm.ChatRequest) ([]byte, *llm.Error) {
	var req request
	names := map[string]string{} // tool call id -> function name
	var sys []part
	for i := range r.System {
		p := &r.System[i]
		switch p.Type {
		case llm.PartText:
			if p.Text != "" {
				sys = append(sys, part{Text: p.Text})
			}
		case llm.PartThinking:
		default:
			return dst, invalid("system prompt part %d: Gemini takes only text in the system instruction", i)
		}
	}
	for mi := range r.Messages {
		m := &r.Messages[mi]
		switch m.Role {
		case llm.RoleSystem:
			for _, p := range m.Content {
				if p.Type == llm.PartText && p.Text != "" {
					sys = append(sys, part{Text: p.Text})
				} else if p.Type == llm.PartImage {
					return dst, invalid("messages[%d]: Gemini takes only text in system messages", mi)
				}
			}
		case llm.RoleUser:
			parts, err := userParts(m, mi)
			if err != nil {
				return dst, err
			}
			req.Contents = appendTurn(req.Contents, "user", parts)
		case llm.RoleAssistant:
			parts, err := modelParts(m, mi)
			if err != nil {
				return dst, err
			}
			for _, tc := range m.ToolCalls {
				if tc.ID != "" {
					names[tc.ID] = tc.Name
				}
			}
			req.Contents = appendTurn(req.Contents, "model", parts)
		case llm.RoleTool:
			name, ok := names[m.ToolCallID]
			if !ok {
				if m.Name == "" {
					return dst, invalid("messages[%d]: tool result %q answers no earlier assistant tool call (Gemini needs the function's name)", mi, clipID(m.ToolCallID))
				}
				name = m.Name
			}
			resp := toolResponse(m)
			req.Contents = appendTurn(req.Contents, "user", []part{{FunctionResponse: &functionResp{Name: name, Response: resp}}})
		default:
			return dst, invalid("messages[%d]: unknown role %q", mi, clipID(string(m.Role)))
		}
	}
	if len(req.Contents) == 0 {
		return dst, invalid("messages: Gemini needs at least one user or assistant message with content")
	}
	if len(sys) > 0 {
		req.SystemInstruction = &content{Parts: sys}
	}
	if len(r.Tools) > 0 {
		decls := make([]functionDecl, 0, len(r.Tools))
		for i := range r.Tools {
			t := &r.Tools[i]
			if t.Name == "" {
				return dst, invalid("tools[%d]: a function needs a name", i)
			}
			d := functionDecl{Name: t.Name, Description: t.Description}
			if len(bytes.TrimSpace(t.Parameters)) > 0 && string(bytes.TrimSpace(t.Parameters)) != "null" {
				s, err := sanitizeSchema(t.Parameters, true)
				if err != nil {
					return dst, invalid("tools[%d].parameters: %s", i, err.Error())
				}
				d.Parameters = s
			}
			decls = append(decls, d)
		}
		req.Tools = []tool{{FunctionDeclarations: decls}}
	}
	switch r.ToolChoice.Mode {
	case "":
	case "auto":
		req.ToolConfig = &toolConfig{fcConfig{Mode: "AUTO"}}
	case "none":
		req.ToolConfig = &toolConfig{fcConfig{Mode: "NONE"}}
	case "required":
		req.ToolConfig = &toolConfig{fcConfig{Mode: "ANY"}}
	case "tool":
		if r.ToolChoice.Name == "" {
			return dst, invalid("tool_choice: a named tool choice needs the function's name")
		}
		req.ToolConfig = &toolConfig{fcConfig{Mode: "ANY", AllowedFunctionNames: []string{r.ToolChoice.Name}}}
	default:
		return dst, invalid("tool_choice: unsupported mode %q", clipID(r.ToolChoice.Mode))
	}
	g, err := generationConfig(r)
	if err != nil {
		return dst, err
	}
	req.GenerationConfig = g
	b, merr := json.Marshal(&req)
	if merr != nil {
		return dst, invalid("the request cannot be encoded for Gemini")
	}
	return append(dst, b...), nil
}

func generationConfig(r *llm.ChatRequest) (*genConfig, *llm.Error) {
	g := genConfig{
		Temperature:      r.Temperature,
		TopP:             r.TopP,
		TopK:             r.TopK,
		StopSequences:    r.Stop,
		PresencePenalty:  r.PresencePenalty,
		FrequencyPenalty: r.FrequencyPenalty,
	}
	if r.MaxTokens < 0 {
		return nil, invalid("max_tokens must not be negative")
	}
	g.MaxOutputTokens = r.MaxTokens
	if r.N < 0 {
		return nil, invalid("n must not be negative")
	}
	if r.N > 1 {
		g.CandidateCount = r.N
	}
	if r.Seed != nil {
		s := int32(*r.Seed) // Gemini's seed is 32 bits: a deterministic fold of larger ones
		g.Seed = &s
	}
	if f := r.ResponseFormat; f != nil {
		switch f.Type {
		case "", "text":
		case "json_object":
			g.ResponseMimeType = "application/json"
		case "json_schema":
			g.ResponseMimeType = "application/json"
			if len(bytes.TrimSpace(f.Schema)) > 0 {
				s, err := sanitizeSchema(f.Schema, false)
				if err != nil {
					return nil, invalid("response_format.json_schema.schema: %s", err.Error())
				}
				g.ResponseSchema = s
			}
		default:
			return nil, invalid("response_format: type %q is not supported by Gemini", clipID(f.Type))
		}
	}
	switch {
	case r.ThinkingBudget > 0:
		b := r.ThinkingBudget
		g.ThinkingConfig = &thinkingConfig{ThinkingBudget: &b, IncludeThoughts: true}
	case r.ReasoningEffort != "":
		b, ok := effortBudget(r.ReasoningEffort)
		if !ok {
			return nil, invalid("reasoning_effort %q is not supported (low, medium, high, minimal or none)", clipID(r.ReasoningEffort))
		}
		g.ThinkingConfig = &thinkingConfig{ThinkingBudget: &b, IncludeThoughts: b > 0}
	}
	b, _ := json.Marshal(&g)
	if string(b) == "{}" {
		return nil, nil
	}
	return &g, nil
}

// appendTurn appends parts as a turn of role, merged into the last turn
// when it has the same role (Gemini wants turns to alternate).
func appendTurn(cs []content, role string, parts []part) []content {
	if len(parts) == 0 {
		return cs
	}
	if n := len(cs); n > 0 && cs[n-1].Role == role {
		cs[n-1].Parts = append(cs[n-1].Parts, parts...)
		return cs
	}
	return append(cs, content{Role: role, Parts: parts})
}

func userParts(m *llm.Message, mi int) ([]part, *llm.Error) {
	parts := make([]part, 0, len(m.Content))
	for pi := range m.Content {
		p := &m.Content[pi]
		switch p.Type {
		case llm.PartText:
			if p.Text != "" {
				parts = append(parts, part{Text: p.Text})
			}
		case llm.PartImage:
			b, err := imageBlob(p.Image, mi, pi)
			if err != nil {
				return nil, err
			}
			parts = append(parts, part{InlineData: b})
		case llm.PartThinking:
		default:
			return nil, invalid("messages[%d].content[%d]: unsupported content part", mi, pi)
		}
	}
	return parts, nil
}

func imageBlob(img *llm.Image, mi, pi int) (*blob, *llm.Error) {
	if img == nil || img.Data == "" {
		return nil, invalid("messages[%d].content[%d]: Gemini needs the image's bytes; an image URL must be fetched before encoding", mi, pi)
	}
	mt := img.MediaType
	if mt == "" {
		return nil, invalid("messages[%d].content[%d]: the image's media type is unknown", mi, pi)
	}
	return &blob{MimeType: mt, Data: img.Data}, nil
}

func modelParts(m *llm.Message, mi int) ([]part, *llm.Error) {
	parts := make([]part, 0, len(m.Content)+len(m.ToolCalls))
	sig := ""
	for pi := range m.Content {
		p := &m.Content[pi]
		switch p.Type {
		case llm.PartText:
			if p.Text != "" {
				parts = append(parts, part{Text: p.Text})
			}
		case llm.PartThinking:
			if sig == "" {
				sig = p.Signature
			}
		case llm.PartImage:
			b, err := imageBlob(p.Image, mi, pi)
			if err != nil {
				return nil, err
			}
			parts = append(parts, part{InlineData: b})
		default:
			return nil, invalid("messages[%d].content[%d]: unsupported content part", mi, pi)
		}
	}
	first := len(parts)
	for ti := range m.ToolCalls {
		tc := &m.ToolCalls[ti]
		if tc.Name == "" {
			return nil, invalid("messages[%d].tool_calls[%d]: a function call needs a name", mi, ti)
		}
		args := bytes.TrimSpace([]byte(tc.Arguments))
		if len(args) == 0 {
			args = []byte("{}")
		}
		if args[0] != '{' || !json.Valid(args) {
			return nil, invalid("messages[%d].tool_calls[%d].function.arguments: must be a JSON object for Gemini", mi, ti)
		}
		parts = append(parts, part{FunctionCall: &functionCall{Name: tc.Name, Args: args}})
	}
	switch {
	case first < len(parts):
		// Gemini 3 checks the signature of a turn's first function call.
		if sig == "" {
			sig = dummySignature
		}
		parts[first].ThoughtSignature = sig
	case sig != "" && len(parts) > 0:
		parts[0].ThoughtSignature = sig
	}
	return parts, nil
}

// toolResponse returns a tool result's functionResponse.response: the
// result's text when it is a JSON object, else {"result": value} (or
// {"error": value} for a failure) where value is the text parsed as JSON
// when it is JSON, else the text as a string.
func toolResponse(m *llm.Message) json.RawMessage {
	var text []byte
	for _, p := range m.Content {
		if p.Type == llm.PartText {
			text = append(text, p.Text...)
		}
	}
	t := bytes.TrimSpace(text)
	if !m.IsError && len(t) > 0 && t[0] == '{' && json.Valid(t) {
		return t
	}
	key := `{"result":`
	if m.IsError {
		key = `{"error":`
	}
	out := []byte(key)
	if len(t) > 0 && json.Valid(t) {
		out = append(out, t...)
	} else {
		s, _ := json.Marshal(string(text)) // never fails on a string; invalid UTF-8 becomes U+FFFD
		out = append(out, s...)
	}
	return append(out, '}')
}

// clipID bounds an echoed client value in an error message.
func clipID(s string) string {
	if len(s) > 64 {
		s = s[:64] + "…"
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

// itoa is strconv.Itoa, named for the decoders' generated ids.
func itoa(n int) string { return strconv.Itoa(n) }

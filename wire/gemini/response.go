package gemini

import (
	"bytes"
	"encoding/json"
	"net/http"

	"github.com/sluice-ai/sluice/llm"
)

// Answer body types: only what the decoders read.
type (
	response struct {
		body
		ModelVersion string `json:"modelVersion"`
		ResponseID   string `json:"responseId"`
	}
	// body is a response without its ids, which a stream decoder reads
	// from the first event only.
	body struct {
		Candidates     []candidate `json:"candidates"`
		PromptFeedback *struct {
			BlockReason string `json:"blockReason"`
		} `json:"promptFeedback"`
		UsageMetadata *usageMetadata `json:"usageMetadata"`
		Error         *apiError      `json:"error"`
	}
	candidate struct {
		Content *struct {
			Parts []respPart `json:"parts"`
		} `json:"content"`
		FinishReason string `json:"finishReason"`
		Index        *int   `json:"index"`
	}
	respPart struct {
		Text             *string `json:"text"`
		Thought          bool    `json:"thought"`
		ThoughtSignature string  `json:"thoughtSignature"`
		FunctionCall     *struct {
			ID   string          `json:"id"`
			Name string          `json:"name"`
			Args json.RawMessage `json:"args"`
		} `json:"functionCall"`
	}
	usageMetadata struct {
		PromptTokenCount        int64 `json:"promptTokenCount"`
		CandidatesTokenCount    int64 `json:"candidatesTokenCount"`
		ThoughtsTokenCount      int64 `json:"thoughtsTokenCount"`
		CachedContentTokenCount int64 `json:"cachedContentTokenCount"`
		ToolUsePromptTokenCount int64 `json:"toolUsePromptTokenCount"`
	}
	// apiError is Google's error object: {"code","message","status"}.
	apiError struct {
		Code    json.RawMessage `json:"code"`
		Message string          `json:"message"`
		Status  string          `json:"status"`
	}
)

// DecodeResponse decodes a generateContent answer. Each candidate becomes
// a choice: text parts its text, thought parts its thinking (a part's
// thoughtSignature a thinking part's Signature), functionCall parts its
// tool calls (id "call_<n>" when Gemini gives none). A prompt blocked by
// promptFeedback.blockReason is one choice finished by content_filter.
// An error object in the body is returned as an error with the status it
// names.
func DecodeResponse(body []byte) (*llm.ChatResponse, *llm.Error) {
	var r response
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, llm.Errorf(llm.KindUpstream, "upstream sent an answer that is not valid Gemini JSON")
	}
	if r.Error != nil {
		return nil, r.Error.toError()
	}
	if len(r.Candidates) > MaxCandidates {
		return nil, llm.Errorf(llm.KindUpstream, "upstream sent more than %d candidates", MaxCandidates)
	}
	out := &llm.ChatResponse{ID: r.ResponseID, Model: r.ModelVersion}
	if r.UsageMetadata != nil {
		out.Usage, out.UsageKnown = r.UsageMetadata.usage(), true
	}
	if len(r.Candidates) == 0 {
		if r.PromptFeedback != nil && r.PromptFeedback.BlockReason != "" {
			out.Choices = []llm.Choice{{Message: llm.Message{Role: llm.RoleAssistant}, FinishReason: llm.FinishContentFilter}}
			return out, nil
		}
		return nil, llm.Errorf(llm.KindUpstream, "upstream sent an answer without candidates")
	}
	calls := 0
	for i := range r.Candidates {
		c := &r.Candidates[i]
		ch := llm.Choice{Index: i, Message: llm.Message{Role: llm.RoleAssistant}}
		if c.Content != nil {
			if len(c.Content.Parts) > MaxParts {
				return nil, llm.Errorf(llm.KindUpstream, "upstream sent more than %d parts in a candidate", MaxParts)
			}
			for j := range c.Content.Parts {
				p := &c.Content.Parts[j]
				if p.ThoughtSignature != "" && !(p.Thought && p.Text != nil) {
					ch.Message.Content = append(ch.Message.Content, llm.Part{Type: llm.PartThinking, Signature: p.ThoughtSignature})
				}
				switch {
				case p.FunctionCall != nil:
					if len(ch.Message.ToolCalls) >= MaxToolCalls {
						return nil, llm.Errorf(llm.KindUpstream, "upstream sent more than %d function calls in a candidate", MaxToolCalls)
					}
					id := p.FunctionCall.ID
					if id == "" {
						id = "call_" + itoa(calls)
					}
					calls++
					ch.Message.ToolCalls = append(ch.Message.ToolCalls, llm.ToolCall{ID: id, Name: p.FunctionCall.Name, Arguments: argsText(p.FunctionCall.Args)})
				case p.Text != nil && p.Thought:
					ch.Message.Content = append(ch.Message.Content, llm.Part{Type: llm.PartThinking, Text: *p.Text, Signature: p.ThoughtSignature})
				case p.Text != nil && *p.Text != "":
					// Adjacent text parts stay apart (joining them here would
					// copy quadratically); encoders concatenate text parts.
					ch.Message.Content = append(ch.Message.Content, llm.Part{Type: llm.PartText, Text: *p.Text})
				}
			}
		}
		ch.FinishReason = finishReason(c.FinishReason, len(ch.Message.ToolCalls) > 0)
		if ch.FinishReason == "" {
			ch.FinishReason = llm.FinishStop
		}
		out.Choices = append(out.Choices, ch)
	}
	return out, nil
}

// argsText returns a function call's args as JSON text ("{}" when absent).
func argsText(a json.RawMessage) string {
	a = bytes.TrimSpace(a)
	if len(a) == 0 || string(a) == "null" {
		return "{}"
	}
	return string(a)
}

// finishReason maps Gemini's finishReason to the neutral one ("" for none).
func finishReason(r string, toolCalls bool) string {
	switch r {
	case "":
		return ""
	case "STOP":
		if toolCalls {
			return llm.FinishToolCalls
		}
		return llm.FinishStop
	case "MAX_TOKENS":
		return llm.FinishLength
	case "SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY", "LANGUAGE":
		return llm.FinishContentFilter
	}
	// MALFORMED_FUNCTION_CALL, OTHER, FINISH_REASON_UNSPECIFIED, new ones.
	if toolCalls {
		return llm.FinishToolCalls
	}
	return llm.FinishStop
}

// usage normalises usageMetadata: thoughts are output tokens Gemini counts
// apart from candidates, tool-use prompt tokens are input it counts apart
// from the prompt; cached content is already part of the prompt. Negative
// counts are clamped to 0.
func (u *usageMetadata) usage() llm.Usage {
	var out llm.Usage
	n := func(v int64) int {
		if v < 0 {
			out.Clamped = true
			return 0
		}
		if v > 1<<40 {
			out.Clamped = true
			return 1 << 40
		}
		return int(v)
	}
	out.PromptTokens = n(u.PromptTokenCount) + n(u.ToolUsePromptTokenCount)
	out.CacheReadTokens = min(n(u.CachedContentTokenCount), out.PromptTokens)
	out.ReasoningTokens = n(u.ThoughtsTokenCount)
	out.CompletionTokens = n(u.CandidatesTokenCount) + out.ReasoningTokens
	return out
}

// toError turns Google's error object into a gateway error carrying the
// HTTP status it names (its numeric code, else its status text).
func (e *apiError) toError() *llm.Error {
	code := 0
	if c := bytes.TrimSpace(e.Code); len(c) > 0 && c[0] >= '0' && c[0] <= '9' && len(c) <= 3 {
		for _, d := range c {
			if d < '0' || d > '9' {
				code = 0
				break
			}
			code = code*10 + int(d-'0')
		}
	}
	if code < 400 || code > 599 {
		code = statusCode(e.Status)
	}
	return ErrorFor(code, e.Status, e.Message)
}

// ErrorFor builds the gateway error for a Google error of HTTP status
// code, status text (INVALID_ARGUMENT, RESOURCE_EXHAUSTED…) and message:
// UpstreamStatus is code; the client gets code for 4xx other than the
// credential ones (the provider wrapper reports those) and for 5xx; Code
// keeps the status text.
func ErrorFor(code int, status, message string) *llm.Error {
	var e *llm.Error
	switch {
	case code == http.StatusTooManyRequests:
		e = llm.Errorf(llm.KindRateLimited, "%s", message)
	case code >= 400 && code < 500:
		e = llm.Errorf(llm.KindInvalidRequest, "%s", message)
		e.Code = ""
	default:
		e = llm.Errorf(llm.KindUpstream, "%s", message)
		if code < 500 || code > 599 {
			code = http.StatusBadGateway
		}
	}
	e.Kind = llm.KindUpstream
	e.Status, e.UpstreamStatus = code, code
	if status != "" {
		e.Code = status
	}
	return e
}

// statusCode maps a google.rpc.Code name to its HTTP status.
func statusCode(s string) int {
	switch s {
	case "INVALID_ARGUMENT", "FAILED_PRECONDITION", "OUT_OF_RANGE":
		return http.StatusBadRequest
	case "UNAUTHENTICATED":
		return http.StatusUnauthorized
	case "PERMISSION_DENIED":
		return http.StatusForbidden
	case "NOT_FOUND":
		return http.StatusNotFound
	case "ALREADY_EXISTS", "ABORTED":
		return http.StatusConflict
	case "RESOURCE_EXHAUSTED":
		return http.StatusTooManyRequests
	case "CANCELLED":
		return 499
	case "UNIMPLEMENTED":
		return http.StatusNotImplemented
	case "UNAVAILABLE":
		return http.StatusServiceUnavailable
	case "DEADLINE_EXCEEDED":
		return http.StatusGatewayTimeout
	}
	return http.StatusInternalServerError
}

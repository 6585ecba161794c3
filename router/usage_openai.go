package router

import (
	"bytes"
	"encoding/json"
	"strings"

	"github.com/sluice-ai/sluice/llm"

	"github.com/sluice-ai/sluice/wire/jsonspan"
)

// OpenAI response parsing: usage, stream chunk members and generated text.
// It moves behind a wire codec (wire/openai) with the providers issue.

// wireUsage is OpenAI's usage object.
type wireUsage struct {
	PromptTokens        tokenCount `json:"prompt_tokens"`
	CompletionTokens    tokenCount `json:"completion_tokens"`
	PromptTokensDetails *struct {
		CachedTokens tokenCount `json:"cached_tokens"`
	} `json:"prompt_tokens_details"`
	CompletionTokensDetails *struct {
		ReasoningTokens tokenCount `json:"reasoning_tokens"`
	} `json:"completion_tokens_details"`
}

// parseUsage decodes an OpenAI usage value; ok is false when absent or null.
// The counts are as reported: the attempt phase sanitises them.
func parseUsage(raw []byte) (llm.Usage, bool) {
	if len(raw) == 0 || raw[0] != '{' {
		return llm.Usage{}, false
	}
	var w wireUsage
	if json.Unmarshal(raw, &w) != nil {
		return llm.Usage{}, false
	}
	u := llm.Usage{PromptTokens: int(w.PromptTokens), CompletionTokens: int(w.CompletionTokens)}
	if w.PromptTokensDetails != nil {
		u.CacheReadTokens = int(w.PromptTokensDetails.CachedTokens)
	}
	if w.CompletionTokensDetails != nil {
		u.ReasoningTokens = int(w.CompletionTokensDetails.ReasoningTokens)
	}
	return u, true
}

// chunkMembers returns the error, usage and choices values of a stream
// chunk or a plain answer in one scan of its top level (the first of
// duplicates); ok is false when the chunk is not a
// JSON object (cut short, or anything else).
func chunkMembers(b []byte) (errV, usageV, choicesV []byte, ok bool) {
	end, err := eachMember(b, func(k []byte, vs, ve int) error {
		// A member sent twice counts once, first wins, as member reads
		// it: a stream and a plain answer read the same usage.
		switch string(k) {
		case "error":
			if errV == nil {
				errV = b[vs:ve]
			}
		case "usage":
			if usageV == nil {
				usageV = b[vs:ve]
			}
		case "choices":
			if choicesV == nil {
				choicesV = b[vs:ve]
			}
		}
		return nil
	})
	ok = err == nil && jsonspan.SkipWS(b, end+1) == len(b)
	return
}

// emptyChoices reports whether a choices value is absent, null or [].
func emptyChoices(raw []byte) bool {
	if len(raw) == 0 || string(raw) == "null" {
		return true
	}
	if raw[0] != '[' {
		return false
	}
	return jsonspan.SkipWS(raw, 1) < len(raw) && raw[jsonspan.SkipWS(raw, 1)] == ']'
}

// hasFinishReason reports whether a choices value carries a non-null
// finish_reason: the chunk that ends a generation. Inside JSON strings a
// quote is always escaped, so the member name cannot match string content.
func hasFinishReason(choices []byte) bool {
	const key = `"finish_reason"`
	for len(choices) > 0 {
		i := bytes.Index(choices, []byte(key))
		if i < 0 {
			return false
		}
		choices = choices[i+len(key):]
		j := jsonspan.SkipWS(choices, 0)
		if j < len(choices) && choices[j] == ':' {
			j = jsonspan.SkipWS(choices, j+1)
			if j < len(choices) && choices[j] != 'n' { // not null
				return true
			}
		}
	}
	return false
}

// appendDeltaText appends the text of streamed choices (delta.content for
// chat, text for completions).
func appendDeltaText(b []byte, choices []byte) []byte {
	if len(choices) < 2 || choices[0] != '[' {
		return b
	}
	var cs []struct {
		Delta struct {
			Content string `json:"content"`
		} `json:"delta"`
		Text string `json:"text"`
	}
	if json.Unmarshal(choices, &cs) != nil {
		return b
	}
	for _, c := range cs {
		b = append(b, c.Delta.Content...)
		b = append(b, c.Text...)
	}
	return b
}

// completionText returns the generated text of a non-streamed response.
func completionText(body []byte) string {
	var r struct {
		Choices []struct {
			Message struct {
				Content string `json:"content"`
			} `json:"message"`
			Text string `json:"text"`
		} `json:"choices"`
	}
	if json.Unmarshal(body, &r) != nil {
		return ""
	}
	var sb strings.Builder
	for _, c := range r.Choices {
		sb.WriteString(c.Message.Content)
		sb.WriteString(c.Text)
	}
	return sb.String()
}

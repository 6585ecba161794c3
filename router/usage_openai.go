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

// parseUsage reads an OpenAI usage value; ok is false when absent, null,
// not an object or carrying a count that is not a number (the tokens are
// then estimated). Counts are read with tokenCount (saturating) from the
// value's spans, without reflection: the attempt phase sanitises them.
// Member names match exactly; a repeated member's last value wins, as
// encoding/json would have it.
func parseUsage(raw []byte) (llm.Usage, bool) {
	if len(raw) == 0 || raw[0] != '{' {
		return llm.Usage{}, false
	}
	var u llm.Usage
	count := func(dst *int, v []byte) error {
		var t tokenCount
		if err := t.UnmarshalJSON(v); err != nil {
			return err
		}
		*dst = int(t)
		return nil
	}
	detail := func(v []byte, name string, dst *int) error {
		*dst = 0
		if string(v) == "null" {
			return nil
		}
		if len(v) == 0 || v[0] != '{' {
			return errNotCount
		}
		_, err := jsonspan.EachMember(v, func(k []byte, vs, ve int) error {
			if string(k) == name {
				return count(dst, v[vs:ve])
			}
			return nil
		})
		return err
	}
	_, err := jsonspan.EachMember(raw, func(k []byte, vs, ve int) error {
		v := raw[vs:ve]
		switch string(k) {
		case "prompt_tokens":
			return count(&u.PromptTokens, v)
		case "completion_tokens":
			return count(&u.CompletionTokens, v)
		case "prompt_tokens_details":
			return detail(v, "cached_tokens", &u.CacheReadTokens)
		case "completion_tokens_details":
			return detail(v, "reasoning_tokens", &u.ReasoningTokens)
		}
		return nil
	})
	if err != nil {
		return llm.Usage{}, false
	}
	return u, true
}

// chunkMembers returns the error, usage and choices values of a stream
// chunk or a plain answer in one scan of its top level (the first of
// duplicates); ok is false when the chunk is not a
// JSON object (cut short, or anything else).
func chunkMembers(b []byte) (errV, usageV, choicesV []byte, ok bool) {
	end, err := jsonspan.EachMember(b, func(k []byte, vs, ve int) error {
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

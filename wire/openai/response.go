package openai

import (
	"bytes"
	"encoding/json"

	"github.com/sluice-ai/sluice/llm"
	"github.com/sluice-ai/sluice/wire/jsonspan"
)

type rawResponse struct {
	ID      json.RawMessage `json:"id"`
	Model   json.RawMessage `json:"model"`
	Created json.RawMessage `json:"created"`
	Choices json.RawMessage `json:"choices"`
	Usage   json.RawMessage `json:"usage"`
	Error   json.RawMessage `json:"error"`
}

type rawChoice struct {
	Index        json.RawMessage `json:"index"`
	Message      json.RawMessage `json:"message"`
	FinishReason json.RawMessage `json:"finish_reason"`
}

type rawAnswer struct {
	Content          json.RawMessage `json:"content"`
	Refusal          json.RawMessage `json:"refusal"`
	ReasoningContent json.RawMessage `json:"reasoning_content"`
	Reasoning        json.RawMessage `json:"reasoning"`
	ToolCalls        json.RawMessage `json:"tool_calls"`
}

// DecodeChatResponse decodes an OpenAI chat.completion answer into neutral
// form. An error member that says an error happened (an object or a
// non-empty string) is returned as a KindUpstream error, with
// UpstreamStatus when its code or status is a plausible HTTP status. At
// most MaxChoices choices and MaxToolCalls tool calls per choice are
// accepted; reasoning_content (or reasoning) becomes a thinking part.
func DecodeChatResponse(body []byte) (*llm.ChatResponse, *llm.Error) {
	var in rawResponse
	if b := bytes.TrimSpace(body); len(b) == 0 || b[0] != '{' || json.Unmarshal(b, &in) != nil {
		return nil, malformed("upstream sent a chat answer that is not a JSON object")
	}
	if isErrorValue(in.Error) {
		return nil, InbandError(in.Error)
	}
	r := &llm.ChatResponse{}
	var sc []byte
	r.ID = rawStr(in.ID, &sc)
	r.Model = rawStr(in.Model, &sc)
	if n, ok := count(in.Created); ok && n > 0 {
		r.Created = int64(n)
	}
	var choices []json.RawMessage
	if !isNull(in.Choices) {
		if in.Choices[0] != '[' || json.Unmarshal(in.Choices, &choices) != nil {
			return nil, malformed("upstream sent choices that are not an array")
		}
	}
	if len(choices) > MaxChoices {
		return nil, malformed("upstream sent more than %d choices", MaxChoices)
	}
	seen := [MaxChoices]bool{}
	for i, c := range choices {
		var rc rawChoice
		if len(c) == 0 || c[0] != '{' || json.Unmarshal(c, &rc) != nil {
			return nil, malformed("upstream sent a choice that is not an object")
		}
		ch := llm.Choice{Index: i}
		if !isNull(rc.Index) {
			n, ok := index(rc.Index, MaxChoices)
			if !ok {
				return nil, malformed("upstream sent a choice index out of range")
			}
			ch.Index = n
		}
		if seen[ch.Index] {
			return nil, malformed("upstream sent choice %d twice", ch.Index)
		}
		seen[ch.Index] = true
		ch.FinishReason = finishReason(rawStr(rc.FinishReason, &sc))
		var m rawAnswer
		if !isNull(rc.Message) && (rc.Message[0] != '{' || json.Unmarshal(rc.Message, &m) != nil) {
			return nil, malformed("upstream sent a message that is not an object")
		}
		ch.Message.Role = llm.RoleAssistant
		if t := rawStr(m.ReasoningContent, &sc); t != "" {
			ch.Message.Content = append(ch.Message.Content, llm.Part{Type: llm.PartThinking, Text: t})
		} else if t := rawStr(m.Reasoning, &sc); t != "" {
			ch.Message.Content = append(ch.Message.Content, llm.Part{Type: llm.PartThinking, Text: t})
		}
		text := rawStr(m.Content, &sc)
		if text == "" && len(m.Content) > 0 && m.Content[0] == '[' {
			text = textParts(m.Content)
		}
		if text == "" {
			text = rawStr(m.Refusal, &sc)
		}
		if text != "" {
			ch.Message.Content = append(ch.Message.Content, llm.Part{Type: llm.PartText, Text: text})
		}
		if !isNull(m.ToolCalls) {
			var calls []json.RawMessage
			if m.ToolCalls[0] != '[' || json.Unmarshal(m.ToolCalls, &calls) != nil {
				return nil, malformed("upstream sent tool_calls that are not an array")
			}
			if len(calls) > MaxToolCalls {
				return nil, malformed("upstream sent more than %d tool calls", MaxToolCalls)
			}
			for _, c := range calls {
				var tc rawToolCall
				var f rawFunction
				if len(c) == 0 || c[0] != '{' || json.Unmarshal(c, &tc) != nil ||
					(!isNull(tc.Function) && (tc.Function[0] != '{' || json.Unmarshal(tc.Function, &f) != nil)) {
					return nil, malformed("upstream sent a tool call that is not an object")
				}
				ch.Message.ToolCalls = append(ch.Message.ToolCalls, llm.ToolCall{
					ID: rawStr(tc.ID, &sc), Name: rawStr(f.Name, &sc), Arguments: rawArgs(f.Arguments, &sc)})
			}
		}
		r.Choices = append(r.Choices, ch)
	}
	if !isNull(in.Usage) {
		u, ok := decodeUsage(in.Usage)
		r.Usage, r.UsageKnown = u, ok
	}
	return r, nil
}

// rawStr is a JSON string's value, or "" for anything else.
func rawStr(v []byte, scratch *[]byte) string {
	if len(v) == 0 || v[0] != '"' {
		return ""
	}
	s, _ := unquote(v, scratch)
	return s
}

// rawArgs is a tool call's arguments: a string as sent, or (from servers
// that send an object) the JSON text of the value.
func rawArgs(v []byte, scratch *[]byte) string {
	if len(v) > 0 && (v[0] == '{' || v[0] == '[') {
		return string(v)
	}
	return rawStr(v, scratch)
}

// textParts joins the text of an array of content parts.
func textParts(v []byte) string {
	var parts []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	if json.Unmarshal(v, &parts) != nil {
		return ""
	}
	var b []byte
	for _, p := range parts {
		if p.Type == "text" || p.Type == "" {
			b = append(b, p.Text...)
		}
	}
	return string(b)
}

// finishReason maps an upstream finish reason to the neutral one:
// OpenAI's own names as they are, the legacy function_call as tool_calls,
// none as "", and anything else (eos, end_turn…) as stop.
func finishReason(s string) string {
	switch s {
	case "", llm.FinishStop, llm.FinishLength, llm.FinishToolCalls, llm.FinishContentFilter:
		return s
	case "function_call":
		return llm.FinishToolCalls
	}
	return llm.FinishStop
}

// decodeUsage reads an OpenAI usage object. ok is false when it is not
// an object or a count in it is not a number (the router then estimates).
func decodeUsage(v []byte) (llm.Usage, bool) {
	var u llm.Usage
	ok := true
	_, err := jsonspan.EachMember(v, func(key []byte, vs, ve int) error {
		val := v[vs:ve]
		switch string(key) {
		case "prompt_tokens":
			u.PromptTokens, ok = countAnd(val, ok)
		case "completion_tokens":
			u.CompletionTokens, ok = countAnd(val, ok)
		case "prompt_tokens_details":
			if len(val) > 0 && val[0] == '{' {
				_, _ = jsonspan.EachMember(val, func(k []byte, s, e int) error {
					if string(k) == "cached_tokens" {
						u.CacheReadTokens, ok = countAnd(val[s:e], ok)
					}
					return nil
				})
			}
		case "completion_tokens_details":
			if len(val) > 0 && val[0] == '{' {
				_, _ = jsonspan.EachMember(val, func(k []byte, s, e int) error {
					if string(k) == "reasoning_tokens" {
						u.ReasoningTokens, ok = countAnd(val[s:e], ok)
					}
					return nil
				})
			}
		}
		return nil
	})
	return u, ok && err == nil
}

func countAnd(v []byte, ok bool) (int, bool) {
	n, good := count(v)
	return n, ok && good
}

// AppendChatResponse appends r as an OpenAI chat.completion object. Each
// choice's message has its text parts joined as content (null when the
// message only calls tools), its thinking as reasoning_content and its
// tool calls. usage is always written, as OpenAI does for a non-streamed
// answer (include_usage concerns streams only), so the function has no
// includeUsage parameter and fits the router's response codec as it is.
func AppendChatResponse(dst []byte, r *llm.ChatResponse) []byte {
	b := append(dst, `{"id":`...)
	b = appendString(b, r.ID)
	b = append(b, `,"object":"chat.completion","created":`...)
	b = appendInt(b, r.Created)
	b = append(b, `,"model":`...)
	b = appendString(b, r.Model)
	b = append(b, `,"choices":[`...)
	for i := range r.Choices {
		c := &r.Choices[i]
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"index":`...)
		b = appendInt(b, int64(c.Index))
		b = append(b, `,"message":{"role":"assistant","content":`...)
		text, thinking := false, false
		for _, p := range c.Message.Content {
			text = text || p.Type == llm.PartText
			thinking = thinking || (p.Type == llm.PartThinking && p.Text != "")
		}
		switch {
		case text:
			b = appendJoined(b, c.Message.Content, llm.PartText)
		case len(c.Message.ToolCalls) > 0:
			b = append(b, "null"...)
		default:
			b = append(b, `""`...)
		}
		if thinking {
			b = append(b, `,"reasoning_content":`...)
			b = appendJoined(b, c.Message.Content, llm.PartThinking)
		}
		if len(c.Message.ToolCalls) > 0 {
			b = append(b, `,"tool_calls":[`...)
			for j, tc := range c.Message.ToolCalls {
				if j > 0 {
					b = append(b, ',')
				}
				b = appendToolCall(b, tc, j)
			}
			b = append(b, ']')
		}
		b = append(b, `},"logprobs":null,"finish_reason":`...)
		fr := c.FinishReason
		if fr == "" {
			fr = llm.FinishStop
		}
		b = append(appendString(b, fr), '}')
	}
	b = append(b, ']')
	b = append(b, `,"usage":`...)
	b = appendUsage(b, r.Usage)
	return append(b, '}')
}

// appendJoined appends the text of the parts of type t as one string.
func appendJoined(b []byte, parts []llm.Part, t llm.PartType) []byte {
	n := 0
	for _, p := range parts {
		if p.Type == t {
			n++
		}
	}
	if n == 1 {
		for _, p := range parts {
			if p.Type == t {
				return appendString(b, p.Text)
			}
		}
	}
	var s []byte
	for _, p := range parts {
		if p.Type == t {
			s = append(s, p.Text...)
		}
	}
	return appendString(b, string(s))
}

// appendUsage appends u as an OpenAI usage object.
func appendUsage(b []byte, u llm.Usage) []byte {
	b = append(b, `{"prompt_tokens":`...)
	b = appendInt(b, int64(u.PromptTokens))
	b = append(b, `,"completion_tokens":`...)
	b = appendInt(b, int64(u.CompletionTokens))
	b = append(b, `,"total_tokens":`...)
	b = appendInt(b, int64(u.PromptTokens)+int64(u.CompletionTokens))
	b = append(b, `,"prompt_tokens_details":{"cached_tokens":`...)
	b = appendInt(b, int64(u.CacheReadTokens))
	b = append(b, `},"completion_tokens_details":{"reasoning_tokens":`...)
	b = appendInt(b, int64(u.ReasoningTokens))
	return append(b, "}}"...)
}

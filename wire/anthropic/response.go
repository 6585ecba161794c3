package anthropic

import (
	"bytes"
	"encoding/json"
	"strconv"

	"github.com/sluice-ai/sluice/llm"
	"github.com/sluice-ai/sluice/wire/jsonspan"
)

// wireUsage is Anthropic's usage object, as reported.
type wireUsage struct {
	input, output, cacheRead, cacheWrite int
	thinking                             int // output_tokens_details.thinking_tokens
	known                                bool
}

// merge reads the members of the usage object b into u: each member
// present replaces the figure (message_delta usage is cumulative).
func (u *wireUsage) merge(b []byte) {
	for it := newMembers(b); it.next(); {
		var dst *int
		switch string(it.key) {
		case "input_tokens":
			dst = &u.input
		case "output_tokens":
			dst = &u.output
		case "cache_read_input_tokens":
			dst = &u.cacheRead
		case "cache_creation_input_tokens":
			dst = &u.cacheWrite
		case "output_tokens_details":
			// {"thinking_tokens":N}: the part of output_tokens spent thinking.
			for d := newMembers(it.val); d.next(); {
				if string(d.key) == "thinking_tokens" {
					if n, ok := parseInt(d.val); ok {
						u.thinking = n
					}
				}
			}
			continue
		default:
			continue
		}
		if n, ok := parseInt(it.val); ok {
			*dst = n
			u.known = true
		}
	}
}

// neutral returns the usage in neutral form: PromptTokens counts cache
// reads and writes too.
func (u *wireUsage) neutral() llm.Usage {
	return llm.Usage{
		PromptTokens:     satAdd(satAdd(u.input, u.cacheRead), u.cacheWrite),
		CompletionTokens: u.output,
		CacheReadTokens:  u.cacheRead,
		CacheWriteTokens: u.cacheWrite,
		ReasoningTokens:  u.thinking,
	}
}

func satAdd(a, b int) int {
	if s := a + b; (b > 0 && s < a) || (b < 0 && s > a) {
		if b > 0 {
			return int(^uint(0) >> 1)
		}
		return -int(^uint(0)>>1) - 1
	}
	return a + b
}

// appendUsage appends a neutral usage as Anthropic's usage object
// (input_tokens without the cache parts).
func appendUsage(dst []byte, u llm.Usage) []byte {
	in := max(u.PromptTokens-u.CacheReadTokens-u.CacheWriteTokens, 0)
	dst = append(dst, `{"input_tokens":`...)
	dst = strconv.AppendInt(dst, int64(in), 10)
	dst = append(dst, `,"cache_creation_input_tokens":`...)
	dst = strconv.AppendInt(dst, int64(max(u.CacheWriteTokens, 0)), 10)
	dst = append(dst, `,"cache_read_input_tokens":`...)
	dst = strconv.AppendInt(dst, int64(max(u.CacheReadTokens, 0)), 10)
	dst = append(dst, `,"output_tokens":`...)
	dst = strconv.AppendInt(dst, int64(max(u.CompletionTokens, 0)), 10)
	return append(dst, '}')
}

// ResponseUsage reads the usage of a non-streamed Messages answer, in
// neutral form. ok is false when the body reports none.
func ResponseUsage(body []byte) (llm.Usage, bool) {
	vs, ve, ok := member(body, "usage")
	if !ok || ve <= vs || body[vs] != '{' {
		return llm.Usage{}, false
	}
	var u wireUsage
	u.merge(body[vs:ve])
	return u.neutral(), u.known
}

// stopReason maps an Anthropic stop_reason to a neutral finish reason.
func stopReason(s string) string {
	switch s {
	case "max_tokens", "model_context_window_exceeded":
		return llm.FinishLength
	case "tool_use":
		return llm.FinishToolCalls
	case "refusal":
		return llm.FinishContentFilter
	}
	return llm.FinishStop // end_turn, stop_sequence, pause_turn and unknown ones
}

// anthropicStop maps a neutral finish reason to a stop_reason.
func anthropicStop(f string) string {
	switch f {
	case llm.FinishLength:
		return "max_tokens"
	case llm.FinishToolCalls:
		return "tool_use"
	case llm.FinishContentFilter:
		return "refusal"
	}
	return "end_turn"
}

// AppendResponse appends a neutral answer as a Messages answer. Only
// choice 0 is rendered (Messages has no n). Tool call arguments that are
// not a JSON object are rendered as {} (the input must be an object).
func AppendResponse(dst []byte, r *llm.ChatResponse) []byte {
	dst = append(dst, `{"id":`...)
	dst = appendString(dst, r.ID)
	dst = append(dst, `,"type":"message","role":"assistant","model":`...)
	dst = appendString(dst, r.Model)
	dst = append(dst, `,"content":[`...)
	finish := ""
	if len(r.Choices) > 0 {
		c := &r.Choices[0]
		finish = c.FinishReason
		n := 0
		for j := range c.Message.Content {
			p := &c.Message.Content[j]
			if p.Type == llm.PartImage || (p.Type == llm.PartText && p.Text == "" && len(c.Message.Content) > 1) {
				continue
			}
			if n > 0 {
				dst = append(dst, ',')
			}
			n++
			dst, _ = appendPart(dst, p, 0)
		}
		for j := range c.Message.ToolCalls {
			tc := &c.Message.ToolCalls[j]
			if n > 0 {
				dst = append(dst, ',')
			}
			n++
			dst = append(dst, `{"type":"tool_use","id":`...)
			dst = appendString(dst, toolID(tc.ID, r.ID, j))
			dst = append(dst, `,"name":`...)
			dst = appendString(dst, tc.Name)
			dst = append(dst, `,"input":`...)
			dst = appendInput(dst, tc.Arguments)
			dst = append(dst, '}')
		}
		if finish == "" && len(c.Message.ToolCalls) > 0 {
			finish = llm.FinishToolCalls
		}
	}
	dst = append(dst, `],"stop_reason":"`...)
	dst = append(dst, anthropicStop(finish)...)
	dst = append(dst, `","stop_sequence":null,"usage":`...)
	dst = appendUsage(dst, r.Usage)
	return append(dst, '}')
}

// appendInput appends tool call arguments as an input object: {} when
// they are not one.
func appendInput(dst []byte, args string) []byte {
	a := bytes.TrimSpace([]byte(args))
	if len(a) > 0 && a[0] == '{' && jsonspan.Valid(a) {
		return append(dst, a...)
	}
	return append(dst, "{}"...)
}

// toolID returns id, or one made from the message id when the upstream
// gave none.
func toolID(id, msgID string, i int) string {
	if id != "" {
		return id
	}
	return "toolu_" + msgID + "_" + strconv.Itoa(i)
}

// wireResponse is the part of a Messages answer the codec reads.
type wireResponse struct {
	ID         string            `json:"id"`
	Type       string            `json:"type"`
	Model      string            `json:"model"`
	Content    []json.RawMessage `json:"content"`
	StopReason *string           `json:"stop_reason"`
	Usage      json.RawMessage   `json:"usage"`
	Error      *struct {
		Type    string `json:"type"`
		Message string `json:"message"`
	} `json:"error"`
}

// DecodeResponse decodes a non-streamed Messages answer. An error object
// in the body is an error with the status its type implies.
func DecodeResponse(body []byte) (*llm.ChatResponse, *llm.Error) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 || body[0] != '{' {
		return nil, llm.Errorf(llm.KindUpstream, "upstream sent an answer that is not a JSON object")
	}
	if vs, ve, ok := member(body, "content"); ok && body[vs] == '[' && countElems(body[vs:ve]) > MaxBlocks {
		return nil, llm.Errorf(llm.KindUpstream, "upstream sent more than %d content blocks", MaxBlocks)
	}
	var w wireResponse
	if err := json.Unmarshal(body, &w); err != nil {
		e := llm.Errorf(llm.KindUpstream, "upstream sent an answer the gateway cannot read")
		e.Err = err
		return nil, e
	}
	if w.Type == "error" || (w.Error != nil && w.Type != "message") {
		if w.Error == nil {
			return nil, upstreamErr("api_error", "")
		}
		return nil, upstreamErr(w.Error.Type, w.Error.Message)
	}
	r := &llm.ChatResponse{ID: w.ID, Model: w.Model}
	c := llm.Choice{Message: llm.Message{Role: llm.RoleAssistant}}
	for _, raw := range w.Content {
		var b wireBlock
		if err := json.Unmarshal(raw, &b); err != nil {
			e := llm.Errorf(llm.KindUpstream, "upstream sent a content block the gateway cannot read")
			e.Err = err
			return nil, e
		}
		switch b.Type {
		case "text":
			c.Message.Content = append(c.Message.Content, llm.Part{Type: llm.PartText, Text: b.Text})
		case "thinking":
			c.Message.Content = append(c.Message.Content, llm.Part{Type: llm.PartThinking, Text: b.Thinking, Signature: b.Signature})
		case "redacted_thinking":
			c.Message.Content = append(c.Message.Content, llm.Part{Type: llm.PartThinking, Signature: b.Data})
		case "tool_use":
			if len(c.Message.ToolCalls) >= MaxToolCalls {
				return nil, llm.Errorf(llm.KindUpstream, "upstream sent more than %d tool calls", MaxToolCalls)
			}
			in := bytes.TrimSpace(b.Input)
			if isNull(in) {
				in = []byte("{}")
			}
			c.Message.ToolCalls = append(c.Message.ToolCalls, llm.ToolCall{ID: b.ID, Name: b.Name, Arguments: string(in)})
		}
		// Other blocks (server tool uses and results) have no neutral form.
	}
	if w.StopReason != nil {
		c.FinishReason = stopReason(*w.StopReason)
	} else {
		c.FinishReason = llm.FinishStop
	}
	r.Choices = []llm.Choice{c}
	if u := bytes.TrimSpace(w.Usage); len(u) > 0 && u[0] == '{' {
		var wu wireUsage
		wu.merge(u)
		r.Usage, r.UsageKnown = wu.neutral(), wu.known
	}
	return r, nil
}

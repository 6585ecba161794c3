package bedrock

import (
	"bytes"
	"encoding/json"
	"math"
	"net/http"

	"github.com/sluice-ai/sluice/llm"
)

// Bounds on what an answer may make the decoder keep.
const (
	// MaxContentBlocks bounds the content blocks of one answer.
	MaxContentBlocks = 4096
	// MaxToolCalls bounds the tool calls of one answer.
	MaxToolCalls = 128
	// maxTokenCount caps a token count an upstream reports.
	maxTokenCount = 1 << 40
)

// converseResponse is the part of a Converse answer the gateway reads.
type converseResponse struct {
	Output struct {
		Message *struct {
			Role    string         `json:"role"`
			Content []contentBlock `json:"content"`
		} `json:"message"`
	} `json:"output"`
	StopReason string      `json:"stopReason"`
	Usage      *tokenUsage `json:"usage"`
}

type contentBlock struct {
	Text             *string  `json:"text"`
	ToolUse          *toolUse `json:"toolUse"`
	ReasoningContent *struct {
		ReasoningText *struct {
			Text      string `json:"text"`
			Signature string `json:"signature"`
		} `json:"reasoningText"`
	} `json:"reasoningContent"`
}

type toolUse struct {
	ToolUseID string          `json:"toolUseId"`
	Name      string          `json:"name"`
	Input     json.RawMessage `json:"input"`
}

// tokenUsage is Bedrock's TokenUsage. Counts are read as numbers of any
// size and clamped.
type tokenUsage struct {
	InputTokens           *float64 `json:"inputTokens"`
	OutputTokens          *float64 `json:"outputTokens"`
	CacheReadInputTokens  *float64 `json:"cacheReadInputTokens"`
	CacheWriteInputTokens *float64 `json:"cacheWriteInputTokens"`
}

// usage normalises Bedrock's counts: Converse's inputTokens excludes the
// cache reads and writes it reports beside it (totalTokens is the sum of
// all four), so PromptTokens adds them up, as for Anthropic. Negative,
// fractional-NaN or absurd counts are clamped and marked.
func (t *tokenUsage) usage() llm.Usage {
	var u llm.Usage
	count := func(p *float64) int {
		if p == nil {
			return 0
		}
		v := *p
		switch {
		case math.IsNaN(v) || v < 0:
			u.Clamped = true
			return 0
		case v > maxTokenCount:
			u.Clamped = true
			return maxTokenCount
		}
		return int(v)
	}
	in, read, write := count(t.InputTokens), count(t.CacheReadInputTokens), count(t.CacheWriteInputTokens)
	u.PromptTokens = in + read + write
	u.CacheReadTokens, u.CacheWriteTokens = read, write
	u.CompletionTokens = count(t.OutputTokens)
	return u
}

// FinishReason maps a Bedrock stopReason to the neutral finish reason.
// Unknown reasons ("malformed_model_output"…) and the empty one are
// "stop".
func FinishReason(stop string) string {
	switch stop {
	case "max_tokens", "model_context_window_exceeded":
		return llm.FinishLength
	case "tool_use":
		return llm.FinishToolCalls
	case "guardrail_intervened", "content_filtered":
		return llm.FinishContentFilter
	}
	return llm.FinishStop
}

// DecodeConverseResponse decodes a Converse answer. Text, reasoning and
// tool-use blocks become the choice's parts and tool calls (tool inputs as
// JSON text); other blocks (images, citations) are skipped. The answer
// carries no id or model: the provider knows the model.
func DecodeConverseResponse(body []byte) (*llm.ChatResponse, *llm.Error) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 || body[0] != '{' {
		return nil, malformed("the answer is not a JSON object")
	}
	var cr converseResponse
	if err := json.Unmarshal(body, &cr); err != nil {
		return nil, malformed("the answer is not valid Converse JSON")
	}
	msg := cr.Output.Message
	if msg == nil {
		if m := errorMessage(body); m != "" {
			e := llm.Errorf(llm.KindUpstream, "%s", m)
			e.UpstreamStatus = http.StatusInternalServerError
			return nil, e
		}
		return nil, malformed("the answer has no output message")
	}
	if len(msg.Content) > MaxContentBlocks {
		return nil, malformed("the answer has too many content blocks")
	}
	ch := llm.Choice{Message: llm.Message{Role: llm.RoleAssistant}, FinishReason: FinishReason(cr.StopReason)}
	jsonAnswer := false
	for i := range msg.Content {
		b := &msg.Content[i]
		switch {
		case b.Text != nil:
			ch.Message.Content = append(ch.Message.Content, llm.Part{Type: llm.PartText, Text: *b.Text})
		case b.ToolUse != nil:
			if len(ch.Message.ToolCalls) == MaxToolCalls {
				return nil, malformed("the answer has too many tool calls")
			}
			args := string(bytes.TrimSpace(b.ToolUse.Input))
			if args == "" || args == "null" {
				args = "{}"
			}
			if b.ToolUse.Name == JSONResponseTool {
				// The emulated response format: the input is the answer.
				ch.Message.Content = append(ch.Message.Content, llm.Part{Type: llm.PartText, Text: args})
				jsonAnswer = true
				continue
			}
			ch.Message.ToolCalls = append(ch.Message.ToolCalls, llm.ToolCall{ID: b.ToolUse.ToolUseID, Name: b.ToolUse.Name, Arguments: args})
		case b.ReasoningContent != nil && b.ReasoningContent.ReasoningText != nil:
			rt := b.ReasoningContent.ReasoningText
			ch.Message.Content = append(ch.Message.Content, llm.Part{Type: llm.PartThinking, Text: rt.Text, Signature: rt.Signature})
		}
	}
	if jsonAnswer && len(ch.Message.ToolCalls) == 0 && ch.FinishReason == llm.FinishToolCalls {
		ch.FinishReason = llm.FinishStop
	}
	resp := &llm.ChatResponse{Choices: []llm.Choice{ch}}
	if cr.Usage != nil {
		resp.Usage, resp.UsageKnown = cr.Usage.usage(), true
	}
	return resp, nil
}

// errorMessage returns the message of an AWS error body ({"message"} or
// {"Message"}), "" when body is not one.
func errorMessage(body []byte) string {
	var e struct {
		Message  *string `json:"message"`
		Message2 *string `json:"Message"`
	}
	if json.Unmarshal(body, &e) != nil {
		return ""
	}
	if e.Message != nil {
		return *e.Message
	}
	if e.Message2 != nil {
		return *e.Message2
	}
	return ""
}

func malformed(what string) *llm.Error {
	e := llm.Errorf(llm.KindUpstream, "upstream sent an answer the gateway cannot read: %s", what)
	e.Code = "invalid_upstream_response"
	return e
}

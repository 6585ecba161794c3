package providers

import (
	"strings"

	"github.com/sluice-ai/sluice/llm"
)

// contextLengthPhrases are how upstreams word "the request exceeds the
// model's context window" when they send no code for it, lower-cased:
// OpenAI-compatible servers (vLLM, DeepSeek, Mistral: "maximum context
// length"), Anthropic ("prompt is too long", "exceed context limit"),
// Gemini ("exceeds the maximum number of tokens allowed"), Bedrock ("input
// is too long", "too many input tokens").
var contextLengthPhrases = []string{
	"maximum context length",
	"context length exceeded",
	"context_length_exceeded",
	"context window",
	"prompt is too long",
	"exceed context limit",
	"exceeds the maximum number of tokens",
	"input is too long",
	"too many input tokens",
}

// markContextLength normalises an upstream's context-window error to
// llm.CodeContextLengthExceeded, so the router can move the request to a
// model with a larger window: it is the one place providers' wordings are
// recognised. Only a 4xx (the upstream blamed the request) qualifies.
func markContextLength(e *llm.Error) {
	if e == nil || e.UpstreamStatus < 400 || e.UpstreamStatus > 499 || e.UpstreamStatus == 429 {
		return
	}
	if e.Code == llm.CodeContextLengthExceeded {
		return
	}
	msg := strings.ToLower(e.Message)
	for _, p := range contextLengthPhrases {
		if strings.Contains(msg, p) {
			e.Code = llm.CodeContextLengthExceeded
			return
		}
	}
}

package main

import (
	"bytes"
	"encoding/json"
	"strconv"
	"sync"
	"unicode/utf8"
)

// This file holds mockllm's own OpenAI wire types. They are deliberately
// independent of the gateway's providers/ package so that a misreading of the
// OpenAI format is not shared by the gateway and the mock that tests it.
//
// Request bodies are decoded with the light structs below (only the fields the
// mock needs). Hot responses (chat and text completions, chunks) are written
// with the append helpers at the end of this file; the response structs are
// used for the cold paths (models, embeddings in float form, errors, stats)
// and by the tests to decode what the mock sent.

// chatRequest is the subset of POST /v1/chat/completions that the mock reads.
type chatRequest struct {
	Model         string          `json:"model"`
	Messages      []chatMessage   `json:"messages"`
	Stream        bool            `json:"stream"`
	StreamOptions *streamOptions  `json:"stream_options"`
	Tools         []chatTool      `json:"tools"`
	ToolChoice    json.RawMessage `json:"tool_choice"`
}

// chatRequestNoCount is chatRequest without message contents, used when the
// prompt token count is fixed so message text need not be scanned.
type chatRequestNoCount struct {
	Model    string `json:"model"`
	Messages []struct {
		Role string `json:"role"`
	} `json:"messages"`
	Stream        bool            `json:"stream"`
	StreamOptions *streamOptions  `json:"stream_options"`
	Tools         []chatTool      `json:"tools"`
	ToolChoice    json.RawMessage `json:"tool_choice"`
}

// chatMessage keeps only the role and the word count of a message's content.
type chatMessage struct {
	Role    string    `json:"role"`
	Content wordCount `json:"content"`
}

// chatTool is one tool a chat request offers: a function, or a custom
// tool, by name.
type chatTool struct {
	Type     string `json:"type"`
	Function struct {
		Name string `json:"name"`
	} `json:"function"`
	Custom struct {
		Name string `json:"name"`
	} `json:"custom"`
}

// name returns the tool's name ("" when it has none).
func (t *chatTool) name() string {
	if t.Function.Name != "" {
		return t.Function.Name
	}
	return t.Custom.Name
}

// toolToCall returns the tool the mock calls for a request offering tools
// with choice, whose last message has role lastRole: the named tool of a
// {"type":"function","function":{"name":…}} choice, else the first tool
// with a name; "" when tools are absent or forbidden ("none"), or when the
// last message is a tool result (the mock then answers with text).
func toolToCall(tools []chatTool, choice json.RawMessage, lastRole string) string {
	if len(tools) == 0 || lastRole == "tool" || lastRole == "function" {
		return ""
	}
	choice = bytes.TrimSpace(choice)
	if string(choice) == `"none"` {
		return ""
	}
	if len(choice) > 0 && choice[0] == '{' {
		var c struct {
			Function struct {
				Name string `json:"name"`
			} `json:"function"`
		}
		if json.Unmarshal(choice, &c) == nil && c.Function.Name != "" {
			return c.Function.Name
		}
	}
	for i := range tools {
		if n := tools[i].name(); n != "" {
			return n
		}
	}
	return ""
}

// streamOptions is OpenAI's stream_options object.
type streamOptions struct {
	IncludeUsage bool `json:"include_usage"`
}

// completionRequest is the subset of POST /v1/completions that the mock reads.
type completionRequest struct {
	Model         string          `json:"model"`
	Prompt        json.RawMessage `json:"prompt"`
	Stream        bool            `json:"stream"`
	StreamOptions *streamOptions  `json:"stream_options"`
}

// embeddingRequest is the subset of POST /v1/embeddings that the mock reads.
type embeddingRequest struct {
	Model          string          `json:"model"`
	Input          json.RawMessage `json:"input"`
	EncodingFormat string          `json:"encoding_format"`
	Dimensions     int             `json:"dimensions"`
}

// wordCount decodes a message content (a string, an array of content parts
// or null) into the number of whitespace-separated words of its text.
type wordCount int

// UnmarshalJSON counts words without allocating for plain string content.
func (c *wordCount) UnmarshalJSON(data []byte) error {
	data = bytes.TrimSpace(data)
	if len(data) == 0 {
		return nil
	}
	switch data[0] {
	case '"':
		*c = wordCount(countJSONStringWords(data))
	case '[':
		var parts []struct {
			Text wordCount `json:"text"`
		}
		if err := json.Unmarshal(data, &parts); err != nil {
			return err
		}
		n := 0
		for _, p := range parts {
			n += int(p.Text)
		}
		*c = wordCount(n)
	default:
		*c = 0 // null, or a shape the mock does not count
	}
	return nil
}

// countJSONStringWords counts words in an encoded JSON string (quotes
// included), treating the escapes \n, \t, \r, \f and \b as spaces.
func countJSONStringWords(s []byte) int {
	if len(s) >= 2 {
		s = s[1 : len(s)-1]
	}
	n, in := 0, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		space := c == ' ' || c == '\n' || c == '\t' || c == '\r'
		if c == '\\' && i+1 < len(s) {
			i++
			switch s[i] {
			case 'n', 't', 'r', 'f', 'b':
				space = true
			case 'u':
				i += 4
			}
		}
		if space {
			in = false
		} else if !in {
			in = true
			n++
		}
	}
	return n
}

// countWords counts whitespace-separated words in s.
func countWords(s string) int {
	n, in := 0, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == ' ' || c == '\n' || c == '\t' || c == '\r' {
			in = false
		} else if !in {
			in = true
			n++
		}
	}
	return n
}

// errorBody is OpenAI's error envelope.
type errorBody struct {
	Error errorDetail `json:"error"`
}

// errorDetail is the inner object of OpenAI's error envelope.
type errorDetail struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    *string `json:"code"`
}

// modelList is the body of GET /v1/models.
type modelList struct {
	Object string        `json:"object"`
	Data   []modelObject `json:"data"`
}

// modelObject is one entry of a model list.
type modelObject struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	OwnedBy string `json:"owned_by"`
}

// chatCompletion is a non-streamed chat response.
type chatCompletion struct {
	ID                string       `json:"id"`
	Object            string       `json:"object"`
	Created           int64        `json:"created"`
	Model             string       `json:"model"`
	Choices           []chatChoice `json:"choices"`
	Usage             *usage       `json:"usage,omitempty"`
	SystemFingerprint string       `json:"system_fingerprint"`
	ServiceTier       string       `json:"service_tier,omitempty"`
}

// chatChoice is one choice of a chat completion.
type chatChoice struct {
	Index        int             `json:"index"`
	Message      assistantMsg    `json:"message"`
	Logprobs     json.RawMessage `json:"logprobs"`
	FinishReason string          `json:"finish_reason"`
}

// assistantMsg is the message of a chat choice.
type assistantMsg struct {
	Role      string         `json:"role"`
	Content   string         `json:"content"`
	Refusal   *string        `json:"refusal"`
	ToolCalls []toolCallPart `json:"tool_calls,omitempty"`
}

// chatChunk is one streamed chat completion chunk.
type chatChunk struct {
	ID                string            `json:"id"`
	Object            string            `json:"object"`
	Created           int64             `json:"created"`
	Model             string            `json:"model"`
	SystemFingerprint string            `json:"system_fingerprint"`
	Choices           []chatChunkChoice `json:"choices"`
	Usage             *usage            `json:"usage"`
}

// chatChunkChoice is one choice of a chat chunk.
type chatChunkChoice struct {
	Index        int             `json:"index"`
	Delta        chunkDelta      `json:"delta"`
	Logprobs     json.RawMessage `json:"logprobs"`
	FinishReason *string         `json:"finish_reason"`
}

// chunkDelta is the delta of a chat chunk choice.
type chunkDelta struct {
	Role      string         `json:"role,omitempty"`
	Content   *string        `json:"content,omitempty"`
	ToolCalls []toolCallPart `json:"tool_calls,omitempty"`
}

// toolCallPart is a tool call in a message, or a fragment of one in a
// stream delta (index, and id, type and name only in the first).
type toolCallPart struct {
	Index    *int   `json:"index,omitempty"`
	ID       string `json:"id,omitempty"`
	Type     string `json:"type,omitempty"`
	Function struct {
		Name      string `json:"name,omitempty"`
		Arguments string `json:"arguments"`
	} `json:"function"`
}

// textCompletion is a legacy completion response or stream chunk.
type textCompletion struct {
	ID                string       `json:"id"`
	Object            string       `json:"object"`
	Created           int64        `json:"created"`
	Model             string       `json:"model"`
	SystemFingerprint string       `json:"system_fingerprint"`
	Choices           []textChoice `json:"choices"`
	Usage             *usage       `json:"usage"`
}

// textChoice is one choice of a legacy completion.
type textChoice struct {
	Text         string          `json:"text"`
	Index        int             `json:"index"`
	Logprobs     json.RawMessage `json:"logprobs"`
	FinishReason *string         `json:"finish_reason"`
}

// usage is OpenAI's usage object.
type usage struct {
	PromptTokens            int                      `json:"prompt_tokens"`
	CompletionTokens        int                      `json:"completion_tokens"`
	TotalTokens             int                      `json:"total_tokens"`
	PromptTokensDetails     *promptTokensDetails     `json:"prompt_tokens_details,omitempty"`
	CompletionTokensDetails *completionTokensDetails `json:"completion_tokens_details,omitempty"`
}

// promptTokensDetails breaks down prompt tokens.
type promptTokensDetails struct {
	CachedTokens int `json:"cached_tokens"`
	AudioTokens  int `json:"audio_tokens"`
}

// completionTokensDetails breaks down completion tokens.
type completionTokensDetails struct {
	ReasoningTokens          int `json:"reasoning_tokens"`
	AudioTokens              int `json:"audio_tokens"`
	AcceptedPredictionTokens int `json:"accepted_prediction_tokens"`
	RejectedPredictionTokens int `json:"rejected_prediction_tokens"`
}

// embeddingList is the body of POST /v1/embeddings. Embedding holds either a
// []float32 or, with encoding_format "base64", a string.
type embeddingList struct {
	Object string            `json:"object"`
	Data   []embeddingObject `json:"data"`
	Model  string            `json:"model"`
	Usage  *embeddingUsage   `json:"usage,omitempty"`
}

// embeddingObject is one embedding of an embedding list.
type embeddingObject struct {
	Object    string `json:"object"`
	Index     int    `json:"index"`
	Embedding any    `json:"embedding"`
}

// embeddingUsage is the usage object of an embedding list.
type embeddingUsage struct {
	PromptTokens int `json:"prompt_tokens"`
	TotalTokens  int `json:"total_tokens"`
}

// bufPool recycles response buffers of the hot paths.
type bufPool struct{ p sync.Pool }

// get returns an empty buffer.
func (bp *bufPool) get() *[]byte {
	if b, ok := bp.p.Get().(*[]byte); ok {
		*b = (*b)[:0]
		return b
	}
	b := make([]byte, 0, 1024)
	return &b
}

// put returns a buffer; oversized buffers are dropped.
func (bp *bufPool) put(b *[]byte) {
	if cap(*b) > 64<<10 {
		return
	}
	bp.p.Put(b)
}

// appendUsage appends an OpenAI usage object for a chat or text completion.
func appendUsage(b []byte, prompt, completion int) []byte {
	return appendUsageCached(b, prompt, completion, 0)
}

// appendUsageCached is appendUsage with cached of the prompt tokens read
// from the prompt cache.
func appendUsageCached(b []byte, prompt, completion, cached int) []byte {
	b = append(b, `{"prompt_tokens":`...)
	b = strconv.AppendInt(b, int64(prompt), 10)
	b = append(b, `,"completion_tokens":`...)
	b = strconv.AppendInt(b, int64(completion), 10)
	b = append(b, `,"total_tokens":`...)
	b = strconv.AppendInt(b, int64(prompt+completion), 10)
	b = append(b, `,"prompt_tokens_details":{"cached_tokens":`...)
	b = strconv.AppendInt(b, int64(cached), 10)
	b = append(b, `,"audio_tokens":0}`+
		`,"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,`+
		`"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}`...)
	return b
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string, escaping quotes, backslashes,
// control characters, U+2028/U+2029 and invalid UTF-8 (as U+FFFD).
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i++
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

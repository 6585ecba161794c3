package main

import (
	"bytes"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
)

// This file serves Anthropic's Messages API: POST /v1/messages (streamed
// and not) and POST /v1/messages/count_tokens, with Anthropic's auth
// headers (x-api-key, anthropic-version) and error shape
// {"type":"error","error":{"type":…,"message":…}}. Its wire types are its
// own, independent of the gateway's wire/anthropic.

// anthropicRequest is the part of a Messages request the mock reads.
type anthropicRequest struct {
	Model     string             `json:"model"`
	MaxTokens *int               `json:"max_tokens"`
	System    json.RawMessage    `json:"system"`
	Messages  []anthropicMessage `json:"messages"`
	Tools     []struct {
		Name string `json:"name"`
	} `json:"tools"`
	Stream   bool `json:"stream"`
	Thinking *struct {
		Type string `json:"type"`
	} `json:"thinking"`
}

// mockThinking and mockSignature are the thinking block of a reply to a
// request with thinking enabled.
const (
	mockThinking  = "The user wants a reply. "
	mockSignature = "mocksig=="
)

func (r *anthropicRequest) thinking() bool { return r.Thinking != nil && r.Thinking.Type == "enabled" }

type anthropicMessage struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
}

// anthropicBlock is the part of a content block the mock reads.
type anthropicBlock struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

// anthropicErrorType returns Anthropic's error type for an HTTP status.
func anthropicErrorType(status int) string {
	switch status {
	case http.StatusBadRequest:
		return "invalid_request_error"
	case http.StatusUnauthorized:
		return "authentication_error"
	case http.StatusPaymentRequired:
		return "billing_error"
	case http.StatusForbidden:
		return "permission_error"
	case http.StatusNotFound:
		return "not_found_error"
	case http.StatusRequestEntityTooLarge:
		return "request_too_large"
	case http.StatusTooManyRequests:
		return "rate_limit_error"
	case http.StatusGatewayTimeout:
		return "timeout_error"
	case 529:
		return "overloaded_error"
	}
	if status < 500 {
		return "invalid_request_error"
	}
	return "api_error"
}

// anthropicError writes an Anthropic error body. With X-Mock-Echo-Key the
// received x-api-key is appended to the message, like a careless upstream.
func (m *mock) anthropicError(w http.ResponseWriter, r *http.Request, b *behaviour, status int, msg string) outcome {
	if b.echoKey {
		msg += " (received x-api-key: " + r.Header.Get("X-Api-Key") + ")"
	}
	body := append([]byte(`{"type":"error","error":{"type":"`), anthropicErrorType(status)...)
	body = append(body, `","message":`...)
	body = appendString(body, msg)
	body = append(body, "}}"...)
	h := w.Header()
	h["Content-Type"] = ctJSON
	h["Content-Length"] = []string{strconv.Itoa(len(body))}
	h["Request-Id"] = []string{m.requestID(m.nextID())}
	setRetryAfter(h, b)
	w.WriteHeader(status)
	if _, err := w.Write(body); err != nil {
		return outcomeCanceled
	}
	return outcomeCompleted
}

// anthropicBegin runs the steps every Messages request shares (see
// openaiBegin), checking Anthropic's headers: x-api-key (when the mock has
// a key) and anthropic-version.
func (m *mock) anthropicBegin(w http.ResponseWriter, r *http.Request) (b behaviour, body []byte, o outcome, ok bool) {
	b, berr := resolve(&m.cfg, r.Header)
	body, err := readBody(r)
	m.stats.record(r.Header, body)
	if !sleep(r.Context(), b.latency) {
		return b, nil, outcomeCanceled, false
	}
	if m.cfg.APIKey != "" {
		got := r.Header["X-Api-Key"]
		if len(got) == 0 {
			return b, nil, m.anthropicError(w, r, &b, http.StatusUnauthorized, "x-api-key header is required"), false
		}
		if len(got) != 1 || subtle.ConstantTimeCompare([]byte(got[0]), []byte(m.cfg.APIKey)) != 1 {
			return b, nil, m.anthropicError(w, r, &b, http.StatusUnauthorized, "invalid x-api-key"), false
		}
	}
	if r.Header.Get("Anthropic-Version") == "" {
		return b, nil, m.anthropicError(w, r, &b, http.StatusBadRequest, "anthropic-version: header is required"), false
	}
	if berr != nil {
		return b, nil, m.anthropicError(w, r, &b, http.StatusBadRequest, berr.Error()), false
	}
	if err != nil {
		status := http.StatusBadRequest
		if errors.Is(err, errBodyTooLarge) {
			status = http.StatusRequestEntityTooLarge
		}
		return b, nil, m.anthropicError(w, r, &b, status, err.Error()), false
	}
	if b.status != 0 {
		msg := fmt.Sprintf("The mock was asked to fail this request with status %d (X-Mock-Status).", b.status)
		if b.status == 529 {
			msg = "Overloaded"
		}
		return b, nil, m.anthropicError(w, r, &b, b.status, msg), false
	}
	return b, body, outcomeCompleted, true
}

// anthropicPrompt reads and checks a Messages request: its prompt word
// count (system and message texts), whether it asks for prompt caching,
// and whether the last message is a tool result. A bad request is
// answered and ok is false.
type anthropicCall struct {
	req        anthropicRequest
	words      int
	cached     bool
	read       int // prompt tokens reported read from the cache
	toolResult bool
}

func (m *mock) anthropicRead(w http.ResponseWriter, r *http.Request, b *behaviour, body []byte, count bool) (c anthropicCall, o outcome, ok bool) {
	if err := json.Unmarshal(body, &c.req); err != nil {
		return c, m.anthropicError(w, r, b, http.StatusBadRequest, "invalid JSON body: "+err.Error()), false
	}
	switch {
	case c.req.Model == "":
		return c, m.anthropicError(w, r, b, http.StatusBadRequest, "model: Field required"), false
	case len(c.req.Messages) == 0:
		return c, m.anthropicError(w, r, b, http.StatusBadRequest, "messages: at least one message is required"), false
	case !count && c.req.MaxTokens == nil:
		return c, m.anthropicError(w, r, b, http.StatusBadRequest, "max_tokens: Field required"), false
	case !count && *c.req.MaxTokens < 1:
		return c, m.anthropicError(w, r, b, http.StatusBadRequest, "max_tokens: Input should be greater than or equal to 1"), false
	}
	c.cached = bytes.Contains(body, []byte(`"cache_control"`))
	c.words = contentWords(c.req.System)
	for i, msg := range c.req.Messages {
		if msg.Role != "user" && msg.Role != "assistant" {
			return c, m.anthropicError(w, r, b, http.StatusBadRequest, fmt.Sprintf("messages.%d.role: Input should be 'user' or 'assistant'", i)), false
		}
		c.words += contentWords(msg.Content)
	}
	last := c.req.Messages[len(c.req.Messages)-1]
	c.toolResult = last.Role == "user" && bytes.Contains(last.Content, []byte(`"tool_result"`))
	return c, outcomeCompleted, true
}

// contentWords counts the words of a content value: a string or blocks.
func contentWords(raw json.RawMessage) int {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return 0
	}
	if raw[0] == '"' {
		return countJSONStringWords(raw)
	}
	var blocks []anthropicBlock
	if raw[0] != '[' || json.Unmarshal(raw, &blocks) != nil {
		return 0
	}
	n := 0
	for _, bl := range blocks {
		n += countWords(bl.Text)
	}
	return n
}

// anthropicUsage appends a usage object with read of the prompt tokens
// read from the cache (input_tokens excludes them, as Anthropic's does).
func anthropicUsage(buf []byte, prompt, output, read int) []byte {
	buf = append(buf, `{"input_tokens":`...)
	buf = strconv.AppendInt(buf, int64(prompt-read), 10)
	buf = append(buf, `,"cache_creation_input_tokens":0,"cache_read_input_tokens":`...)
	buf = strconv.AppendInt(buf, int64(read), 10)
	buf = append(buf, `,"output_tokens":`...)
	buf = strconv.AppendInt(buf, int64(output), 10)
	return append(buf, '}')
}

// handleMessages serves POST /v1/messages.
func (m *mock) handleMessages(w http.ResponseWriter, r *http.Request) outcome {
	b, body, o, ok := m.anthropicBegin(w, r)
	if !ok {
		return o
	}
	c, o, ok := m.anthropicRead(w, r, &b, body, false)
	if !ok {
		return o
	}
	prompt := b.promptTokens
	if prompt == 0 {
		prompt = max(c.words, 1)
	}
	// With --prompt-cache, the prompt cache says what was read from it;
	// otherwise a request using cache_control reads half its prompt.
	if m.cfg.PromptCache {
		c.read = m.anthropicCached(body, c, b.promptTokens == 0, prompt)
	} else if c.cached {
		c.read = prompt / 2
	}
	chunks, output, stop := b.chunks, b.completionTokens, "end_turn"
	if limit := *c.req.MaxTokens; output > limit {
		output, stop = limit, "max_tokens"
		chunks = min(chunks, limit)
	}
	tool := ""
	if len(c.req.Tools) > 0 && !c.toolResult {
		tool, stop = c.req.Tools[0].Name, "tool_use"
	}

	seq := m.nextID()
	h := w.Header()
	h["Request-Id"] = []string{m.requestID(seq)}
	setRetryAfter(h, &b)
	bp := m.bufs.get()
	defer m.bufs.put(bp)
	usage := !b.noUsage

	if c.req.Stream {
		return m.streamMessages(w, r, &b, seq, c, prompt, chunks, output, stop, tool, usage)
	}
	buf := append(*bp, `{"id":"`...)
	buf = m.appendID(buf, "msg_", seq)
	buf = append(buf, `","type":"message","role":"assistant","model":`...)
	buf = appendString(buf, c.req.Model)
	buf = append(buf, `,"content":[`...)
	if c.req.thinking() {
		buf = append(buf, `{"type":"thinking","thinking":"`+mockThinking+`","signature":"`+mockSignature+`"},`...)
	}
	if tool != "" {
		buf = append(buf, `{"type":"tool_use","id":"`...)
		buf = m.appendID(buf, "toolu_", seq)
		buf = append(buf, `","name":`...)
		buf = appendString(buf, tool)
		buf = append(buf, `,"input":{}}`...)
	} else {
		buf = append(buf, `{"type":"text","text":"`...)
		buf = appendContent(buf, chunks)
		buf = append(buf, `"}`...)
	}
	buf = append(buf, `],"stop_reason":"`...)
	buf = append(buf, stop...)
	buf = append(buf, `","stop_sequence":null`...)
	if usage {
		buf = append(buf, `,"usage":`...)
		buf = anthropicUsage(buf, prompt, output, c.read)
	}
	buf = append(buf, '}')
	*bp = buf
	return m.respondJSON(w, r, &b, buf)
}

// streamMessages streams a Messages answer in the documented order:
// message_start, content_block_start, ping, the deltas, content_block_stop,
// message_delta (stop reason, cumulative usage), message_stop. A tool call
// is one tool_use block whose input arrives as input_json_delta.
func (m *mock) streamMessages(w http.ResponseWriter, r *http.Request, b *behaviour, seq uint64, c anthropicCall,
	prompt, chunks, output int, stop, tool string, usage bool) outcome {
	n := chunks
	if tool != "" {
		n = 2 // the input, in two pieces
	}
	// Before the main block's deltas: message_start, content_block_start,
	// ping; with thinking, the thinking block (index 0: start, ping,
	// thinking_delta, signature_delta, stop) and the main block's start.
	head, main := 3, 0
	thinking := c.req.thinking()
	if thinking {
		head, main = 7, 1
	}
	events := head + n + 3
	appendEvent := func(buf []byte, i int) []byte {
		ev := func(name string) []byte {
			buf = append(buf, "event: "...)
			buf = append(buf, name...)
			buf = append(buf, "\ndata: "...)
			return buf
		}
		mainStart := func() {
			buf = ev("content_block_start")
			buf = append(buf, `{"type":"content_block_start","index":`...)
			buf = strconv.AppendInt(buf, int64(main), 10)
			if tool != "" {
				buf = append(buf, `,"content_block":{"type":"tool_use","id":"`...)
				buf = m.appendID(buf, "toolu_", seq)
				buf = append(buf, `","name":`...)
				buf = appendString(buf, tool)
				buf = append(buf, `,"input":{}}}`...)
			} else {
				buf = append(buf, `,"content_block":{"type":"text","text":""}}`...)
			}
		}
		switch {
		case i == 0:
			buf = ev("message_start")
			buf = append(buf, `{"type":"message_start","message":{"id":"`...)
			buf = m.appendID(buf, "msg_", seq)
			buf = append(buf, `","type":"message","role":"assistant","model":`...)
			buf = appendString(buf, c.req.Model)
			buf = append(buf, `,"content":[],"stop_reason":null,"stop_sequence":null`...)
			if usage {
				buf = append(buf, `,"usage":`...)
				buf = anthropicUsage(buf, prompt, min(output, 1), c.read)
			}
			buf = append(buf, "}}"...)
		case i == 1 && thinking:
			buf = ev("content_block_start")
			buf = append(buf, `{"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":"","signature":""}}`...)
		case i == 1:
			mainStart()
		case i == 2:
			buf = ev("ping")
			buf = append(buf, `{"type": "ping"}`...)
		case i == 3 && thinking:
			buf = ev("content_block_delta")
			buf = append(buf, `{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"`+mockThinking+`"}}`...)
		case i == 4 && thinking:
			buf = ev("content_block_delta")
			buf = append(buf, `{"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"`+mockSignature+`"}}`...)
		case i == 5 && thinking:
			buf = ev("content_block_stop")
			buf = append(buf, `{"type":"content_block_stop","index":0}`...)
		case i == 6 && thinking:
			mainStart()
		case i < head+n:
			buf = ev("content_block_delta")
			buf = append(buf, `{"type":"content_block_delta","index":`...)
			buf = strconv.AppendInt(buf, int64(main), 10)
			if tool != "" {
				piece := `{`
				if i == head+1 {
					piece = `}`
				}
				buf = append(buf, `,"delta":{"type":"input_json_delta","partial_json":"`...)
				buf = append(buf, piece...)
				buf = append(buf, `"}}`...)
			} else {
				buf = append(buf, `,"delta":{"type":"text_delta","text":"`...)
				buf = append(buf, words[(i-head)%len(words)]...)
				buf = append(buf, `"}}`...)
			}
		case i == head+n:
			buf = ev("content_block_stop")
			buf = append(buf, `{"type":"content_block_stop","index":`...)
			buf = strconv.AppendInt(buf, int64(main), 10)
			buf = append(buf, '}')
		case i == head+n+1:
			buf = ev("message_delta")
			buf = append(buf, `{"type":"message_delta","delta":{"stop_reason":"`...)
			buf = append(buf, stop...)
			buf = append(buf, `","stop_sequence":null}`...)
			if usage {
				buf = append(buf, `,"usage":`...)
				buf = anthropicUsage(buf, prompt, output, c.read)
			}
			buf = append(buf, '}')
		default:
			buf = ev("message_stop")
			buf = append(buf, `{"type":"message_stop"}`...)
		}
		return append(buf, "\n\n"...)
	}
	// As in the OpenAI stream, the first delta follows the TTFT at once and
	// the chunk delay comes before every later delta and before
	// content_block_stop: ttft + n × chunk-delay in all.
	return m.streamEvents(w, r, b, eventPlan{n: events, delayFrom: head + 1, delayTo: head + n, appendEvent: appendEvent})
}

// handleCountTokens serves POST /v1/messages/count_tokens.
func (m *mock) handleCountTokens(w http.ResponseWriter, r *http.Request) outcome {
	b, body, o, ok := m.anthropicBegin(w, r)
	if !ok {
		return o
	}
	c, o, ok := m.anthropicRead(w, r, &b, body, true)
	if !ok {
		return o
	}
	prompt := b.promptTokens
	if prompt == 0 {
		prompt = max(c.words, 1)
	}
	h := w.Header()
	h["Request-Id"] = []string{m.requestID(m.nextID())}
	out := strconv.AppendInt([]byte(`{"input_tokens":`), int64(prompt), 10)
	return m.respondJSON(w, r, &b, append(out, '}'))
}

// handleAnthropicUnknown answers other /v1/messages/… paths as Anthropic
// does: 404 not_found_error.
func (m *mock) handleAnthropicUnknown(w http.ResponseWriter, r *http.Request) outcome {
	b, _, o, ok := m.anthropicBegin(w, r)
	if !ok {
		return o
	}
	return m.anthropicError(w, r, &b, http.StatusNotFound, "Not found: "+r.Method+" "+r.URL.Path)
}

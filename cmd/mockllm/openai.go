package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// This file serves OpenAI's wire format: chat completions, legacy text
// completions, models and the OpenAI error shape (embeddings are in
// openai_embeddings.go).

const fingerprint = "fp_mockllm"

// openaiBegin runs the steps every OpenAI model request shares: resolve the
// behaviour, read and record the body, sleep the latency, check the API key,
// report bad X-Mock-* headers, and answer an injected X-Mock-Status. When ok
// is false the response is finished and o is its outcome.
func (m *mock) openaiBegin(w http.ResponseWriter, r *http.Request) (b behaviour, body []byte, o outcome, ok bool) {
	b, berr := resolve(&m.cfg, r.Header)
	if strings.HasPrefix(r.URL.Path, "/openai/") {
		b.azure, b.deployment = true, r.PathValue("deployment")
	}
	body, err := readBody(r)
	m.stats.record(r.Header, body)
	if !sleep(r.Context(), b.latency) {
		return b, nil, outcomeCanceled, false
	}
	if b.azure {
		if o, done := m.azureCheck(w, r, &b); done {
			return b, nil, o, false
		}
	} else if !m.authorized(r) {
		msg := "Incorrect API key provided."
		if len(r.Header["Authorization"]) == 0 {
			msg = "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
		}
		return b, nil, m.openaiError(w, r, &b, http.StatusUnauthorized, msg, ""), false
	}
	if berr != nil {
		return b, nil, m.openaiError(w, r, &b, http.StatusBadRequest, berr.Error(), ""), false
	}
	if err != nil {
		status := http.StatusBadRequest
		if errors.Is(err, errBodyTooLarge) {
			status = http.StatusRequestEntityTooLarge
		}
		return b, nil, m.openaiError(w, r, &b, status, err.Error(), ""), false
	}
	if b.status != 0 {
		msg := fmt.Sprintf("The mock was asked to fail this request with status %d (X-Mock-Status).", b.status)
		return b, nil, m.openaiError(w, r, &b, b.status, msg, ""), false
	}
	if b.contentFilter && b.azure {
		return b, nil, m.azureContentFilter(w, r, &b), false
	}
	return b, body, outcomeCompleted, true
}

// openaiErrorKind returns OpenAI's error type and code for an HTTP status.
func openaiErrorKind(status int) (typ string, code *string) {
	str := func(s string) *string { return &s }
	switch {
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return "authentication_error", str("invalid_api_key")
	case status == http.StatusTooManyRequests:
		return "rate_limit_error", str("rate_limit_exceeded")
	case status >= 500:
		return "server_error", nil
	default:
		return "invalid_request_error", nil
	}
}

// openaiError writes an OpenAI error body. With X-Mock-Echo-Key the received
// Authorization header is appended to the message, like a careless upstream
// would do, so the gateway can prove it redacts such echoes.
func (m *mock) openaiError(w http.ResponseWriter, r *http.Request, b *behaviour, status int, msg, param string) outcome {
	return m.openaiErrorCode(w, r, b, status, msg, param, "")
}

// openaiErrorCode is openaiError with an explicit error code ("" = the
// status's default).
func (m *mock) openaiErrorCode(w http.ResponseWriter, r *http.Request, b *behaviour, status int, msg, param, code string) outcome {
	if b.azure {
		return m.azureError(w, r, b, status, msg, param, code)
	}
	if b.echoKey {
		msg += " (received Authorization: " + r.Header.Get("Authorization") + ")"
	}
	typ, defCode := openaiErrorKind(status)
	e := errorBody{Error: errorDetail{Message: msg, Type: typ, Code: defCode}}
	if code != "" {
		e.Error.Code = &code
	}
	if param != "" {
		e.Error.Param = &param
	}
	body, _ := json.Marshal(e)
	h := w.Header()
	h["Content-Type"] = ctJSON
	h["Content-Length"] = []string{strconv.Itoa(len(body))}
	h["X-Request-Id"] = []string{m.requestID(m.nextID())}
	setRetryAfter(h, b)
	w.WriteHeader(status)
	if _, err := w.Write(body); err != nil {
		return outcomeCanceled
	}
	return outcomeCompleted
}

// badJSON answers a body that is not valid JSON for the endpoint.
func (m *mock) badJSON(w http.ResponseWriter, r *http.Request, b *behaviour, err error) outcome {
	return m.openaiError(w, r, b, http.StatusBadRequest,
		"We could not parse the JSON body of your request: "+err.Error(), "")
}

// missingParam answers a request without a required parameter.
func (m *mock) missingParam(w http.ResponseWriter, r *http.Request, b *behaviour, name string) outcome {
	return m.openaiError(w, r, b, http.StatusBadRequest,
		"Missing required parameter: '"+name+"'.", name)
}

// completionHead appends the fields every completion object or chunk starts
// with, up to and including `"choices":`.
func (m *mock) completionHead(b []byte, idPrefix, object string, seq uint64, created int64, model string) []byte {
	b = append(b, `{"id":"`...)
	b = m.appendID(b, idPrefix, seq)
	b = append(b, `","object":"`...)
	b = append(b, object...)
	b = append(b, `","created":`...)
	b = strconv.AppendInt(b, created, 10)
	b = append(b, `,"model":`...)
	b = appendString(b, model)
	b = append(b, `,"system_fingerprint":"`+fingerprint+`","choices":`...)
	return b
}

// handleChat serves POST /v1/chat/completions.
func (m *mock) handleChat(w http.ResponseWriter, r *http.Request) outcome {
	b, body, o, ok := m.openaiBegin(w, r)
	if !ok {
		return o
	}
	var (
		model        string
		stream       bool
		includeUsage bool
		nMessages    int
		promptWords  int
		tool         string // the tool to call, "" to answer with text
	)
	if b.promptTokens > 0 {
		var req chatRequestNoCount
		if err := json.Unmarshal(body, &req); err != nil {
			return m.badJSON(w, r, &b, err)
		}
		model, stream, nMessages = req.Model, req.Stream, len(req.Messages)
		includeUsage = req.StreamOptions != nil && req.StreamOptions.IncludeUsage
		if len(req.Tools) > 0 && nMessages > 0 {
			tool = toolToCall(req.Tools, req.ToolChoice, req.Messages[nMessages-1].Role)
		}
	} else {
		var req chatRequest
		if err := json.Unmarshal(body, &req); err != nil {
			return m.badJSON(w, r, &b, err)
		}
		model, stream, nMessages = req.Model, req.Stream, len(req.Messages)
		includeUsage = req.StreamOptions != nil && req.StreamOptions.IncludeUsage
		for _, msg := range req.Messages {
			promptWords += int(msg.Content)
		}
		if len(req.Tools) > 0 && nMessages > 0 {
			tool = toolToCall(req.Tools, req.ToolChoice, req.Messages[nMessages-1].Role)
		}
	}
	if dep := b.deployment; dep != "" {
		model = dep // Azure: the deployment in the path names the model
	}
	if model == "" {
		return m.missingParam(w, r, &b, "model")
	}
	if nMessages == 0 {
		return m.missingParam(w, r, &b, "messages")
	}
	prompt := b.promptTokens
	if prompt == 0 {
		prompt = max(promptWords, 1)
	}
	if m.cfg.PromptCache {
		b.cachedTokens = m.cachedTokens(body, model, b.promptTokens == 0, prompt)
	}

	seq := m.nextID()
	created := m.now().Unix()
	h := w.Header()
	h["X-Request-Id"] = []string{m.requestID(seq)}
	setRetryAfter(h, &b)

	bp := m.bufs.get()
	defer m.bufs.put(bp)
	if stream {
		head := m.completionHead(*bp, "chatcmpl-", "chat.completion.chunk", seq, created, model)
		if tool != "" {
			return m.streamToolCall(w, r, &b, head, seq, tool, prompt, includeUsage && !b.noUsage)
		}
		return m.streamChat(w, r, &b, head, prompt, includeUsage && !b.noUsage)
	}

	buf := m.completionHead(*bp, "chatcmpl-", "chat.completion", seq, created, model)
	if tool != "" {
		buf = append(buf, `[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[{"id":"`...)
		buf = m.appendID(buf, "call_", seq)
		buf = append(buf, `","type":"function","function":{"name":`...)
		buf = appendString(buf, tool)
		buf = append(buf, `,"arguments":"{}"}}],"refusal":null,"annotations":[]},"logprobs":null,"finish_reason":"tool_calls"}]`...)
	} else {
		buf = append(buf, `[{"index":0,"message":{"role":"assistant","content":"`...)
		if b.chunks == m.cfg.Chunks {
			buf = append(buf, m.defaultContent...)
		} else {
			buf = appendContent(buf, b.chunks)
		}
		buf = append(buf, `","refusal":null,"annotations":[]},"logprobs":null,"finish_reason":"stop"}]`...)
	}
	if !b.noUsage {
		buf = append(buf, `,"usage":`...)
		buf = appendUsageCached(buf, prompt, b.completionTokens, b.cachedTokens)
	}
	if b.azure {
		buf = append(buf, `,"prompt_filter_results":`+azurePromptFilterResults...)
	}
	buf = append(buf, `,"service_tier":"default"}`...)
	*bp = buf
	return m.respondJSON(w, r, &b, buf)
}

// streamChat streams a chat completion: a role chunk, b.chunks content
// chunks, a finish chunk, the usage chunk when asked for, then [DONE]. head
// is the chunk prefix from completionHead.
func (m *mock) streamChat(w http.ResponseWriter, r *http.Request, b *behaviour, head []byte, prompt int, withUsage bool) outcome {
	n := b.chunks
	tail := `]}`
	if withUsage {
		tail = `],"usage":null}`
	}
	events := n + 3 // role, content…, finish, [DONE]
	if withUsage {
		events++
	}
	appendEvent := func(buf []byte, i int) []byte {
		buf = append(buf, "data: "...)
		switch {
		case i == 0:
			buf = append(buf, head...)
			buf = append(buf, `[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}`...)
			buf = append(buf, tail...)
		case i <= n:
			buf = append(buf, head...)
			buf = append(buf, `[{"index":0,"delta":{"content":"`...)
			buf = append(buf, words[(i-1)%len(words)]...)
			buf = append(buf, `"},"logprobs":null,"finish_reason":null}`...)
			buf = append(buf, tail...)
		case i == n+1:
			buf = append(buf, head...)
			buf = append(buf, `[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}`...)
			buf = append(buf, tail...)
		case withUsage && i == n+2:
			buf = append(buf, head...)
			buf = append(buf, `[],"usage":`...)
			buf = appendUsageCached(buf, prompt, b.completionTokens, b.cachedTokens)
			buf = append(buf, '}')
		default:
			buf = append(buf, "[DONE]"...)
		}
		return append(buf, "\n\n"...)
	}
	return m.streamEvents(w, r, b, azurePlan(b, eventPlan{n: events, delayFrom: 2, delayTo: n + 1, appendEvent: appendEvent}))
}

// streamToolCall streams a chat answer that calls tool, as OpenAI streams
// one: a role chunk opening the call (index, id, type, name, empty
// arguments), the arguments "{}" in two fragments, a finish chunk with
// finish_reason tool_calls, the usage chunk when asked for, then [DONE].
func (m *mock) streamToolCall(w http.ResponseWriter, r *http.Request, b *behaviour, head []byte, seq uint64, tool string, prompt int, withUsage bool) outcome {
	tail := `]}`
	if withUsage {
		tail = `],"usage":null}`
	}
	events := 5 // open, "{", "}", finish, [DONE]
	if withUsage {
		events++
	}
	appendEvent := func(buf []byte, i int) []byte {
		buf = append(buf, "data: "...)
		switch {
		case i == 0:
			buf = append(buf, head...)
			buf = append(buf, `[{"index":0,"delta":{"role":"assistant","content":null,"tool_calls":[{"index":0,"id":"`...)
			buf = m.appendID(buf, "call_", seq)
			buf = append(buf, `","type":"function","function":{"name":`...)
			buf = appendString(buf, tool)
			buf = append(buf, `,"arguments":""}}],"refusal":null},"logprobs":null,"finish_reason":null}`...)
			buf = append(buf, tail...)
		case i == 1 || i == 2:
			piece := `{`
			if i == 2 {
				piece = `}`
			}
			buf = append(buf, head...)
			buf = append(buf, `[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"`...)
			buf = append(buf, piece...)
			buf = append(buf, `"}}]},"logprobs":null,"finish_reason":null}`...)
			buf = append(buf, tail...)
		case i == 3:
			buf = append(buf, head...)
			buf = append(buf, `[{"index":0,"delta":{},"logprobs":null,"finish_reason":"tool_calls"}`...)
			buf = append(buf, tail...)
		case withUsage && i == 4:
			buf = append(buf, head...)
			buf = append(buf, `[],"usage":`...)
			buf = appendUsage(buf, prompt, b.completionTokens)
			buf = append(buf, '}')
		default:
			buf = append(buf, "[DONE]"...)
		}
		return append(buf, "\n\n"...)
	}
	return m.streamEvents(w, r, b, azurePlan(b, eventPlan{n: events, delayFrom: 2, delayTo: 3, appendEvent: appendEvent}))
}

// handleCompletion serves the legacy POST /v1/completions.
func (m *mock) handleCompletion(w http.ResponseWriter, r *http.Request) outcome {
	b, body, o, ok := m.openaiBegin(w, r)
	if !ok {
		return o
	}
	var req completionRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return m.badJSON(w, r, &b, err)
	}
	if b.deployment != "" {
		req.Model = b.deployment
	}
	if req.Model == "" {
		return m.missingParam(w, r, &b, "model")
	}
	inputs, err := parseInputs(req.Prompt)
	if err != nil {
		return m.openaiError(w, r, &b, http.StatusBadRequest, "Invalid 'prompt': "+err.Error(), "prompt")
	}
	if inputs == nil {
		return m.missingParam(w, r, &b, "prompt")
	}
	prompt := b.promptTokens
	if prompt == 0 {
		prompt = max(sumTokens(inputs), 1)
	}
	includeUsage := req.StreamOptions != nil && req.StreamOptions.IncludeUsage

	seq := m.nextID()
	created := m.now().Unix()
	h := w.Header()
	h["X-Request-Id"] = []string{m.requestID(seq)}
	setRetryAfter(h, &b)

	bp := m.bufs.get()
	defer m.bufs.put(bp)
	head := m.completionHead(*bp, "cmpl-", "text_completion", seq, created, req.Model)
	if req.Stream {
		return m.streamCompletion(w, r, &b, head, prompt, includeUsage && !b.noUsage)
	}
	buf := append(head, `[{"text":"`...)
	buf = appendContent(buf, b.chunks)
	buf = append(buf, `","index":0,"logprobs":null,"finish_reason":"stop"}]`...)
	if !b.noUsage {
		buf = append(buf, `,"usage":`...)
		buf = appendUsage(buf, prompt, b.completionTokens)
	}
	buf = append(buf, '}')
	*bp = buf
	return m.respondJSON(w, r, &b, buf)
}

// streamCompletion streams a legacy completion: b.chunks text chunks, a
// finish chunk, the usage chunk when asked for, then [DONE].
func (m *mock) streamCompletion(w http.ResponseWriter, r *http.Request, b *behaviour, head []byte, prompt int, withUsage bool) outcome {
	n := b.chunks
	tail := `]}`
	if withUsage {
		tail = `],"usage":null}`
	}
	events := n + 2 // text…, finish, [DONE]
	if withUsage {
		events++
	}
	appendEvent := func(buf []byte, i int) []byte {
		buf = append(buf, "data: "...)
		switch {
		case i < n:
			buf = append(buf, head...)
			buf = append(buf, `[{"text":"`...)
			buf = append(buf, words[i%len(words)]...)
			buf = append(buf, `","index":0,"logprobs":null,"finish_reason":null}`...)
			buf = append(buf, tail...)
		case i == n:
			buf = append(buf, head...)
			buf = append(buf, `[{"text":"","index":0,"logprobs":null,"finish_reason":"stop"}`...)
			buf = append(buf, tail...)
		case withUsage && i == n+1:
			buf = append(buf, head...)
			buf = append(buf, `[],"usage":`...)
			buf = appendUsage(buf, prompt, b.completionTokens)
			buf = append(buf, '}')
		default:
			buf = append(buf, "[DONE]"...)
		}
		return append(buf, "\n\n"...)
	}
	return m.streamEvents(w, r, b, eventPlan{n: events, delayFrom: 1, delayTo: n, appendEvent: appendEvent})
}

// handleModels serves GET /v1/models.
func (m *mock) handleModels(w http.ResponseWriter, r *http.Request) outcome {
	b, _, o, ok := m.openaiBegin(w, r)
	if !ok {
		return o
	}
	h := w.Header()
	h["X-Request-Id"] = []string{m.requestID(m.nextID())}
	setRetryAfter(h, &b)
	return m.respondJSON(w, r, &b, m.modelsJSON)
}

// handleModel serves GET /v1/models/{model}.
func (m *mock) handleModel(w http.ResponseWriter, r *http.Request) outcome {
	b, _, o, ok := m.openaiBegin(w, r)
	if !ok {
		return o
	}
	id := r.PathValue("model")
	for _, mo := range m.models {
		if mo.ID == id {
			body, _ := json.Marshal(mo)
			h := w.Header()
			h["X-Request-Id"] = []string{m.requestID(m.nextID())}
			setRetryAfter(h, &b)
			return m.respondJSON(w, r, &b, body)
		}
	}
	return m.openaiErrorCode(w, r, &b, http.StatusNotFound,
		"The model '"+id+"' does not exist or you do not have access to it.", "model", "model_not_found")
}

// handleUnknown answers any other path like OpenAI does.
func (m *mock) handleUnknown(w http.ResponseWriter, r *http.Request) outcome {
	b, _, o, ok := m.openaiBegin(w, r)
	if !ok {
		return o
	}
	if b.azure {
		return m.azureError(w, r, &b, http.StatusNotFound, "Resource not found", "", "")
	}
	return m.openaiErrorCode(w, r, &b, http.StatusNotFound,
		"Unknown request URL: "+r.Method+" "+r.URL.Path+". Please check the URL for typos.", "", "unknown_url")
}

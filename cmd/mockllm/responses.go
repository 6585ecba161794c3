package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
)

// This file serves OpenAI's Responses API (POST /v1/responses) with its own
// wire structs: a Response object, or the documented event sequence
// (response.created … response.completed) with "event:" lines and
// sequence numbers. It shares the OpenAI steps (auth, failure controls)
// of openai.go.

// responsesRequest is what the mock reads of a Responses request.
type responsesRequest struct {
	Model      string          `json:"model"`
	Input      json.RawMessage `json:"input"`
	Stream     bool            `json:"stream"`
	Tools      []responsesTool `json:"tools"`
	ToolChoice json.RawMessage `json:"tool_choice"`
}

// responsesTool is a Responses tool: function tools carry name at the top.
type responsesTool struct {
	Type string `json:"type"`
	Name string `json:"name"`
}

// responsesTarget returns the function to call ("" to answer with text):
// the one tool_choice names, else the first function tool, unless
// tool_choice is "none" or the last input item is a function call's output.
func responsesTarget(req *responsesRequest) string {
	if len(req.Tools) == 0 || string(bytes.TrimSpace(req.ToolChoice)) == `"none"` {
		return ""
	}
	var items []struct {
		Type string `json:"type"`
	}
	if json.Unmarshal(req.Input, &items) == nil && len(items) > 0 && items[len(items)-1].Type == "function_call_output" {
		return ""
	}
	var c struct {
		Name string `json:"name"`
	}
	if json.Unmarshal(req.ToolChoice, &c) == nil && c.Name != "" {
		return c.Name
	}
	for _, t := range req.Tools {
		if t.Type == "function" && t.Name != "" {
			return t.Name
		}
	}
	return ""
}

// handleResponses serves POST /v1/responses.
func (m *mock) handleResponses(w http.ResponseWriter, r *http.Request) outcome {
	b, body, o, ok := m.openaiBegin(w, r)
	if !ok {
		return o
	}
	var req responsesRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return m.badJSON(w, r, &b, err)
	}
	if req.Model == "" {
		return m.missingParam(w, r, &b, "model")
	}
	if len(req.Input) == 0 || string(req.Input) == "null" {
		return m.missingParam(w, r, &b, "input")
	}
	prompt := b.promptTokens
	if prompt == 0 {
		prompt = max(len(bytes.Fields(req.Input)), 1)
	}
	tool := responsesTarget(&req)
	seq := m.nextID()
	created := m.now().Unix()
	h := w.Header()
	h["X-Request-Id"] = []string{m.requestID(seq)}
	setRetryAfter(h, &b)

	rs := responsesState{m: m, b: &b, seq: seq, created: created, model: req.Model, prompt: prompt, tool: tool}
	bp := m.bufs.get()
	defer m.bufs.put(bp)
	if req.Stream {
		return m.streamResponses(w, r, &b, &rs)
	}
	var text []byte
	if tool == "" {
		text = appendContent(nil, b.chunks)
	}
	*bp = rs.appendObject(*bp, "completed", string(text), true)
	return m.respondJSON(w, r, &b, *bp)
}

// responsesState is one Responses answer being written.
type responsesState struct {
	m       *mock
	b       *behaviour
	seq     uint64
	created int64
	model   string
	prompt  int
	tool    string
}

// appendItem appends the answer's output item: a message with text, or
// a call of the tool with arguments "{}".
func (s *responsesState) appendItem(b []byte, status, text string) []byte {
	if s.tool != "" {
		b = append(b, `{"type":"function_call","id":"`...)
		b = s.m.appendID(b, "fc_", s.seq)
		b = append(b, `","call_id":"`...)
		b = s.m.appendID(b, "call_", s.seq)
		b = append(b, `","name":`...)
		b = appendString(b, s.tool)
		b = append(b, `,"arguments":`...)
		if status == "completed" {
			b = append(b, `"{}"`...)
		} else {
			b = append(b, `""`...)
		}
		b = append(b, `,"status":"`...)
		b = append(b, status...)
		return append(b, `"}`...)
	}
	b = append(b, `{"type":"message","id":"`...)
	b = s.m.appendID(b, "msg_", s.seq)
	b = append(b, `","status":"`...)
	b = append(b, status...)
	b = append(b, `","role":"assistant","content":[`...)
	if status == "completed" {
		b = append(b, `{"type":"output_text","text":`...)
		b = appendString(b, text)
		b = append(b, `,"annotations":[]}`...)
	}
	return append(b, "]}"...)
}

// appendObject appends the Response object; output holds the item when
// withOutput is set.
func (s *responsesState) appendObject(b []byte, status, text string, withOutput bool) []byte {
	b = append(b, `{"id":"`...)
	b = s.m.appendID(b, "resp_", s.seq)
	b = append(b, `","object":"response","created_at":`...)
	b = strconv.AppendInt(b, s.created, 10)
	b = append(b, `,"status":"`...)
	b = append(b, status...)
	b = append(b, `","error":null,"incomplete_details":null,"instructions":null,"max_output_tokens":null,"model":`...)
	b = appendString(b, s.model)
	b = append(b, `,"output":[`...)
	if withOutput {
		b = s.appendItem(b, "completed", text)
	}
	b = append(b, `],"parallel_tool_calls":true,"previous_response_id":null,"reasoning":{"effort":null,"summary":null},"store":false,"temperature":1.0,"text":{"format":{"type":"text"}},"tool_choice":"auto","tools":[],"top_p":1.0,"truncation":"disabled","usage":`...)
	if status == "completed" && !s.b.noUsage {
		b = append(b, `{"input_tokens":`...)
		b = strconv.AppendInt(b, int64(s.prompt), 10)
		b = append(b, `,"input_tokens_details":{"cached_tokens":0},"output_tokens":`...)
		b = strconv.AppendInt(b, int64(s.b.completionTokens), 10)
		b = append(b, `,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":`...)
		b = strconv.AppendInt(b, int64(s.prompt+s.b.completionTokens), 10)
		b = append(b, '}')
	} else {
		b = append(b, "null"...)
	}
	return append(b, `,"user":null,"metadata":{}}`...)
}

// streamResponses streams the documented event sequence: created,
// in_progress, the item added (and its content part), b.chunks text
// deltas (or the arguments "{}" in two deltas), their done events, the
// item done, completed.
func (m *mock) streamResponses(w http.ResponseWriter, r *http.Request, b *behaviour, s *responsesState) outcome {
	n := b.chunks
	if s.tool != "" {
		n = 2
	}
	// created, in_progress, added, [part added], n deltas, text/args done,
	// [part done], item done, completed.
	events := n + 6
	if s.tool == "" {
		events += 2
	}
	text := string(appendContent(nil, b.chunks))
	itemID := func(buf []byte) []byte {
		if s.tool != "" {
			return m.appendID(buf, "fc_", s.seq)
		}
		return m.appendID(buf, "msg_", s.seq)
	}
	appendEvent := func(buf []byte, i int) []byte {
		typ := ""
		switch {
		case i == 0:
			typ = "response.created"
		case i == 1:
			typ = "response.in_progress"
		case i == 2:
			typ = "response.output_item.added"
		case s.tool == "" && i == 3:
			typ = "response.content_part.added"
		case s.tool == "" && i < 4+n:
			typ = "response.output_text.delta"
		case s.tool != "" && i < 3+n:
			typ = "response.function_call_arguments.delta"
		case s.tool == "" && i == 4+n:
			typ = "response.output_text.done"
		case s.tool == "" && i == 5+n:
			typ = "response.content_part.done"
		case s.tool != "" && i == 3+n:
			typ = "response.function_call_arguments.done"
		case i == events-2:
			typ = "response.output_item.done"
		default:
			typ = "response.completed"
		}
		buf = append(buf, "event: "...)
		buf = append(buf, typ...)
		buf = append(buf, "\ndata: {\"type\":\""...)
		buf = append(buf, typ...)
		buf = append(buf, `","sequence_number":`...)
		buf = strconv.AppendInt(buf, int64(i), 10)
		ref := func(buf []byte) []byte {
			buf = append(buf, `,"item_id":"`...)
			buf = itemID(buf)
			return append(buf, `","output_index":0`...)
		}
		switch typ {
		case "response.created", "response.in_progress":
			buf = append(buf, `,"response":`...)
			buf = s.appendObject(buf, "in_progress", "", false)
		case "response.completed":
			buf = append(buf, `,"response":`...)
			buf = s.appendObject(buf, "completed", text, true)
		case "response.output_item.added":
			buf = append(buf, `,"output_index":0,"item":`...)
			buf = s.appendItem(buf, "in_progress", "")
		case "response.output_item.done":
			buf = append(buf, `,"output_index":0,"item":`...)
			buf = s.appendItem(buf, "completed", text)
		case "response.content_part.added", "response.content_part.done":
			buf = ref(buf)
			buf = append(buf, `,"content_index":0,"part":{"type":"output_text","text":`...)
			if typ == "response.content_part.done" {
				buf = appendString(buf, text)
			} else {
				buf = append(buf, `""`...)
			}
			buf = append(buf, `,"annotations":[]}`...)
		case "response.output_text.delta":
			buf = ref(buf)
			buf = append(buf, `,"content_index":0,"delta":"`...)
			buf = append(buf, words[(i-4)%len(words)]...)
			buf = append(buf, `","logprobs":[]`...)
		case "response.output_text.done":
			buf = ref(buf)
			buf = append(buf, `,"content_index":0,"text":`...)
			buf = appendString(buf, text)
			buf = append(buf, `,"logprobs":[]`...)
		case "response.function_call_arguments.delta":
			buf = ref(buf)
			if i == 3 {
				buf = append(buf, `,"delta":"{"`...)
			} else {
				buf = append(buf, `,"delta":"}"`...)
			}
		case "response.function_call_arguments.done":
			buf = ref(buf)
			buf = append(buf, `,"arguments":"{}"`...)
		}
		return append(buf, "}\n\n"...)
	}
	return m.streamEvents(w, r, b, eventPlan{n: events, delayFrom: 3, delayTo: events - 4, appendEvent: appendEvent})
}

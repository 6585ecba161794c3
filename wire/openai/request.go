package openai

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/sluice-ai/sluice/llm"
	"github.com/sluice-ai/sluice/wire/jsonspan"
)

// chatRequest is an OpenAI chat request as read: every member raw, so
// that a member of the wrong type is reported by name.
type chatRequest struct {
	Model               json.RawMessage `json:"model"`
	Messages            json.RawMessage `json:"messages"`
	Tools               json.RawMessage `json:"tools"`
	ToolChoice          json.RawMessage `json:"tool_choice"`
	ParallelToolCalls   json.RawMessage `json:"parallel_tool_calls"`
	MaxTokens           json.RawMessage `json:"max_tokens"`
	MaxCompletionTokens json.RawMessage `json:"max_completion_tokens"`
	Temperature         json.RawMessage `json:"temperature"`
	TopP                json.RawMessage `json:"top_p"`
	Stop                json.RawMessage `json:"stop"`
	N                   json.RawMessage `json:"n"`
	Seed                json.RawMessage `json:"seed"`
	Stream              json.RawMessage `json:"stream"`
	ResponseFormat      json.RawMessage `json:"response_format"`
	ReasoningEffort     json.RawMessage `json:"reasoning_effort"`
	User                json.RawMessage `json:"user"`
	PresencePenalty     json.RawMessage `json:"presence_penalty"`
	FrequencyPenalty    json.RawMessage `json:"frequency_penalty"`
	// Members the neutral form cannot carry: asking for them is a 400
	// rather than an answer silently without them.
	Functions    json.RawMessage `json:"functions"`
	FunctionCall json.RawMessage `json:"function_call"`
	Logprobs     json.RawMessage `json:"logprobs"`
	TopLogprobs  json.RawMessage `json:"top_logprobs"`
	Audio        json.RawMessage `json:"audio"`
}

type rawMessage struct {
	Role             json.RawMessage `json:"role"`
	Content          json.RawMessage `json:"content"`
	Name             json.RawMessage `json:"name"`
	ToolCalls        json.RawMessage `json:"tool_calls"`
	ToolCallID       json.RawMessage `json:"tool_call_id"`
	ReasoningContent json.RawMessage `json:"reasoning_content"`
}

type rawPart struct {
	Type     json.RawMessage `json:"type"`
	Text     json.RawMessage `json:"text"`
	Refusal  json.RawMessage `json:"refusal"`
	ImageURL json.RawMessage `json:"image_url"`
}

type rawImageURL struct {
	URL    json.RawMessage `json:"url"`
	Detail json.RawMessage `json:"detail"`
}

type rawToolCall struct {
	ID       json.RawMessage `json:"id"`
	Type     json.RawMessage `json:"type"`
	Function json.RawMessage `json:"function"`
}

type rawFunction struct {
	Name        json.RawMessage `json:"name"`
	Description json.RawMessage `json:"description"`
	Parameters  json.RawMessage `json:"parameters"`
	Strict      json.RawMessage `json:"strict"`
	Arguments   json.RawMessage `json:"arguments"`
}

type rawTool struct {
	Type     json.RawMessage `json:"type"`
	Function json.RawMessage `json:"function"`
}

type rawResponseFormat struct {
	Type       json.RawMessage `json:"type"`
	JSONSchema json.RawMessage `json:"json_schema"`
}

type rawJSONSchema struct {
	Name   json.RawMessage `json:"name"`
	Schema json.RawMessage `json:"schema"`
	Strict json.RawMessage `json:"strict"`
}

// isNull reports a member that is absent or null.
func isNull(v json.RawMessage) bool { return len(v) == 0 || string(v) == "null" }

// object decodes v, which must be a JSON object (or absent/null: then
// false), into dst.
func object(v json.RawMessage, param string, dst any) (bool, *llm.Error) {
	if isNull(v) {
		return false, nil
	}
	if v[0] != '{' || json.Unmarshal(v, dst) != nil {
		return false, invalid(param, "%s must be an object", param)
	}
	return true, nil
}

// array decodes v, which must be a JSON array (or absent/null), into raw
// elements.
func array(v json.RawMessage, param string) ([]json.RawMessage, *llm.Error) {
	if isNull(v) {
		return nil, nil
	}
	var a []json.RawMessage
	if v[0] != '[' || json.Unmarshal(v, &a) != nil {
		return nil, invalid(param, "%s must be an array", param)
	}
	return a, nil
}

func str(v json.RawMessage, param string) (string, *llm.Error) {
	if isNull(v) {
		return "", nil
	}
	var s string
	if v[0] != '"' || json.Unmarshal(v, &s) != nil {
		return "", invalid(param, "%s must be a string", param)
	}
	return s, nil
}

func boolean(v json.RawMessage, param string) (*bool, *llm.Error) {
	if isNull(v) {
		return nil, nil
	}
	switch string(v) {
	case "true":
		t := true
		return &t, nil
	case "false":
		f := false
		return &f, nil
	}
	return nil, invalid(param, "%s must be a boolean", param)
}

func number(v json.RawMessage, param string) (*float64, *llm.Error) {
	if isNull(v) {
		return nil, nil
	}
	var f float64
	if (v[0] != '-' && (v[0] < '0' || v[0] > '9')) || json.Unmarshal(v, &f) != nil {
		return nil, invalid(param, "%s must be a number", param)
	}
	return &f, nil
}

func integer(v json.RawMessage, param string) (*int64, *llm.Error) {
	if isNull(v) {
		return nil, nil
	}
	var n int64
	if (v[0] != '-' && (v[0] < '0' || v[0] > '9')) || json.Unmarshal(v, &n) != nil {
		return nil, invalid(param, "%s must be an integer", param)
	}
	return &n, nil
}

// DecodeChatRequest decodes an OpenAI chat completions request body into
// neutral form. System and developer messages at the head of the
// conversation become System; content is a string or an array of text and
// image_url parts (data: URLs are decoded into Image.Data and MediaType);
// an assistant's reasoning_content becomes a thinking part.
// stream_options is not part of the neutral form and is ignored, as are
// members the decoder does not know. A member of the wrong type is a
// KindInvalidRequest error whose Param names it ("messages[3].content");
// so is asking for what the neutral form cannot carry (functions,
// logprobs, audio output).
func DecodeChatRequest(raw []byte) (*llm.ChatRequest, *llm.Error) {
	var in chatRequest
	if b := bytes.TrimSpace(raw); len(b) == 0 || b[0] != '{' {
		return nil, invalid("", "the request body must be a JSON object")
	}
	if err := json.Unmarshal(raw, &in); err != nil {
		return nil, invalid("", "the request body is not valid JSON")
	}
	r := &llm.ChatRequest{}
	var e *llm.Error
	for _, u := range []struct {
		v     json.RawMessage
		param string
		what  string
	}{
		{in.Functions, "functions", "functions are not supported here; use tools"},
		{in.FunctionCall, "function_call", "function_call is not supported here; use tool_choice"},
		{in.Audio, "audio", "audio output is not supported by this model's provider"},
	} {
		if !isNull(u.v) {
			return nil, invalid(u.param, "%s", u.what)
		}
	}
	if lp, e := boolean(in.Logprobs, "logprobs"); e != nil {
		return nil, e
	} else if lp != nil && *lp {
		return nil, invalid("logprobs", "logprobs are not supported by this model's provider")
	}
	if n, e := integer(in.TopLogprobs, "top_logprobs"); e != nil {
		return nil, e
	} else if n != nil && *n > 0 {
		return nil, invalid("top_logprobs", "logprobs are not supported by this model's provider")
	}
	if r.Model, e = str(in.Model, "model"); e != nil {
		return nil, e
	}
	if e = decodeMessages(r, in.Messages); e != nil {
		return nil, e
	}
	if e = decodeTools(r, in.Tools, in.ToolChoice); e != nil {
		return nil, e
	}
	if r.ParallelToolCalls, e = boolean(in.ParallelToolCalls, "parallel_tool_calls"); e != nil {
		return nil, e
	}
	for _, m := range []struct {
		v     json.RawMessage
		param string
	}{{in.MaxTokens, "max_tokens"}, {in.MaxCompletionTokens, "max_completion_tokens"}} {
		n, e := integer(m.v, m.param)
		if e != nil {
			return nil, e
		}
		if n != nil {
			if *n < 1 || *n > 1<<31-1 {
				return nil, invalid(m.param, "%s must be a positive integer", m.param)
			}
			r.MaxTokens = int(*n) // max_completion_tokens comes second and wins
		}
	}
	for _, f := range []struct {
		v     json.RawMessage
		param string
		dst   **float64
	}{{in.Temperature, "temperature", &r.Temperature}, {in.TopP, "top_p", &r.TopP},
		{in.PresencePenalty, "presence_penalty", &r.PresencePenalty}, {in.FrequencyPenalty, "frequency_penalty", &r.FrequencyPenalty}} {
		if *f.dst, e = number(f.v, f.param); e != nil {
			return nil, e
		}
	}
	if r.Stop, e = decodeStop(in.Stop); e != nil {
		return nil, e
	}
	if n, e := integer(in.N, "n"); e != nil {
		return nil, e
	} else if n != nil {
		if *n < 1 || *n > MaxChoices {
			return nil, invalid("n", "n must be between 1 and %d", MaxChoices)
		}
		r.N = int(*n)
	}
	if r.Seed, e = integer(in.Seed, "seed"); e != nil {
		return nil, e
	}
	if s, e := boolean(in.Stream, "stream"); e != nil {
		return nil, e
	} else if s != nil {
		r.Stream = *s
	}
	if r.ResponseFormat, e = decodeResponseFormat(in.ResponseFormat); e != nil {
		return nil, e
	}
	if r.ReasoningEffort, e = str(in.ReasoningEffort, "reasoning_effort"); e != nil {
		return nil, e
	}
	if r.User, e = str(in.User, "user"); e != nil {
		return nil, e
	}
	return r, nil
}

func decodeStop(v json.RawMessage) ([]string, *llm.Error) {
	if isNull(v) {
		return nil, nil
	}
	if v[0] == '"' {
		s, e := str(v, "stop")
		if e != nil {
			return nil, e
		}
		return []string{s}, nil
	}
	a, e := array(v, "stop")
	if e != nil {
		return nil, invalid("stop", "stop must be a string or an array of strings")
	}
	out := make([]string, 0, len(a))
	for i, x := range a {
		s, e := str(x, fmt.Sprintf("stop[%d]", i))
		if e != nil {
			return nil, e
		}
		out = append(out, s)
	}
	return out, nil
}

func decodeResponseFormat(v json.RawMessage) (*llm.ResponseFormat, *llm.Error) {
	var rf rawResponseFormat
	if ok, e := object(v, "response_format", &rf); !ok {
		return nil, e
	}
	t, e := str(rf.Type, "response_format.type")
	if e != nil {
		return nil, e
	}
	out := &llm.ResponseFormat{Type: t}
	switch t {
	case "text", "json_object":
	case "json_schema":
		var js rawJSONSchema
		ok, e := object(rf.JSONSchema, "response_format.json_schema", &js)
		if e != nil {
			return nil, e
		}
		if !ok {
			return nil, invalid("response_format.json_schema", "response_format.json_schema is required for type json_schema")
		}
		if out.Name, e = str(js.Name, "response_format.json_schema.name"); e != nil {
			return nil, e
		}
		if !isNull(js.Schema) {
			if js.Schema[0] != '{' {
				return nil, invalid("response_format.json_schema.schema", "response_format.json_schema.schema must be an object")
			}
			out.Schema = js.Schema
		}
		s, e := boolean(js.Strict, "response_format.json_schema.strict")
		if e != nil {
			return nil, e
		}
		out.Strict = s != nil && *s
	default:
		return nil, invalid("response_format.type", "response_format.type must be text, json_object or json_schema")
	}
	return out, nil
}

func decodeTools(r *llm.ChatRequest, tools, choice json.RawMessage) *llm.Error {
	a, e := array(tools, "tools")
	if e != nil {
		return e
	}
	for i, x := range a {
		p := fmt.Sprintf("tools[%d]", i)
		var t rawTool
		if ok, e := object(x, p, &t); !ok {
			if e == nil {
				e = invalid(p, "%s must be an object", p)
			}
			return e
		}
		typ, e := str(t.Type, p+".type")
		if e != nil {
			return e
		}
		if typ != "function" {
			return invalid(p+".type", "tool type %q is not supported; only function tools are", clipParam(typ))
		}
		var f rawFunction
		ok, e := object(t.Function, p+".function", &f)
		if e != nil {
			return e
		}
		if !ok {
			return invalid(p+".function", "%s.function is required", p)
		}
		tool := llm.Tool{}
		if tool.Name, e = str(f.Name, p+".function.name"); e != nil {
			return e
		}
		if tool.Name == "" {
			return invalid(p+".function.name", "%s.function.name is required", p)
		}
		if tool.Description, e = str(f.Description, p+".function.description"); e != nil {
			return e
		}
		if !isNull(f.Parameters) {
			if f.Parameters[0] != '{' {
				return invalid(p+".function.parameters", "%s.function.parameters must be an object", p)
			}
			tool.Parameters = f.Parameters
		}
		s, e := boolean(f.Strict, p+".function.strict")
		if e != nil {
			return e
		}
		tool.Strict = s != nil && *s
		r.Tools = append(r.Tools, tool)
	}
	if isNull(choice) {
		return nil
	}
	if choice[0] == '"' {
		s, _ := str(choice, "tool_choice")
		switch s {
		case "auto", "none", "required":
			r.ToolChoice.Mode = s
			return nil
		}
		return invalid("tool_choice", "tool_choice must be auto, none, required or a function")
	}
	var tc struct {
		Type     json.RawMessage `json:"type"`
		Function json.RawMessage `json:"function"`
	}
	if ok, e := object(choice, "tool_choice", &tc); !ok {
		return e
	}
	if t, _ := str(tc.Type, "tool_choice.type"); t != "function" {
		return invalid("tool_choice.type", "tool_choice.type must be function")
	}
	var f rawFunction
	if ok, e := object(tc.Function, "tool_choice.function", &f); !ok {
		if e == nil {
			e = invalid("tool_choice.function", "tool_choice.function is required")
		}
		return e
	}
	name, e := str(f.Name, "tool_choice.function.name")
	if e != nil {
		return e
	}
	if name == "" {
		return invalid("tool_choice.function.name", "tool_choice.function.name is required")
	}
	r.ToolChoice = llm.ToolChoice{Mode: "tool", Name: name}
	return nil
}

// clipParam bounds a client's value quoted back in an error message.
func clipParam(s string) string {
	if len(s) > 64 {
		return strings.ToValidUTF8(s[:64], "") + "…"
	}
	return s
}

func decodeMessages(r *llm.ChatRequest, v json.RawMessage) *llm.Error {
	if isNull(v) {
		return invalid("messages", "messages is required")
	}
	a, e := array(v, "messages")
	if e != nil {
		return e
	}
	if len(a) == 0 {
		return invalid("messages", "messages must not be empty")
	}
	head := true
	r.Messages = make([]llm.Message, 0, len(a))
	for i, x := range a {
		p := fmt.Sprintf("messages[%d]", i)
		var m rawMessage
		if ok, e := object(x, p, &m); !ok {
			if e == nil {
				e = invalid(p, "%s must be an object", p)
			}
			return e
		}
		role, e := str(m.Role, p+".role")
		if e != nil {
			return e
		}
		msg := llm.Message{}
		if msg.Name, e = str(m.Name, p+".name"); e != nil {
			return e
		}
		switch role {
		case "system", "developer":
			msg.Role = llm.RoleSystem
		case "user":
			msg.Role = llm.RoleUser
		case "assistant":
			msg.Role = llm.RoleAssistant
		case "tool":
			msg.Role = llm.RoleTool
		case "":
			return invalid(p+".role", "%s.role is required", p)
		default:
			return invalid(p+".role", "role %q is not supported", clipParam(role))
		}
		if msg.Role == llm.RoleAssistant {
			rc, e := str(m.ReasoningContent, p+".reasoning_content")
			if e != nil {
				return e
			}
			if rc != "" {
				msg.Content = append(msg.Content, llm.Part{Type: llm.PartThinking, Text: rc})
			}
		}
		parts, e := decodeContent(m.Content, p+".content", msg.Role)
		if e != nil {
			return e
		}
		msg.Content = append(msg.Content, parts...)
		switch msg.Role {
		case llm.RoleAssistant:
			calls, e := array(m.ToolCalls, p+".tool_calls")
			if e != nil {
				return e
			}
			for j, c := range calls {
				tc, e := decodeToolCall(c, fmt.Sprintf("%s.tool_calls[%d]", p, j))
				if e != nil {
					return e
				}
				msg.ToolCalls = append(msg.ToolCalls, tc)
			}
		case llm.RoleTool:
			if msg.ToolCallID, e = str(m.ToolCallID, p+".tool_call_id"); e != nil {
				return e
			}
			if msg.ToolCallID == "" {
				return invalid(p+".tool_call_id", "%s.tool_call_id is required for a tool message", p)
			}
		}
		if head && msg.Role == llm.RoleSystem {
			r.System = append(r.System, msg.Content...)
			continue
		}
		head = false
		r.Messages = append(r.Messages, msg)
	}
	return nil
}

func decodeToolCall(v json.RawMessage, p string) (llm.ToolCall, *llm.Error) {
	var tc rawToolCall
	if ok, e := object(v, p, &tc); !ok {
		if e == nil {
			e = invalid(p, "%s must be an object", p)
		}
		return llm.ToolCall{}, e
	}
	var out llm.ToolCall
	var e *llm.Error
	if out.ID, e = str(tc.ID, p+".id"); e != nil {
		return out, e
	}
	if t, e := str(tc.Type, p+".type"); e != nil {
		return out, e
	} else if t != "" && t != "function" {
		return out, invalid(p+".type", "tool call type %q is not supported", clipParam(t))
	}
	var f rawFunction
	if ok, e := object(tc.Function, p+".function", &f); !ok {
		if e == nil {
			e = invalid(p+".function", "%s.function is required", p)
		}
		return out, e
	}
	if out.Name, e = str(f.Name, p+".function.name"); e != nil {
		return out, e
	}
	if out.Arguments, e = str(f.Arguments, p+".function.arguments"); e != nil {
		return out, e
	}
	return out, nil
}

// decodeContent reads a message's content: a string, null, or an array
// of parts (text, image_url, and on assistant messages refusal).
func decodeContent(v json.RawMessage, p string, role llm.Role) ([]llm.Part, *llm.Error) {
	if isNull(v) {
		return nil, nil
	}
	if v[0] == '"' {
		s, e := str(v, p)
		if e != nil {
			return nil, e
		}
		return []llm.Part{{Type: llm.PartText, Text: s}}, nil
	}
	a, e := array(v, p)
	if e != nil {
		return nil, invalid(p, "%s must be a string or an array of content parts", p)
	}
	if len(a) > MaxParts {
		return nil, invalid(p, "%s has more than %d parts", p, MaxParts)
	}
	parts := make([]llm.Part, 0, len(a))
	for j, x := range a {
		pp := fmt.Sprintf("%s[%d]", p, j)
		var rp rawPart
		if ok, e := object(x, pp, &rp); !ok {
			if e == nil {
				e = invalid(pp, "%s must be an object", pp)
			}
			return nil, e
		}
		t, e := str(rp.Type, pp+".type")
		if e != nil {
			return nil, e
		}
		switch {
		case t == "text":
			s, e := str(rp.Text, pp+".text")
			if e != nil {
				return nil, e
			}
			parts = append(parts, llm.Part{Type: llm.PartText, Text: s})
		case t == "refusal" && role == llm.RoleAssistant:
			s, e := str(rp.Refusal, pp+".refusal")
			if e != nil {
				return nil, e
			}
			parts = append(parts, llm.Part{Type: llm.PartText, Text: s})
		case t == "image_url" && (role == llm.RoleUser || role == llm.RoleSystem):
			img, e := decodeImage(rp.ImageURL, pp+".image_url")
			if e != nil {
				return nil, e
			}
			parts = append(parts, llm.Part{Type: llm.PartImage, Image: img})
		case t == "":
			return nil, invalid(pp+".type", "%s.type is required", pp)
		default:
			return nil, invalid(pp+".type", "content part type %q is not supported in a %s message", clipParam(t), role)
		}
	}
	return parts, nil
}

// decodeImage reads an image_url part's value: {"url","detail"} (or a
// bare URL string, as some clients send). A data: URL is decoded into
// MediaType and Data.
func decodeImage(v json.RawMessage, p string) (*llm.Image, *llm.Error) {
	var iu rawImageURL
	var url string
	var e *llm.Error
	switch {
	case len(v) > 0 && v[0] == '"':
		if url, e = str(v, p); e != nil {
			return nil, e
		}
	default:
		ok, e := object(v, p, &iu)
		if e != nil {
			return nil, e
		}
		if !ok {
			return nil, invalid(p, "%s is required", p)
		}
		if url, e = str(iu.URL, p+".url"); e != nil {
			return nil, e
		}
	}
	img := &llm.Image{}
	if img.Detail, e = str(iu.Detail, p+".detail"); e != nil {
		return nil, e
	}
	if rest, ok := cutPrefixFold(url, "data:"); ok {
		meta, data, ok := strings.Cut(rest, ",")
		mt, b64 := strings.CutSuffix(meta, ";base64")
		if !ok || !b64 || data == "" {
			return nil, invalid(p+".url", "%s.url must be a base64 data URL or an http(s) URL", p)
		}
		img.MediaType, img.Data = mt, data
		return img, nil
	}
	low := strings.ToLower(url[:min(len(url), 8)])
	if !strings.HasPrefix(low, "https://") && !strings.HasPrefix(low, "http://") {
		return nil, invalid(p+".url", "%s.url must be a base64 data URL or an http(s) URL", p)
	}
	img.URL = url
	return img, nil
}

func cutPrefixFold(s, prefix string) (string, bool) {
	if len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix) {
		return s[len(prefix):], true
	}
	return s, false
}

// RequestOptions adjust AppendChatRequestWith's output to the upstream.
type RequestOptions struct {
	// MaxCompletionTokens sends the token bound as max_completion_tokens
	// (OpenAI itself, whose reasoning models refuse max_tokens) rather
	// than max_tokens (what OpenAI-compatible servers all understand).
	MaxCompletionTokens bool
	// NoStreamOptions leaves out the stream_options a streamed request
	// otherwise carries, for servers that reject it.
	NoStreamOptions bool
}

// AppendChatRequest appends r as an OpenAI chat completions request
// (with default RequestOptions). See AppendChatRequestWith.
func AppendChatRequest(dst []byte, r *llm.ChatRequest) ([]byte, *llm.Error) {
	return AppendChatRequestWith(dst, r, RequestOptions{})
}

// AppendChatRequestWith appends r as an OpenAI chat completions request.
// A streamed request asks for usage (stream_options.include_usage) unless
// o says not to. Tool results are tool messages (images in them follow
// the run of tool messages as a user message: OpenAI's tool messages
// carry text only); inline images are data URLs. What OpenAI has no
// member for is dropped: thinking parts, TopK, ThinkingBudget, IsError.
// tool_choice and parallel_tool_calls are sent only with tools (OpenAI
// refuses them alone). A tool's parameters or a response schema that is
// not valid JSON, or a non-finite number, is a KindInvalidRequest error.
func AppendChatRequestWith(dst []byte, r *llm.ChatRequest, o RequestOptions) ([]byte, *llm.Error) {
	b := append(dst, `{"model":`...)
	b = appendString(b, r.Model)
	b = append(b, `,"messages":[`...)
	first := true
	sep := func() {
		if !first {
			b = append(b, ',')
		}
		first = false
	}
	if len(r.System) > 0 {
		sep()
		b = append(b, `{"role":"system","content":`...)
		b = appendContent(b, r.System, false)
		b = append(b, '}')
	}
	var pending []llm.Part // images of tool results, sent after the run of tool messages
	for i := range r.Messages {
		m := &r.Messages[i]
		if m.Role != llm.RoleTool && len(pending) > 0 {
			sep()
			b = append(b, `{"role":"user","content":`...)
			b = appendContent(b, pending, false)
			b = append(b, '}')
			pending = pending[:0]
		}
		sep()
		switch m.Role {
		case llm.RoleTool:
			b = append(b, `{"role":"tool","tool_call_id":`...)
			b = appendString(b, m.ToolCallID)
			b = append(b, `,"content":`...)
			b = appendContent(b, m.Content, true)
			for _, p := range m.Content {
				if p.Type == llm.PartImage && p.Image != nil {
					pending = append(pending, p)
				}
			}
			b = append(b, '}')
			continue
		case llm.RoleAssistant:
			b = append(b, `{"role":"assistant"`...)
		case llm.RoleSystem:
			b = append(b, `{"role":"system"`...)
		default:
			b = append(b, `{"role":"user"`...)
		}
		if m.Name != "" {
			b = append(b, `,"name":`...)
			b = appendString(b, m.Name)
		}
		b = append(b, `,"content":`...)
		if m.Role == llm.RoleAssistant && len(m.ToolCalls) > 0 && !hasText(m.Content) {
			b = append(b, "null"...)
		} else {
			b = appendContent(b, m.Content, m.Role == llm.RoleAssistant)
		}
		if m.Role == llm.RoleAssistant && len(m.ToolCalls) > 0 {
			b = append(b, `,"tool_calls":[`...)
			for j, tc := range m.ToolCalls {
				if j > 0 {
					b = append(b, ',')
				}
				b = appendToolCall(b, tc, j)
			}
			b = append(b, ']')
		}
		b = append(b, '}')
	}
	if len(pending) > 0 {
		sep()
		b = append(b, `{"role":"user","content":`...)
		b = appendContent(b, pending, false)
		b = append(b, '}')
	}
	b = append(b, ']')
	if len(r.Tools) > 0 {
		b = append(b, `,"tools":[`...)
		for i, t := range r.Tools {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"type":"function","function":{"name":`...)
			b = appendString(b, t.Name)
			if t.Description != "" {
				b = append(b, `,"description":`...)
				b = appendString(b, t.Description)
			}
			if len(t.Parameters) > 0 {
				if !jsonspan.Valid(t.Parameters) {
					return dst, invalid(fmt.Sprintf("tools[%d].parameters", i), "the parameters of tool %d are not valid JSON", i)
				}
				b = append(append(b, `,"parameters":`...), t.Parameters...)
			}
			if t.Strict {
				b = append(b, `,"strict":true`...)
			}
			b = append(b, "}}"...)
		}
		b = append(b, ']')
		switch r.ToolChoice.Mode {
		case "auto", "none", "required":
			b = append(b, `,"tool_choice":"`...)
			b = append(append(b, r.ToolChoice.Mode...), '"')
		case "tool":
			b = append(b, `,"tool_choice":{"type":"function","function":{"name":`...)
			b = append(appendString(b, r.ToolChoice.Name), "}}"...)
		}
		if r.ParallelToolCalls != nil {
			if *r.ParallelToolCalls {
				b = append(b, `,"parallel_tool_calls":true`...)
			} else {
				b = append(b, `,"parallel_tool_calls":false`...)
			}
		}
	}
	if r.MaxTokens > 0 {
		if o.MaxCompletionTokens {
			b = append(b, `,"max_completion_tokens":`...)
		} else {
			b = append(b, `,"max_tokens":`...)
		}
		b = appendInt(b, int64(r.MaxTokens))
	}
	var ok bool
	for _, f := range []struct {
		name string
		v    *float64
	}{{"temperature", r.Temperature}, {"top_p", r.TopP}, {"presence_penalty", r.PresencePenalty}, {"frequency_penalty", r.FrequencyPenalty}} {
		if f.v == nil {
			continue
		}
		b = append(append(append(b, `,"`...), f.name...), `":`...)
		if b, ok = appendFloat(b, *f.v); !ok {
			return dst, invalid(f.name, "%s must be a finite number", f.name)
		}
	}
	if len(r.Stop) > 0 {
		b = append(b, `,"stop":[`...)
		for i, s := range r.Stop {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, s)
		}
		b = append(b, ']')
	}
	if r.N > 1 {
		b = append(b, `,"n":`...)
		b = appendInt(b, int64(r.N))
	}
	if r.Seed != nil {
		b = append(b, `,"seed":`...)
		b = appendInt(b, *r.Seed)
	}
	if r.Stream {
		b = append(b, `,"stream":true`...)
		if !o.NoStreamOptions {
			b = append(b, `,"stream_options":{"include_usage":true}`...)
		}
	}
	if rf := r.ResponseFormat; rf != nil {
		switch rf.Type {
		case "text", "json_object":
			b = append(append(append(b, `,"response_format":{"type":"`...), rf.Type...), `"}`...)
		case "json_schema":
			b = append(b, `,"response_format":{"type":"json_schema","json_schema":{"name":`...)
			name := rf.Name
			if name == "" {
				name = "response" // OpenAI requires a name
			}
			b = appendString(b, name)
			if len(rf.Schema) > 0 {
				if !jsonspan.Valid(rf.Schema) {
					return dst, invalid("response_format.json_schema.schema", "the response schema is not valid JSON")
				}
				b = append(append(b, `,"schema":`...), rf.Schema...)
			}
			if rf.Strict {
				b = append(b, `,"strict":true`...)
			}
			b = append(b, "}}"...)
		case "":
		default:
			return dst, invalid("response_format.type", "response format %q is not supported by OpenAI", clipParam(rf.Type))
		}
	}
	if r.ReasoningEffort != "" {
		b = append(b, `,"reasoning_effort":`...)
		b = appendString(b, r.ReasoningEffort)
	}
	if r.User != "" {
		b = append(b, `,"user":`...)
		b = appendString(b, r.User)
	}
	return append(b, '}'), nil
}

func hasText(parts []llm.Part) bool {
	for _, p := range parts {
		if p.Type == llm.PartText {
			return true
		}
	}
	return false
}

// appendContent appends message content: a string when it is one text
// part (or none), else an array of text and image_url parts. Thinking
// parts are dropped; textOnly drops images too (assistant and tool
// messages carry text only).
func appendContent(b []byte, parts []llm.Part, textOnly bool) []byte {
	n, texts := 0, 0
	for _, p := range parts {
		switch {
		case p.Type == llm.PartText:
			n++
			texts++
		case p.Type == llm.PartImage && p.Image != nil && !textOnly:
			n++
		}
	}
	if n == texts && texts <= 1 {
		for _, p := range parts {
			if p.Type == llm.PartText {
				return appendString(b, p.Text)
			}
		}
		return append(b, `""`...)
	}
	b = append(b, '[')
	first := true
	for _, p := range parts {
		switch {
		case p.Type == llm.PartText:
			if !first {
				b = append(b, ',')
			}
			first = false
			b = append(b, `{"type":"text","text":`...)
			b = append(appendString(b, p.Text), '}')
		case p.Type == llm.PartImage && p.Image != nil && !textOnly:
			if !first {
				b = append(b, ',')
			}
			first = false
			b = appendImage(b, p.Image)
		}
	}
	return append(b, ']')
}

func appendImage(b []byte, img *llm.Image) []byte {
	b = append(b, `{"type":"image_url","image_url":{"url":`...)
	if img.Data != "" {
		mt := img.MediaType
		if mt == "" {
			mt = "image/png"
		}
		b = appendString(b, "data:"+mt+";base64,"+img.Data)
	} else {
		b = appendString(b, img.URL)
	}
	if img.Detail != "" {
		b = append(b, `,"detail":`...)
		b = appendString(b, img.Detail)
	}
	return append(b, "}}"...)
}

func appendToolCall(b []byte, tc llm.ToolCall, i int) []byte {
	b = append(b, `{"id":`...)
	if tc.ID == "" {
		b = append(b, `"call_`...)
		b = appendInt(b, int64(i))
		b = append(b, '"')
	} else {
		b = appendString(b, tc.ID)
	}
	b = append(b, `,"type":"function","function":{"name":`...)
	b = appendString(b, tc.Name)
	b = append(b, `,"arguments":`...)
	args := tc.Arguments
	if args == "" {
		args = "{}"
	}
	b = appendString(b, args)
	return append(b, "}}"...)
}

package bedrock

import (
	"bytes"
	"math"
	"strconv"
	"strings"

	"github.com/sluice-ai/sluice/llm"
	"github.com/sluice-ai/sluice/wire/jsonspan"
)

// AppendConverseRequest appends the Converse (and ConverseStream) body of
// r to dst. The model is not in the body: it goes in the URL. What the
// Converse API cannot express is a KindInvalidRequest error: n > 1, an
// image given by URL (the provider fetches those first) or of a type
// Bedrock lacks, tool arguments or schemas that are not JSON objects, a
// JSON response format together with tools.
//
// Converse has no response format: a json_object or json_schema format is
// emulated with a forced tool, JSONResponseTool, whose input schema is the
// format's schema ({"type":"object"} for json_object); the decoders turn
// that tool's input back into the answer's text, finishing with "stop".
//
// The mapping:
//   - system parts → system [{text}], a {cachePoint} after each part
//     marked CacheControl (also inside messages);
//   - messages → messages with roles user and assistant: tool results
//     (RoleTool) become toolResult blocks of a user message, system
//     messages later in the conversation user text; consecutive messages
//     of one role are merged into one, as Bedrock requires roles to
//     alternate; messages left without content are dropped;
//   - assistant thinking parts → reasoningContent (first), tool calls →
//     toolUse blocks (last);
//   - max_tokens, temperature, top_p, stop → inferenceConfig;
//   - tools → toolConfig.tools[].toolSpec; tool choice auto → {auto},
//     required → {any}, a named tool → {tool}, none → no toolConfig at all;
//   - top_k and the thinking budget → additionalModelRequestFields
//     (top_k, and thinking {type: enabled, budget_tokens} as Anthropic's
//     models on Bedrock take it).
//
// Dropped, as Converse has no field for them: seed, user, presence and
// frequency penalties, parallel_tool_calls, reasoning_effort and OpenAI's
// image detail hint.
func AppendConverseRequest(dst []byte, r *llm.ChatRequest) ([]byte, *llm.Error) {
	if r.N > 1 {
		return dst, llm.Errorf(llm.KindInvalidRequest, "n > 1 is not supported for bedrock")
	}
	jsonSchema, err := responseSchema(r)
	if err != nil {
		return dst, err
	}
	e := encoder{b: dst}
	e.b = append(e.b, `{"messages":[`...)
	for i := range r.Messages {
		if err := e.message(&r.Messages[i]); err != nil {
			return dst, err
		}
	}
	e.closeMessage()
	e.b = append(e.b, ']')
	if len(r.System) > 0 {
		e.b = append(e.b, `,"system":[`...)
		e.n = 0
		for i := range r.System {
			p := &r.System[i]
			if p.Type != llm.PartText {
				return dst, llm.Errorf(llm.KindInvalidRequest, "bedrock takes only text in the system prompt")
			}
			if p.Text != "" {
				e.block()
				e.b = append(e.b, `{"text":`...)
				e.b = appendString(e.b, p.Text)
				e.b = append(e.b, '}')
			}
			if p.CacheControl {
				e.cachePoint()
			}
		}
		e.b = append(e.b, ']')
	}
	if err := e.inference(r); err != nil {
		return dst, err
	}
	if jsonSchema != nil {
		e.jsonTool(jsonSchema)
	} else if err := e.tools(r); err != nil {
		return dst, err
	}
	if r.TopK != nil || r.ThinkingBudget > 0 {
		e.b = append(e.b, `,"additionalModelRequestFields":{`...)
		if r.TopK != nil {
			e.b = append(e.b, `"top_k":`...)
			e.b = strconv.AppendInt(e.b, int64(*r.TopK), 10)
		}
		if r.ThinkingBudget > 0 {
			if r.TopK != nil {
				e.b = append(e.b, ',')
			}
			e.b = append(e.b, `"thinking":{"type":"enabled","budget_tokens":`...)
			e.b = strconv.AppendInt(e.b, int64(r.ThinkingBudget), 10)
			e.b = append(e.b, '}')
		}
		e.b = append(e.b, '}')
	}
	e.b = append(e.b, '}')
	return e.b, nil
}

// JSONResponseTool is the tool a JSON response format is emulated with.
// Clients may not name a tool so.
const JSONResponseTool = "sluice_json_response"

// responseSchema returns the schema of a JSON response format (nil for
// none or text).
func responseSchema(r *llm.ChatRequest) ([]byte, *llm.Error) {
	rf := r.ResponseFormat
	if rf == nil || rf.Type == "" || rf.Type == "text" {
		return nil, nil
	}
	if rf.Type != "json_object" && rf.Type != "json_schema" {
		return nil, llm.Errorf(llm.KindInvalidRequest, "response_format %q is not supported for bedrock", clipName(rf.Type))
	}
	if len(r.Tools) > 0 && r.ToolChoice.Mode != "none" {
		return nil, llm.Errorf(llm.KindInvalidRequest, "response_format %q together with tools is not supported for bedrock", rf.Type)
	}
	schema := bytes.TrimSpace(rf.Schema)
	if rf.Type == "json_object" || len(schema) == 0 || string(schema) == "null" {
		return []byte(`{"type":"object"}`), nil
	}
	if schema[0] != '{' || !jsonspan.Valid(schema) {
		return nil, llm.Errorf(llm.KindInvalidRequest, "the response_format schema must be a JSON Schema object")
	}
	return schema, nil
}

// jsonTool writes the toolConfig that forces the JSON response tool.
func (e *encoder) jsonTool(schema []byte) {
	e.b = append(e.b, `,"toolConfig":{"tools":[{"toolSpec":{"name":"`+JSONResponseTool+`","description":"Give the answer as this tool's input: a JSON object matching its schema.","inputSchema":{"json":`...)
	e.b = append(e.b, schema...)
	e.b = append(e.b, `}}}],"toolChoice":{"tool":{"name":"`+JSONResponseTool+`"}}}`...)
}

// encoder writes a Converse body. Messages are opened lazily, on their
// first content block, so that consecutive messages of one role merge and
// empty ones vanish.
type encoder struct {
	b    []byte
	role string // role of the open message, "" when none is open
	msgs int    // messages written
	n    int    // blocks written in the open message (or system list)
}

// open makes sure a message of role is open, closing another one.
func (e *encoder) open(role string) {
	if e.role == role {
		return
	}
	e.closeMessage()
	if e.msgs > 0 {
		e.b = append(e.b, ',')
	}
	e.b = append(e.b, `{"role":"`...)
	e.b = append(e.b, role...)
	e.b = append(e.b, `","content":[`...)
	e.role, e.n = role, 0
	e.msgs++
}

func (e *encoder) closeMessage() {
	if e.role != "" {
		e.b = append(e.b, "]}"...)
		e.role = ""
	}
}

// block writes the separator before a content block.
func (e *encoder) block() {
	if e.n > 0 {
		e.b = append(e.b, ',')
	}
	e.n++
}

func (e *encoder) cachePoint() {
	e.block()
	e.b = append(e.b, `{"cachePoint":{"type":"default"}}`...)
}

func (e *encoder) message(m *llm.Message) *llm.Error {
	switch m.Role {
	case llm.RoleUser, llm.RoleSystem:
		for i := range m.Content {
			if err := e.part("user", &m.Content[i]); err != nil {
				return err
			}
		}
	case llm.RoleAssistant:
		// Reasoning must lead the assistant's content.
		for i := range m.Content {
			if m.Content[i].Type == llm.PartThinking {
				if err := e.part("assistant", &m.Content[i]); err != nil {
					return err
				}
			}
		}
		for i := range m.Content {
			if m.Content[i].Type != llm.PartThinking {
				if err := e.part("assistant", &m.Content[i]); err != nil {
					return err
				}
			}
		}
		for i := range m.ToolCalls {
			tc := &m.ToolCalls[i]
			args := strings.TrimSpace(tc.Arguments)
			if args == "" {
				args = "{}"
			}
			if args[0] != '{' || !jsonspan.Valid([]byte(args)) {
				return llm.Errorf(llm.KindInvalidRequest, "the arguments of tool call %q must be a JSON object for bedrock", clipName(tc.ID))
			}
			e.open("assistant")
			e.block()
			e.b = append(e.b, `{"toolUse":{"toolUseId":`...)
			e.b = appendString(e.b, tc.ID)
			e.b = append(e.b, `,"name":`...)
			e.b = appendString(e.b, tc.Name)
			e.b = append(e.b, `,"input":`...)
			e.b = append(e.b, args...)
			e.b = append(e.b, "}}"...)
		}
	case llm.RoleTool:
		e.open("user")
		e.block()
		e.b = append(e.b, `{"toolResult":{"toolUseId":`...)
		e.b = appendString(e.b, m.ToolCallID)
		e.b = append(e.b, `,"content":[`...)
		n := 0
		var cache bool
		for i := range m.Content {
			p := &m.Content[i]
			cache = cache || p.CacheControl
			switch p.Type {
			case llm.PartText:
				if n > 0 {
					e.b = append(e.b, ',')
				}
				e.b = append(e.b, `{"text":`...)
				e.b = appendString(e.b, p.Text)
				e.b = append(e.b, '}')
				n++
			case llm.PartImage:
				if n > 0 {
					e.b = append(e.b, ',')
				}
				var err *llm.Error
				if e.b, err = appendImage(e.b, p.Image); err != nil {
					return err
				}
				n++
			}
		}
		if n == 0 {
			// Bedrock requires content; an empty result is an empty text.
			e.b = append(e.b, `{"text":""}`...)
		}
		e.b = append(e.b, ']')
		if m.IsError {
			// status is sent only for failures: models other than
			// Anthropic's reject the field.
			e.b = append(e.b, `,"status":"error"`...)
		}
		e.b = append(e.b, "}}"...)
		if cache {
			e.cachePoint()
		}
	default:
		return llm.Errorf(llm.KindInvalidRequest, "message role %q is not supported for bedrock", clipName(string(m.Role)))
	}
	return nil
}

// part writes one content part into a message of role.
func (e *encoder) part(role string, p *llm.Part) *llm.Error {
	switch p.Type {
	case llm.PartText:
		if p.Text != "" { // Bedrock rejects blank text blocks
			e.open(role)
			e.block()
			e.b = append(e.b, `{"text":`...)
			e.b = appendString(e.b, p.Text)
			e.b = append(e.b, '}')
		}
	case llm.PartImage:
		if role != "user" {
			return llm.Errorf(llm.KindInvalidRequest, "bedrock takes images only in user messages")
		}
		e.open(role)
		e.block()
		var err *llm.Error
		if e.b, err = appendImage(e.b, p.Image); err != nil {
			return err
		}
	case llm.PartThinking:
		if role != "assistant" {
			return nil // reasoning is the model's own; nothing to send elsewhere
		}
		if p.Text == "" && p.Signature == "" {
			return nil
		}
		e.open(role)
		e.block()
		e.b = append(e.b, `{"reasoningContent":{"reasoningText":{"text":`...)
		e.b = appendString(e.b, p.Text)
		if p.Signature != "" {
			e.b = append(e.b, `,"signature":`...)
			e.b = appendString(e.b, p.Signature)
		}
		e.b = append(e.b, "}}}"...)
	default:
		return llm.Errorf(llm.KindInvalidRequest, "a content part of an unknown type is not supported for bedrock")
	}
	if p.CacheControl && e.role != "" {
		e.cachePoint()
	}
	return nil
}

// appendImage appends an image block.
func appendImage(b []byte, img *llm.Image) ([]byte, *llm.Error) {
	if img == nil || img.Data == "" {
		if img != nil && img.URL != "" {
			return b, llm.Errorf(llm.KindInvalidRequest, "image URLs are not supported for bedrock; send base64")
		}
		return b, llm.Errorf(llm.KindInvalidRequest, "an image without data is not supported for bedrock")
	}
	var format string
	switch strings.ToLower(strings.TrimSpace(img.MediaType)) {
	case "image/png":
		format = "png"
	case "image/jpeg", "image/jpg":
		format = "jpeg"
	case "image/gif":
		format = "gif"
	case "image/webp":
		format = "webp"
	default:
		return b, llm.Errorf(llm.KindInvalidRequest, "image type %q is not supported for bedrock (png, jpeg, gif, webp)", clipName(img.MediaType))
	}
	if !base64Text(img.Data) {
		return b, llm.Errorf(llm.KindInvalidRequest, "image data must be base64")
	}
	b = append(b, `{"image":{"format":"`...)
	b = append(b, format...)
	b = append(b, `","source":{"bytes":"`...)
	b = append(b, img.Data...)
	return append(b, `"}}}`...), nil
}

// base64Text reports whether s holds only the standard base64 alphabet
// and padding (it is copied into the body without escaping).
func base64Text(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '+' || c == '/' || c == '=') {
			return false
		}
	}
	return true
}

func (e *encoder) inference(r *llm.ChatRequest) *llm.Error {
	if r.MaxTokens <= 0 && r.Temperature == nil && r.TopP == nil && len(r.Stop) == 0 {
		return nil
	}
	e.b = append(e.b, `,"inferenceConfig":{`...)
	n := 0
	sep := func() {
		if n > 0 {
			e.b = append(e.b, ',')
		}
		n++
	}
	if r.MaxTokens > 0 {
		sep()
		e.b = append(e.b, `"maxTokens":`...)
		e.b = strconv.AppendInt(e.b, int64(r.MaxTokens), 10)
	}
	for _, f := range []struct {
		name string
		v    *float64
	}{{"temperature", r.Temperature}, {"topP", r.TopP}} {
		if f.v == nil {
			continue
		}
		if math.IsNaN(*f.v) || math.IsInf(*f.v, 0) {
			return llm.Errorf(llm.KindInvalidRequest, "%s must be a finite number", f.name)
		}
		sep()
		e.b = append(e.b, '"')
		e.b = append(e.b, f.name...)
		e.b = append(e.b, `":`...)
		e.b = appendFloat(e.b, *f.v)
	}
	if len(r.Stop) > 0 {
		sep()
		e.b = append(e.b, `"stopSequences":[`...)
		for i, s := range r.Stop {
			if i > 0 {
				e.b = append(e.b, ',')
			}
			e.b = appendString(e.b, s)
		}
		e.b = append(e.b, ']')
	}
	e.b = append(e.b, '}')
	return nil
}

func (e *encoder) tools(r *llm.ChatRequest) *llm.Error {
	if len(r.Tools) == 0 || r.ToolChoice.Mode == "none" {
		if r.ToolChoice.Mode == "tool" || r.ToolChoice.Mode == "required" {
			return llm.Errorf(llm.KindInvalidRequest, "tool_choice requires tools")
		}
		return nil
	}
	e.b = append(e.b, `,"toolConfig":{"tools":[`...)
	for i := range r.Tools {
		t := &r.Tools[i]
		if i > 0 {
			e.b = append(e.b, ',')
		}
		if t.Name == JSONResponseTool {
			return llm.Errorf(llm.KindInvalidRequest, "the tool name %s is reserved", JSONResponseTool)
		}
		e.b = append(e.b, `{"toolSpec":{"name":`...)
		e.b = appendString(e.b, t.Name)
		if t.Description != "" {
			e.b = append(e.b, `,"description":`...)
			e.b = appendString(e.b, t.Description)
		}
		e.b = append(e.b, `,"inputSchema":{"json":`...)
		schema := bytes.TrimSpace(t.Parameters)
		switch {
		case len(schema) == 0 || string(schema) == "null":
			e.b = append(e.b, `{"type":"object","properties":{}}`...)
		case schema[0] == '{' && jsonspan.Valid(schema):
			e.b = append(e.b, schema...)
		default:
			return llm.Errorf(llm.KindInvalidRequest, "the parameters of tool %q must be a JSON Schema object", clipName(t.Name))
		}
		e.b = append(e.b, "}}}"...)
	}
	e.b = append(e.b, ']')
	switch r.ToolChoice.Mode {
	case "", "auto":
		if r.ToolChoice.Mode == "auto" {
			e.b = append(e.b, `,"toolChoice":{"auto":{}}`...)
		}
	case "required":
		e.b = append(e.b, `,"toolChoice":{"any":{}}`...)
	case "tool":
		e.b = append(e.b, `,"toolChoice":{"tool":{"name":`...)
		e.b = appendString(e.b, r.ToolChoice.Name)
		e.b = append(e.b, "}}"...)
	default:
		return llm.Errorf(llm.KindInvalidRequest, "tool_choice %q is not supported for bedrock", clipName(r.ToolChoice.Mode))
	}
	e.b = append(e.b, '}')
	return nil
}

// clipName bounds a client-given name quoted in an error message.
func clipName(s string) string {
	if len(s) > 64 {
		s = s[:64]
	}
	return strings.ToValidUTF8(s, "")
}

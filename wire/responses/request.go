package responses

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/sluice-ai/sluice/llm"
	"github.com/sluice-ai/sluice/wire/jsonspan"
)

// Bounds of a decoded request (the body itself is bounded by the router).
const (
	// MaxToolCalls bounds the function calls of one assistant turn (the
	// consecutive function_call items merged into one message).
	MaxToolCalls = 128
	// MaxParts bounds the content parts of one message.
	MaxParts = 4096
)

// errStateMessage is the answer to a request that leans on conversation
// state kept by OpenAI.
const errStateMessage = "%s needs an OpenAI provider (the gateway keeps no conversation state)"

// errSyntax is a span walk's answer for bytes that are not what they
// should be (only reachable on input that jsonspan.Valid refused).
var errSyntax = errors.New("responses: malformed JSON")

// DecodeRequest decodes a Responses API request body into the neutral
// chat form. Requests the neutral form cannot carry (stored conversation
// state, OpenAI's hosted tools, files by id) and members of the wrong type
// are a KindInvalidRequest error naming the member in Param, in OpenAI's
// notation (input[2].content[0].image_url).
func DecodeRequest(raw []byte) (*llm.ChatRequest, *llm.Error) {
	if !jsonspan.Valid(raw) {
		return nil, llm.Errorf(llm.KindInvalidRequest, "the request body is not valid JSON")
	}
	d := decoder{req: &llm.ChatRequest{}}
	var input, instructions, safetyID []byte
	hasModel := false
	_, err := jsonspan.EachMember(raw, func(k []byte, vs, ve int) error {
		v := raw[vs:ve]
		if string(v) == "null" {
			return nil
		}
		var e *llm.Error
		switch string(k) {
		case "model":
			d.req.Model, e = str(v, "model")
			hasModel = true
		case "input":
			input = v
		case "instructions":
			instructions = v
		case "tools":
			e = d.tools(v)
		case "tool_choice":
			e = d.toolChoice(v)
		case "parallel_tool_calls":
			var b bool
			b, e = boolean(v, "parallel_tool_calls")
			d.req.ParallelToolCalls = &b
		case "max_output_tokens":
			d.req.MaxTokens, e = positiveInt(v, "max_output_tokens")
		case "temperature":
			d.req.Temperature, e = number(v, "temperature", 0, 2)
		case "top_p":
			d.req.TopP, e = number(v, "top_p", 0, 1)
		case "stream":
			d.req.Stream, e = boolean(v, "stream")
		case "text":
			e = d.text(v)
		case "reasoning":
			e = d.reasoning(v)
		case "user":
			d.req.User, e = str(v, "user")
		case "safety_identifier":
			safetyID = v
		case "previous_response_id":
			if s, ok := stringValue(v); !ok || s != "" {
				e = invalid("previous_response_id", errStateMessage, "previous_response_id")
			}
		case "conversation":
			e = invalid("conversation", errStateMessage, "conversation")
		case "store":
			var b bool
			if b, e = boolean(v, "store"); e == nil && b {
				e = invalid("store", errStateMessage, "store: true")
			}
		case "background":
			var b bool
			if b, e = boolean(v, "background"); e == nil && b {
				e = invalid("background", errStateMessage, "background: true")
			}
		case "prompt":
			e = invalid("prompt", "prompt templates need an OpenAI provider")
		}
		if e != nil {
			return e
		}
		return nil
	})
	if err != nil {
		var e *llm.Error
		if errors.As(err, &e) {
			return nil, e
		}
		return nil, llm.Errorf(llm.KindInvalidRequest, "the request body must be a JSON object")
	}
	if !hasModel || d.req.Model == "" {
		return nil, invalid("model", "Missing required parameter: 'model'.")
	}
	if instructions != nil {
		s, e := str(instructions, "instructions")
		if e != nil {
			return nil, e
		}
		if s != "" {
			d.req.System = append(d.req.System, llm.Part{Type: llm.PartText, Text: s})
		}
	}
	if input == nil {
		return nil, invalid("input", "Missing required parameter: 'input'.")
	}
	if e := d.input(input); e != nil {
		return nil, e
	}
	if d.req.User == "" && safetyID != nil {
		s, e := str(safetyID, "safety_identifier")
		if e != nil {
			return nil, e
		}
		d.req.User = s
	}
	return d.req, nil
}

// decoder holds the request being built.
type decoder struct {
	req *llm.ChatRequest
	// conversation is true once a message other than a system or
	// developer one was decoded: later system messages stay in Messages.
	conversation bool
	// thinking holds the thinking parts of reasoning items (the gateway's
	// own, see ThinkingPrefix) until the assistant turn they precede.
	thinking []llm.Part
}

func invalid(param, format string, args ...any) *llm.Error {
	e := llm.Errorf(llm.KindInvalidRequest, format, args...)
	e.Param = param
	return e
}

func wrongType(param, want string) *llm.Error {
	return invalid(param, "Invalid type for '%s': expected %s.", param, want)
}

func str(v []byte, param string) (string, *llm.Error) {
	s, ok := stringValue(v)
	if !ok {
		return "", wrongType(param, "a string")
	}
	return s, nil
}

func boolean(v []byte, param string) (bool, *llm.Error) {
	switch string(v) {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, wrongType(param, "a boolean")
}

func positiveInt(v []byte, param string) (int, *llm.Error) {
	n, err := strconv.ParseInt(string(v), 10, 64)
	if err != nil && !isRange(err) {
		return 0, wrongType(param, "an integer")
	}
	if n < 1 {
		return 0, invalid(param, "Invalid '%s': integer below minimum value 1.", param)
	}
	return clampInt(n), nil
}

func number(v []byte, param string, lo, hi float64) (*float64, *llm.Error) {
	if len(v) == 0 || (v[0] != '-' && (v[0] < '0' || v[0] > '9')) {
		return nil, wrongType(param, "a number")
	}
	f, err := strconv.ParseFloat(string(v), 64)
	if err != nil || f < lo || f > hi {
		return nil, invalid(param, "Invalid '%s': must be between %g and %g.", param, lo, hi)
	}
	return &f, nil
}

// eachElement calls fn with the span of each element of the JSON array
// in b (b[0] == '['), and its index.
func eachElement(b []byte, fn func(i, vs, ve int) *llm.Error) error {
	i := jsonspan.SkipWS(b, 1)
	if i < len(b) && b[i] == ']' {
		return nil
	}
	for n := 0; i < len(b); n++ {
		ve := jsonspan.ValueEnd(b, i)
		if e := fn(n, i, ve); e != nil {
			return e
		}
		i = jsonspan.SkipWS(b, ve)
		if i >= len(b) {
			break
		}
		if b[i] == ']' {
			return nil
		}
		if b[i] != ',' {
			break
		}
		i = jsonspan.SkipWS(b, i+1)
	}
	return errSyntax
}

// walkErr turns a span walk's error into the request error.
func walkErr(err error, param string) *llm.Error {
	if err == nil {
		return nil
	}
	var e *llm.Error
	if errors.As(err, &e) {
		return e
	}
	return invalid(param, "Invalid '%s': malformed JSON.", param)
}

// fields walks the members of the object v, calling fn for those that
// are not null; a v that is no object is a type error for param.
func fields(v []byte, param string, fn func(k string, v []byte) *llm.Error) *llm.Error {
	if len(v) == 0 || v[0] != '{' {
		return wrongType(param, "an object")
	}
	_, err := jsonspan.EachMember(v, func(k []byte, vs, ve int) error {
		mv := v[vs:ve]
		if string(mv) == "null" {
			return nil
		}
		if e := fn(string(k), mv); e != nil {
			return e
		}
		return nil
	})
	return walkErr(err, param)
}

func elemParam(param string, i int) string {
	return param + "[" + strconv.Itoa(i) + "]"
}

// input decodes the input member: a string (one user message) or an
// array of input items.
func (d *decoder) input(v []byte) *llm.Error {
	if v[0] == '"' {
		s, e := str(v, "input")
		if e != nil {
			return e
		}
		d.req.Messages = append(d.req.Messages, llm.Message{Role: llm.RoleUser, Content: []llm.Part{{Type: llm.PartText, Text: s}}})
		return nil
	}
	if v[0] != '[' {
		return wrongType("input", "a string or an array of input items")
	}
	return walkErr(eachElement(v, func(i, vs, ve int) *llm.Error {
		return d.item(v[vs:ve], elemParam("input", i))
	}), "input")
}

// item decodes one input item.
func (d *decoder) item(b []byte, param string) *llm.Error {
	var typ, role, content, callID, name, args, output, summary, encrypted []byte
	e := fields(b, param, func(k string, v []byte) *llm.Error {
		switch k {
		case "summary":
			summary = v
		case "encrypted_content":
			encrypted = v
		case "type":
			typ = v
		case "role":
			role = v
		case "content":
			content = v
		case "call_id":
			callID = v
		case "name":
			name = v
		case "arguments":
			args = v
		case "output":
			output = v
		}
		return nil
	})
	if e != nil {
		return e
	}
	t := "message"
	if typ != nil {
		if t, e = str(typ, param+".type"); e != nil {
			return e
		}
	}
	switch t {
	case "message":
		return d.message(role, content, param)
	case "function_call":
		return d.functionCall(callID, name, args, param)
	case "function_call_output":
		return d.functionOutput(callID, output, param)
	case "reasoning":
		return d.reasoningItem(summary, encrypted, param)
	case "item_reference":
		return invalid(param+".type", errStateMessage, "item_reference")
	}
	return invalid(param+".type", "input item type %s is only supported by OpenAI providers", clip(t))
}

// clip bounds a client-chosen name echoed in an error message.
func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

func (d *decoder) message(roleV, content []byte, param string) *llm.Error {
	if roleV == nil {
		return invalid(param+".role", "Missing required parameter: '%s.role'.", param)
	}
	r, e := str(roleV, param+".role")
	if e != nil {
		return e
	}
	var role llm.Role
	switch r {
	case "user":
		role = llm.RoleUser
	case "assistant":
		role = llm.RoleAssistant
	case "system", "developer":
		role = llm.RoleSystem
	default:
		return invalid(param+".role", "Invalid value for '%s.role': expected user, assistant, system or developer.", param)
	}
	if content == nil {
		return invalid(param+".content", "Missing required parameter: '%s.content'.", param)
	}
	parts, e := parts(content, param+".content")
	if e != nil {
		return e
	}
	if role == llm.RoleSystem && !d.conversation {
		d.req.System = append(d.req.System, parts...)
		return nil
	}
	if role == llm.RoleAssistant && len(d.thinking) > 0 {
		parts = append(d.thinking, parts...)
	}
	d.thinking = nil
	d.conversation = true
	d.req.Messages = append(d.req.Messages, llm.Message{Role: role, Content: parts})
	return nil
}

// parts decodes message content (or a function call's output): a string
// or an array of content parts.
func parts(v []byte, param string) ([]llm.Part, *llm.Error) {
	if v[0] == '"' {
		s, e := str(v, param)
		if e != nil {
			return nil, e
		}
		return []llm.Part{{Type: llm.PartText, Text: s}}, nil
	}
	if v[0] != '[' {
		return nil, wrongType(param, "a string or an array of content parts")
	}
	var ps []llm.Part
	err := eachElement(v, func(i, vs, ve int) *llm.Error {
		if i >= MaxParts {
			return invalid(param, "Invalid '%s': at most %d content parts.", param, MaxParts)
		}
		p, e := part(v[vs:ve], elemParam(param, i))
		if e != nil {
			return e
		}
		ps = append(ps, p)
		return nil
	})
	return ps, walkErr(err, param)
}

// part decodes one content part.
func part(b []byte, param string) (llm.Part, *llm.Error) {
	var typ, text, refusal, imageURL, fileID, detail []byte
	e := fields(b, param, func(k string, v []byte) *llm.Error {
		switch k {
		case "type":
			typ = v
		case "text":
			text = v
		case "refusal":
			refusal = v
		case "image_url":
			imageURL = v
		case "file_id":
			fileID = v
		case "detail":
			detail = v
		}
		return nil
	})
	if e != nil {
		return llm.Part{}, e
	}
	if typ == nil {
		return llm.Part{}, invalid(param+".type", "Missing required parameter: '%s.type'.", param)
	}
	t, e := str(typ, param+".type")
	if e != nil {
		return llm.Part{}, e
	}
	switch t {
	case "input_text", "output_text", "text":
		if text == nil {
			return llm.Part{}, invalid(param+".text", "Missing required parameter: '%s.text'.", param)
		}
		s, e := str(text, param+".text")
		return llm.Part{Type: llm.PartText, Text: s}, e
	case "refusal":
		s := ""
		if refusal != nil {
			if s, e = str(refusal, param+".refusal"); e != nil {
				return llm.Part{}, e
			}
		}
		return llm.Part{Type: llm.PartText, Text: s}, nil
	case "input_image":
		return image(imageURL, fileID, detail, param)
	case "input_file":
		return llm.Part{}, invalid(param+".type", "input_file needs an OpenAI provider (the gateway cannot read OpenAI files)")
	}
	return llm.Part{}, invalid(param+".type", "content part type %s is only supported by OpenAI providers", clip(t))
}

// image decodes an input_image part: an http(s) URL or a base64 data URL.
func image(urlV, fileID, detailV []byte, param string) (llm.Part, *llm.Error) {
	if fileID != nil {
		return llm.Part{}, invalid(param+".file_id", "input_image with file_id needs an OpenAI provider (the gateway cannot read OpenAI files)")
	}
	if urlV == nil {
		return llm.Part{}, invalid(param+".image_url", "Missing required parameter: '%s.image_url'.", param)
	}
	u, e := str(urlV, param+".image_url")
	if e != nil {
		return llm.Part{}, e
	}
	img := &llm.Image{}
	if detailV != nil {
		if img.Detail, e = str(detailV, param+".detail"); e != nil {
			return llm.Part{}, e
		}
		switch img.Detail {
		case "low", "high", "auto", "original":
		default:
			return llm.Part{}, invalid(param+".detail", "Invalid value for '%s.detail': expected low, high or auto.", param)
		}
	}
	switch {
	case hasPrefixFold(u, "data:"):
		meta, data, ok := strings.Cut(u[len("data:"):], ",")
		mt, isB64 := strings.CutSuffix(meta, ";base64")
		if !ok || !isB64 || mt == "" {
			return llm.Part{}, invalid(param+".image_url", "Invalid '%s.image_url': a data URL must be data:<media type>;base64,<data>.", param)
		}
		img.MediaType, img.Data = mt, data
	case hasPrefixFold(u, "https://"), hasPrefixFold(u, "http://"):
		img.URL = u
	default:
		return llm.Part{}, invalid(param+".image_url", "Invalid '%s.image_url': expected an http(s) URL or a base64 data URL.", param)
	}
	return llm.Part{Type: llm.PartImage, Image: img}, nil
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// functionCall decodes a function_call item into a tool call of an
// assistant message: consecutive calls (and calls right after an
// assistant message) share one message, as a chat turn holds them.
func (d *decoder) functionCall(callIDV, nameV, argsV []byte, param string) *llm.Error {
	var tc llm.ToolCall
	var e *llm.Error
	if callIDV == nil {
		return invalid(param+".call_id", "Missing required parameter: '%s.call_id'.", param)
	}
	if tc.ID, e = str(callIDV, param+".call_id"); e != nil {
		return e
	}
	if nameV == nil {
		return invalid(param+".name", "Missing required parameter: '%s.name'.", param)
	}
	if tc.Name, e = str(nameV, param+".name"); e != nil {
		return e
	}
	tc.Arguments = "{}"
	if argsV != nil {
		if tc.Arguments, e = str(argsV, param+".arguments"); e != nil {
			return e
		}
	}
	d.conversation = true
	msgs := d.req.Messages
	if len(d.thinking) > 0 {
		// The thinking that led to this call opens a new turn.
		d.req.Messages = append(msgs, llm.Message{Role: llm.RoleAssistant, Content: d.thinking, ToolCalls: []llm.ToolCall{tc}})
		d.thinking = nil
		return nil
	}
	if n := len(msgs); n > 0 && msgs[n-1].Role == llm.RoleAssistant {
		if len(msgs[n-1].ToolCalls) >= MaxToolCalls {
			return invalid(param, "Invalid 'input': at most %d function calls in one assistant turn.", MaxToolCalls)
		}
		msgs[n-1].ToolCalls = append(msgs[n-1].ToolCalls, tc)
		return nil
	}
	d.req.Messages = append(msgs, llm.Message{Role: llm.RoleAssistant, ToolCalls: []llm.ToolCall{tc}})
	return nil
}

// functionOutput decodes a function_call_output item into a tool message.
func (d *decoder) functionOutput(callIDV, output []byte, param string) *llm.Error {
	if callIDV == nil {
		return invalid(param+".call_id", "Missing required parameter: '%s.call_id'.", param)
	}
	id, e := str(callIDV, param+".call_id")
	if e != nil {
		return e
	}
	if output == nil {
		return invalid(param+".output", "Missing required parameter: '%s.output'.", param)
	}
	parts, e := parts(output, param+".output")
	if e != nil {
		return e
	}
	d.conversation = true
	d.thinking = nil
	d.req.Messages = append(d.req.Messages, llm.Message{Role: llm.RoleTool, ToolCallID: id, Content: parts})
	return nil
}

// reasoningItem keeps the thinking block of a reasoning item the gateway
// made (its encrypted_content starts with ThinkingPrefix) for the
// assistant turn that follows it. Other reasoning items carry OpenAI's
// encrypted reasoning, which only OpenAI can read: they are ignored.
func (d *decoder) reasoningItem(summary, encrypted []byte, param string) *llm.Error {
	if encrypted == nil {
		return nil
	}
	enc, e := str(encrypted, param+".encrypted_content")
	if e != nil {
		return e
	}
	sig, ok := strings.CutPrefix(enc, ThinkingPrefix)
	if !ok || sig == "" {
		return nil
	}
	if len(d.thinking) >= MaxParts {
		return invalid(param, "Invalid 'input': at most %d reasoning items before one assistant turn.", MaxParts)
	}
	var text strings.Builder
	if summary != nil {
		if summary[0] != '[' {
			return wrongType(param+".summary", "an array")
		}
		err := eachElement(summary, func(i, vs, ve int) *llm.Error {
			sp := elemParam(param+".summary", i)
			return fields(summary[vs:ve], sp, func(k string, v []byte) *llm.Error {
				if k != "text" {
					return nil
				}
				s, e := str(v, sp+".text")
				text.WriteString(s)
				return e
			})
		})
		if e := walkErr(err, param+".summary"); e != nil {
			return e
		}
	}
	d.thinking = append(d.thinking, llm.Part{Type: llm.PartThinking, Text: text.String(), Signature: sig})
	return nil
}

// tools decodes the tools member: function tools only.
func (d *decoder) tools(v []byte) *llm.Error {
	if v[0] != '[' {
		return wrongType("tools", "an array")
	}
	return walkErr(eachElement(v, func(i, vs, ve int) *llm.Error {
		param := elemParam("tools", i)
		var typ, name, desc, params, strict []byte
		e := fields(v[vs:ve], param, func(k string, v []byte) *llm.Error {
			switch k {
			case "type":
				typ = v
			case "name":
				name = v
			case "description":
				desc = v
			case "parameters":
				params = v
			case "strict":
				strict = v
			}
			return nil
		})
		if e != nil {
			return e
		}
		if typ == nil {
			return invalid(param+".type", "Missing required parameter: '%s.type'.", param)
		}
		t, e := str(typ, param+".type")
		if e != nil {
			return e
		}
		if t != "function" {
			return invalid(param+".type", "tool type %s is only supported by OpenAI providers", clip(t))
		}
		var tool llm.Tool
		if name == nil {
			return invalid(param+".name", "Missing required parameter: '%s.name'.", param)
		}
		if tool.Name, e = str(name, param+".name"); e != nil {
			return e
		}
		if tool.Name == "" {
			return invalid(param+".name", "Invalid '%s.name': empty string.", param)
		}
		if desc != nil {
			if tool.Description, e = str(desc, param+".description"); e != nil {
				return e
			}
		}
		if params != nil {
			if params[0] != '{' {
				return wrongType(param+".parameters", "an object")
			}
			tool.Parameters = bytes.Clone(params)
		}
		if strict != nil {
			if tool.Strict, e = boolean(strict, param+".strict"); e != nil {
				return e
			}
		}
		d.req.Tools = append(d.req.Tools, tool)
		return nil
	}), "tools")
}

// toolChoice decodes tool_choice: a mode, or one function by name.
func (d *decoder) toolChoice(v []byte) *llm.Error {
	if v[0] == '"' {
		s, e := str(v, "tool_choice")
		if e != nil {
			return e
		}
		switch s {
		case "auto", "none", "required":
			d.req.ToolChoice = llm.ToolChoice{Mode: s}
			return nil
		}
		return invalid("tool_choice", "Invalid value for 'tool_choice': expected auto, none or required.")
	}
	var typ, name []byte
	e := fields(v, "tool_choice", func(k string, v []byte) *llm.Error {
		switch k {
		case "type":
			typ = v
		case "name":
			name = v
		}
		return nil
	})
	if e != nil {
		return e
	}
	if typ == nil {
		return invalid("tool_choice.type", "Missing required parameter: 'tool_choice.type'.")
	}
	t, e := str(typ, "tool_choice.type")
	if e != nil {
		return e
	}
	switch t {
	case "function":
	case "allowed_tools":
		return invalid("tool_choice.type", "tool_choice allowed_tools is only supported by OpenAI providers")
	default:
		return invalid("tool_choice.type", "tool type %s is only supported by OpenAI providers", clip(t))
	}
	if name == nil {
		return invalid("tool_choice.name", "Missing required parameter: 'tool_choice.name'.")
	}
	n, e := str(name, "tool_choice.name")
	if e != nil {
		return e
	}
	d.req.ToolChoice = llm.ToolChoice{Mode: "tool", Name: n}
	return nil
}

// text decodes text.format into the response format.
func (d *decoder) text(v []byte) *llm.Error {
	return fields(v, "text", func(k string, v []byte) *llm.Error {
		if k != "format" {
			return nil // verbosity: a hint other providers lack
		}
		var typ, name, schema, strict []byte
		e := fields(v, "text.format", func(k string, v []byte) *llm.Error {
			switch k {
			case "type":
				typ = v
			case "name":
				name = v
			case "schema":
				schema = v
			case "strict":
				strict = v
			}
			return nil
		})
		if e != nil {
			return e
		}
		if typ == nil {
			return invalid("text.format.type", "Missing required parameter: 'text.format.type'.")
		}
		t, e := str(typ, "text.format.type")
		if e != nil {
			return e
		}
		rf := &llm.ResponseFormat{Type: t}
		switch t {
		case "text", "json_object":
		case "json_schema":
			if name == nil {
				return invalid("text.format.name", "Missing required parameter: 'text.format.name'.")
			}
			if rf.Name, e = str(name, "text.format.name"); e != nil {
				return e
			}
			if schema == nil {
				return invalid("text.format.schema", "Missing required parameter: 'text.format.schema'.")
			}
			if schema[0] != '{' {
				return wrongType("text.format.schema", "an object")
			}
			rf.Schema = bytes.Clone(schema)
			if strict != nil {
				if rf.Strict, e = boolean(strict, "text.format.strict"); e != nil {
					return e
				}
			}
		default:
			return invalid("text.format.type", "Invalid value for 'text.format.type': expected text, json_object or json_schema.")
		}
		d.req.ResponseFormat = rf
		return nil
	})
}

// reasoning decodes reasoning.effort.
func (d *decoder) reasoning(v []byte) *llm.Error {
	return fields(v, "reasoning", func(k string, v []byte) *llm.Error {
		if k != "effort" {
			return nil // summary: how much of the reasoning to show
		}
		s, e := str(v, "reasoning.effort")
		if e != nil {
			return e
		}
		switch s {
		case "none", "minimal", "low", "medium", "high", "xhigh":
			d.req.ReasoningEffort = s
			return nil
		}
		return invalid("reasoning.effort", "Invalid value for 'reasoning.effort': %s.", fmt.Sprintf("%q", clip(s)))
	})
}

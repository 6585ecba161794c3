package anthropic

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/sluice-ai/sluice/llm"
	"github.com/sluice-ai/sluice/wire/jsonspan"
)

// wireRequest is the part of a Messages request the codec reads.
type wireRequest struct {
	Model         *string         `json:"model"`
	System        json.RawMessage `json:"system"`
	Messages      []wireMessage   `json:"messages"`
	Tools         []wireTool      `json:"tools"`
	ToolChoice    *wireToolChoice `json:"tool_choice"`
	MaxTokens     *int            `json:"max_tokens"`
	Temperature   *float64        `json:"temperature"`
	TopP          *float64        `json:"top_p"`
	TopK          *int            `json:"top_k"`
	StopSequences []string        `json:"stop_sequences"`
	Stream        bool            `json:"stream"`
	Thinking      *wireThinking   `json:"thinking"`
	Metadata      *struct {
		UserID *string `json:"user_id"`
	} `json:"metadata"`
}

type wireMessage struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
}

// wireBlock is any content block.
type wireBlock struct {
	Type         string          `json:"type"`
	Text         string          `json:"text"`
	Source       *wireSource     `json:"source"`
	ID           string          `json:"id"`
	Name         string          `json:"name"`
	Input        json.RawMessage `json:"input"`
	ToolUseID    string          `json:"tool_use_id"`
	Content      json.RawMessage `json:"content"`
	IsError      bool            `json:"is_error"`
	Thinking     string          `json:"thinking"`
	Signature    string          `json:"signature"`
	Data         string          `json:"data"`
	CacheControl json.RawMessage `json:"cache_control"`
}

type wireSource struct {
	Type      string `json:"type"`
	MediaType string `json:"media_type"`
	Data      string `json:"data"`
	URL       string `json:"url"`
}

type wireTool struct {
	Type        string          `json:"type"`
	Name        string          `json:"name"`
	Description string          `json:"description"`
	InputSchema json.RawMessage `json:"input_schema"`
}

type wireToolChoice struct {
	Type                   string `json:"type"`
	Name                   string `json:"name"`
	DisableParallelToolUse bool   `json:"disable_parallel_tool_use"`
}

type wireThinking struct {
	Type         string `json:"type"`
	BudgetTokens int    `json:"budget_tokens"`
}

// badParam is a 400 naming param.
func badParam(param, format string, args ...any) *llm.Error {
	e := llm.Errorf(llm.KindInvalidRequest, format, args...)
	e.Param = param
	return e
}

// DecodeRequest decodes a Messages request body into neutral form.
// Fields of the wrong type, missing required fields (model, messages,
// max_tokens, as Anthropic requires them) and blocks that cannot be
// expressed are a KindInvalidRequest error naming the field in Param.
func DecodeRequest(raw []byte) (*llm.ChatRequest, *llm.Error) {
	var w wireRequest
	if err := json.Unmarshal(raw, &w); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return nil, badParam(te.Field, "%s: Input should be a valid %s", te.Field, jsonKind(te.Type.Kind().String()))
		}
		return nil, badParam("", "The request body is not valid JSON")
	}
	switch {
	case w.Model == nil:
		return nil, badParam("model", "model: Field required")
	case w.Messages == nil:
		return nil, badParam("messages", "messages: Field required")
	case w.MaxTokens == nil:
		return nil, badParam("max_tokens", "max_tokens: Field required")
	case *w.MaxTokens < 1:
		return nil, badParam("max_tokens", "max_tokens: Input should be greater than or equal to 1")
	case len(w.Messages) > MaxMessages:
		return nil, badParam("messages", "messages: at most %d messages are allowed", MaxMessages)
	case len(w.Tools) > MaxTools:
		return nil, badParam("tools", "tools: at most %d tools are allowed", MaxTools)
	case len(w.StopSequences) > MaxStopSequences:
		return nil, badParam("stop_sequences", "stop_sequences: at most %d sequences are allowed", MaxStopSequences)
	}
	r := &llm.ChatRequest{
		Model:       *w.Model,
		MaxTokens:   *w.MaxTokens,
		Temperature: w.Temperature,
		TopP:        w.TopP,
		TopK:        w.TopK,
		Stop:        w.StopSequences,
		Stream:      w.Stream,
	}
	if w.Metadata != nil && w.Metadata.UserID != nil {
		r.User = *w.Metadata.UserID
	}
	if w.Thinking != nil {
		switch w.Thinking.Type {
		case "enabled":
			if w.Thinking.BudgetTokens < 1 {
				return nil, badParam("thinking.budget_tokens", "thinking.budget_tokens: Field required")
			}
			r.ThinkingBudget = w.Thinking.BudgetTokens
		case "disabled":
		default:
			return nil, badParam("thinking.type", "thinking.type: Input should be 'enabled' or 'disabled'")
		}
	}
	if !isNull(bytes.TrimSpace(w.System)) {
		sys, e := decodeContent(w.System, "system", false)
		if e != nil {
			return nil, e
		}
		for _, b := range sys {
			if b.Type != "text" {
				return nil, badParam("system", "system: only text blocks are allowed")
			}
			r.System = append(r.System, llm.Part{Type: llm.PartText, Text: b.Text, CacheControl: hasCache(b.CacheControl)})
		}
	}
	for i := range w.Messages {
		var e *llm.Error
		if r.Messages, e = appendMessage(r.Messages, &w.Messages[i], i); e != nil {
			return nil, e
		}
	}
	for i, t := range w.Tools {
		if t.Type != "" && t.Type != "custom" {
			return nil, badParam(fmt.Sprintf("tools.%d.type", i), "tools.%d: tool type %q is only available from Anthropic itself", i, t.Type)
		}
		if t.Name == "" {
			return nil, badParam(fmt.Sprintf("tools.%d.name", i), "tools.%d.name: Field required", i)
		}
		var schema json.RawMessage
		if s := bytes.TrimSpace(t.InputSchema); !isNull(s) {
			if s[0] != '{' {
				return nil, badParam(fmt.Sprintf("tools.%d.input_schema", i), "tools.%d.input_schema: Input should be an object", i)
			}
			schema = s
		}
		r.Tools = append(r.Tools, llm.Tool{Name: t.Name, Description: t.Description, Parameters: schema})
	}
	if tc := w.ToolChoice; tc != nil {
		switch tc.Type {
		case "auto", "none":
			r.ToolChoice.Mode = tc.Type
		case "any":
			r.ToolChoice.Mode = "required"
		case "tool":
			if tc.Name == "" {
				return nil, badParam("tool_choice.name", "tool_choice.name: Field required")
			}
			r.ToolChoice = llm.ToolChoice{Mode: "tool", Name: tc.Name}
		default:
			return nil, badParam("tool_choice.type", "tool_choice.type: Input should be 'auto', 'any', 'tool' or 'none'")
		}
		if tc.DisableParallelToolUse {
			f := false
			r.ParallelToolCalls = &f
		}
	}
	return r, nil
}

// jsonKind names a Go kind as a JSON type, for messages.
func jsonKind(k string) string {
	switch {
	case k == "string":
		return "string"
	case k == "bool":
		return "boolean"
	case strings.HasPrefix(k, "int"), strings.HasPrefix(k, "uint"):
		return "integer"
	case strings.HasPrefix(k, "float"):
		return "number"
	case k == "slice":
		return "list"
	}
	return "object"
}

func hasCache(cc json.RawMessage) bool { return !isNull(bytes.TrimSpace(cc)) }

// decodeContent decodes a content value (a string, or an array of blocks).
// A string is one text block.
func decodeContent(raw json.RawMessage, param string, allowEmpty bool) ([]wireBlock, *llm.Error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return nil, badParam(param, "%s: Field required", param)
	}
	switch raw[0] {
	case '"':
		s, ok := unquote(raw)
		if !ok {
			return nil, badParam(param, "%s: Input should be a valid string", param)
		}
		return []wireBlock{{Type: "text", Text: s}}, nil
	case '[':
		// Count first: a hostile array must not be decoded whole.
		if n := countElems(raw); n > MaxBlocks {
			return nil, badParam(param, "%s: at most %d content blocks are allowed", param, MaxBlocks)
		}
		var bs []wireBlock
		if err := json.Unmarshal(raw, &bs); err != nil {
			var te *json.UnmarshalTypeError
			if errors.As(err, &te) {
				return nil, badParam(param+"."+te.Field, "%s.%s: Input should be a valid %s", param, te.Field, jsonKind(te.Type.Kind().String()))
			}
			return nil, badParam(param, "%s: Input should be a valid list", param)
		}
		return bs, nil
	}
	return nil, badParam(param, "%s: Input should be a valid string or list of content blocks", param)
}

// countElems counts the elements of the JSON array b (linear, no decode).
func countElems(b []byte) int {
	i := jsonspan.SkipWS(b, 1)
	if i >= len(b) || b[i] == ']' {
		return 0
	}
	n := 0
	for i < len(b) {
		n++
		i = jsonspan.SkipWS(b, jsonspan.ValueEnd(b, i))
		if i >= len(b) || b[i] != ',' {
			break
		}
		i = jsonspan.SkipWS(b, i+1)
	}
	return n
}

// appendMessage appends the neutral messages of Messages message i.
func appendMessage(out []llm.Message, m *wireMessage, i int) ([]llm.Message, *llm.Error) {
	param := "messages." + strconv.Itoa(i)
	if m.Role != "user" && m.Role != "assistant" {
		return nil, badParam(param+".role", "%s.role: Input should be 'user' or 'assistant'", param)
	}
	blocks, e := decodeContent(m.Content, param+".content", true)
	if e != nil {
		return nil, e
	}
	msg := llm.Message{Role: llm.Role(m.Role)}
	for j := range blocks {
		b := &blocks[j]
		bp := param + ".content." + strconv.Itoa(j)
		switch b.Type {
		case "text":
			msg.Content = append(msg.Content, llm.Part{Type: llm.PartText, Text: b.Text, CacheControl: hasCache(b.CacheControl)})
		case "image":
			p, e := imagePart(b, bp)
			if e != nil {
				return nil, e
			}
			msg.Content = append(msg.Content, p)
		case "thinking", "redacted_thinking":
			if m.Role != "assistant" {
				return nil, badParam(bp+".type", "%s: %s blocks are only allowed in assistant messages", bp, b.Type)
			}
			p := llm.Part{Type: llm.PartThinking, Text: b.Thinking, Signature: b.Signature}
			if b.Type == "redacted_thinking" {
				p.Text, p.Signature = "", b.Data
			}
			msg.Content = append(msg.Content, p)
		case "tool_use":
			if m.Role != "assistant" {
				return nil, badParam(bp+".type", "%s: tool_use blocks are only allowed in assistant messages", bp)
			}
			if len(msg.ToolCalls) >= MaxToolCalls {
				return nil, badParam(bp, "%s: at most %d tool_use blocks are allowed per message", bp, MaxToolCalls)
			}
			in := bytes.TrimSpace(b.Input)
			if isNull(in) {
				in = []byte("{}")
			} else if in[0] != '{' {
				return nil, badParam(bp+".input", "%s.input: Input should be an object", bp)
			}
			msg.ToolCalls = append(msg.ToolCalls, llm.ToolCall{ID: b.ID, Name: b.Name, Arguments: string(in)})
		case "tool_result":
			if m.Role != "user" {
				return nil, badParam(bp+".type", "%s: tool_result blocks are only allowed in user messages", bp)
			}
			tm := llm.Message{Role: llm.RoleTool, ToolCallID: b.ToolUseID, IsError: b.IsError}
			if c := bytes.TrimSpace(b.Content); !isNull(c) {
				inner, e := decodeContent(c, bp+".content", true)
				if e != nil {
					return nil, e
				}
				for k := range inner {
					ib := &inner[k]
					switch ib.Type {
					case "text":
						tm.Content = append(tm.Content, llm.Part{Type: llm.PartText, Text: ib.Text, CacheControl: hasCache(ib.CacheControl)})
					case "image":
						p, e := imagePart(ib, bp+".content."+strconv.Itoa(k))
						if e != nil {
							return nil, e
						}
						tm.Content = append(tm.Content, p)
					default:
						return nil, badParam(bp+".content", "%s.content: block type %q is not supported in a tool result", bp, clipName(ib.Type))
					}
				}
			}
			if hasCache(b.CacheControl) && len(tm.Content) > 0 {
				tm.Content[len(tm.Content)-1].CacheControl = true
			}
			// Tool results go before the rest of the user's content.
			out = append(out, tm)
		default:
			return nil, badParam(bp+".type", "%s: block type %q is not supported by this gateway's translation", bp, clipName(b.Type))
		}
	}
	if len(msg.Content) > 0 || len(msg.ToolCalls) > 0 || len(blocks) == 0 {
		out = append(out, msg)
	}
	return out, nil
}

func clipName(s string) string {
	if len(s) > 64 {
		return s[:64]
	}
	return s
}

func imagePart(b *wireBlock, param string) (llm.Part, *llm.Error) {
	if b.Source == nil {
		return llm.Part{}, badParam(param+".source", "%s.source: Field required", param)
	}
	switch b.Source.Type {
	case "base64":
		if b.Source.MediaType == "" || b.Source.Data == "" {
			return llm.Part{}, badParam(param+".source", "%s.source: media_type and data are required", param)
		}
		return llm.Part{Type: llm.PartImage, Image: &llm.Image{MediaType: b.Source.MediaType, Data: b.Source.Data}, CacheControl: hasCache(b.CacheControl)}, nil
	case "url":
		if b.Source.URL == "" {
			return llm.Part{}, badParam(param+".source.url", "%s.source.url: Field required", param)
		}
		return llm.Part{Type: llm.PartImage, Image: &llm.Image{URL: b.Source.URL}, CacheControl: hasCache(b.CacheControl)}, nil
	}
	return llm.Part{}, badParam(param+".source.type", "%s.source.type: Input should be 'base64' or 'url'", param)
}

// DefaultMaxTokens is the max_tokens sent when the neutral request has
// none (Anthropic requires one).
const DefaultMaxTokens = 4096

// reasoningBudget maps OpenAI's reasoning_effort to a thinking budget.
func reasoningBudget(effort string) int {
	switch effort {
	case "low":
		return 1024
	case "medium":
		return 2048
	case "high":
		return 4096
	}
	return 0
}

// AppendRequest appends r as a Messages request body. What Messages cannot
// express is a KindInvalidRequest error: n > 1, a JSON response format,
// tool call arguments that are not a JSON object, images without a media
// type, non-finite numbers.
func AppendRequest(dst []byte, r *llm.ChatRequest) ([]byte, *llm.Error) {
	if r.N > 1 {
		return dst, badParam("n", "n > 1 is not supported by Anthropic")
	}
	if f := r.ResponseFormat; f != nil && f.Type != "" && f.Type != "text" {
		return dst, badParam("response_format", "response_format %s is not supported by Anthropic; describe the format in the prompt or use a tool", clipName(f.Type))
	}
	for _, f := range []*float64{r.Temperature, r.TopP} {
		if f != nil && (math.IsNaN(*f) || math.IsInf(*f, 0)) {
			return dst, badParam("temperature", "temperature and top_p must be finite numbers")
		}
	}
	budget := r.ThinkingBudget
	if budget == 0 {
		budget = reasoningBudget(r.ReasoningEffort)
	}
	maxTokens := r.MaxTokens
	if maxTokens <= 0 {
		maxTokens = DefaultMaxTokens
		if budget >= maxTokens {
			maxTokens = budget + DefaultMaxTokens
		}
	}
	dst = append(dst, `{"model":`...)
	dst = appendString(dst, r.Model)
	dst = append(dst, `,"max_tokens":`...)
	dst = strconv.AppendInt(dst, int64(maxTokens), 10)

	// The system prompt: the neutral system parts, then any system
	// message met later in the conversation.
	sys := r.System
	for _, m := range r.Messages {
		if m.Role == llm.RoleSystem {
			if len(sys) == len(r.System) {
				sys = append([]llm.Part(nil), r.System...)
			}
			sys = append(sys, m.Content...)
		}
	}
	if len(sys) > 0 {
		var e *llm.Error
		if dst, e = appendSystem(dst, sys); e != nil {
			return dst, e
		}
	}
	dst = append(dst, `,"messages":[`...)
	var e *llm.Error
	if dst, e = appendMessages(dst, r.Messages); e != nil {
		return dst, e
	}
	dst = append(dst, ']')
	if len(r.Tools) > 0 {
		dst = append(dst, `,"tools":[`...)
		for i, t := range r.Tools {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, `{"name":`...)
			dst = appendString(dst, t.Name)
			if t.Description != "" {
				dst = append(dst, `,"description":`...)
				dst = appendString(dst, t.Description)
			}
			dst = append(dst, `,"input_schema":`...)
			if s := bytes.TrimSpace(t.Parameters); len(s) > 0 && s[0] == '{' && jsonspan.Valid(s) {
				dst = append(dst, s...)
			} else if isNull(s) {
				dst = append(dst, `{"type":"object","properties":{}}`...)
			} else {
				return dst, badParam(fmt.Sprintf("tools.%d.parameters", i), "tool %q: parameters must be a JSON object schema", clipName(t.Name))
			}
			dst = append(dst, '}')
		}
		dst = append(dst, ']')
		if tc := appendToolChoice(nil, r); tc != nil {
			dst = append(dst, `,"tool_choice":`...)
			dst = append(dst, tc...)
		}
	}
	if r.Temperature != nil {
		dst = append(dst, `,"temperature":`...)
		dst = strconv.AppendFloat(dst, *r.Temperature, 'g', -1, 64)
	}
	if r.TopP != nil {
		dst = append(dst, `,"top_p":`...)
		dst = strconv.AppendFloat(dst, *r.TopP, 'g', -1, 64)
	}
	if r.TopK != nil {
		dst = append(dst, `,"top_k":`...)
		dst = strconv.AppendInt(dst, int64(*r.TopK), 10)
	}
	if len(r.Stop) > 0 {
		dst = append(dst, `,"stop_sequences":[`...)
		for i, s := range r.Stop {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendString(dst, s)
		}
		dst = append(dst, ']')
	}
	if budget > 0 {
		dst = append(dst, `,"thinking":{"type":"enabled","budget_tokens":`...)
		dst = strconv.AppendInt(dst, int64(budget), 10)
		dst = append(dst, '}')
	}
	if r.User != "" {
		dst = append(dst, `,"metadata":{"user_id":`...)
		dst = appendString(dst, r.User)
		dst = append(dst, '}')
	}
	if r.Stream {
		dst = append(dst, `,"stream":true`...)
	}
	return append(dst, '}'), nil
}

func appendToolChoice(dst []byte, r *llm.ChatRequest) []byte {
	noParallel := r.ParallelToolCalls != nil && !*r.ParallelToolCalls
	var typ string
	switch r.ToolChoice.Mode {
	case "auto":
		typ = "auto"
	case "required":
		typ = "any"
	case "tool":
		typ = "tool"
	case "none":
		return append(dst, `{"type":"none"}`...)
	default:
		if !noParallel {
			return nil
		}
		typ = "auto"
	}
	dst = append(dst, `{"type":"`...)
	dst = append(dst, typ...)
	dst = append(dst, '"')
	if typ == "tool" {
		dst = append(dst, `,"name":`...)
		dst = appendString(dst, r.ToolChoice.Name)
	}
	if noParallel {
		dst = append(dst, `,"disable_parallel_tool_use":true`...)
	}
	return append(dst, '}')
}

func appendSystem(dst []byte, sys []llm.Part) ([]byte, *llm.Error) {
	cache := false
	for _, p := range sys {
		if p.Type != llm.PartText {
			return dst, badParam("messages", "system messages may hold only text for Anthropic")
		}
		cache = cache || p.CacheControl
	}
	dst = append(dst, `,"system":`...)
	if len(sys) == 1 && !cache {
		return appendString(dst, sys[0].Text), nil
	}
	dst = append(dst, '[')
	n := 0
	for _, p := range sys {
		if p.Text == "" {
			continue
		}
		if n > 0 {
			dst = append(dst, ',')
		}
		n++
		dst = append(dst, `{"type":"text","text":`...)
		dst = appendString(dst, p.Text)
		dst = appendCache(dst, p.CacheControl)
		dst = append(dst, '}')
	}
	return append(dst, ']'), nil
}

func appendCache(dst []byte, on bool) []byte {
	if on {
		dst = append(dst, `,"cache_control":{"type":"ephemeral"}`...)
	}
	return dst
}

// appendMessages appends the neutral conversation as Messages messages:
// runs of tool results become one user message of tool_result blocks,
// joined by the user message that follows them; system messages were
// moved to the system prompt; empty messages are left out.
func appendMessages(dst []byte, msgs []llm.Message) ([]byte, *llm.Error) {
	first := true
	open := false // a user message is open (tool results were written)
	blocks := 0   // blocks in the open message
	var e *llm.Error
	closeOpen := func() {
		if open {
			dst = append(dst, "]}"...)
			open = false
		}
	}
	for i := range msgs {
		m := &msgs[i]
		switch m.Role {
		case llm.RoleSystem:
			continue
		case llm.RoleTool:
			if !open {
				if !first {
					dst = append(dst, ',')
				}
				first = false
				dst = append(dst, `{"role":"user","content":[`...)
				open, blocks = true, 0
			}
			if blocks > 0 {
				dst = append(dst, ',')
			}
			blocks++
			if dst, e = appendToolResult(dst, m, i); e != nil {
				return dst, e
			}
			continue
		case llm.RoleUser:
			if len(m.ToolCalls) > 0 {
				return dst, badParam(fmt.Sprintf("messages.%d.tool_calls", i), "message %d: only assistant messages may make tool calls", i)
			}
			if open {
				// Join the user's content to the tool results before it.
				if dst, blocks, e = appendBlocks(dst, m, i, blocks); e != nil {
					return dst, e
				}
				closeOpen()
				continue
			}
		case llm.RoleAssistant:
			closeOpen()
		default:
			return dst, badParam(fmt.Sprintf("messages.%d.role", i), "message %d: role %q is not supported by Anthropic", i, clipName(string(m.Role)))
		}
		if !hasContent(m) {
			continue
		}
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = append(dst, `{"role":"`...)
		dst = append(dst, m.Role...)
		dst = append(dst, `","content":`...)
		if len(m.ToolCalls) == 0 && len(m.Content) == 1 && m.Content[0].Type == llm.PartText && !m.Content[0].CacheControl {
			dst = appendString(dst, m.Content[0].Text)
			dst = append(dst, '}')
			continue
		}
		dst = append(dst, '[')
		if dst, _, e = appendBlocks(dst, m, i, 0); e != nil {
			return dst, e
		}
		dst = append(dst, "]}"...)
	}
	closeOpen()
	return dst, nil
}

func hasContent(m *llm.Message) bool {
	if len(m.ToolCalls) > 0 {
		return true
	}
	for _, p := range m.Content {
		if p.Type != llm.PartText || p.Text != "" {
			return true
		}
	}
	return false
}

// appendBlocks appends m's content and tool calls as blocks, n being the
// count of blocks already in the array.
func appendBlocks(dst []byte, m *llm.Message, i, n int) ([]byte, int, *llm.Error) {
	var e *llm.Error
	for j := range m.Content {
		p := &m.Content[j]
		if p.Type == llm.PartText && p.Text == "" {
			continue
		}
		if n > 0 {
			dst = append(dst, ',')
		}
		n++
		if dst, e = appendPart(dst, p, i); e != nil {
			return dst, n, e
		}
	}
	for j := range m.ToolCalls {
		tc := &m.ToolCalls[j]
		if n > 0 {
			dst = append(dst, ',')
		}
		n++
		dst = append(dst, `{"type":"tool_use","id":`...)
		dst = appendString(dst, tc.ID)
		dst = append(dst, `,"name":`...)
		dst = appendString(dst, tc.Name)
		dst = append(dst, `,"input":`...)
		args := bytes.TrimSpace([]byte(tc.Arguments))
		switch {
		case len(args) == 0:
			dst = append(dst, "{}"...)
		case args[0] == '{' && jsonspan.Valid(args):
			dst = append(dst, args...)
		default:
			return dst, n, badParam(fmt.Sprintf("messages.%d.tool_calls.%d.function.arguments", i, j),
				"message %d: the arguments of tool call %d are not a JSON object", i, j)
		}
		dst = append(dst, '}')
	}
	return dst, n, nil
}

func appendPart(dst []byte, p *llm.Part, i int) ([]byte, *llm.Error) {
	switch p.Type {
	case llm.PartText:
		dst = append(dst, `{"type":"text","text":`...)
		dst = appendString(dst, p.Text)
	case llm.PartImage:
		im := p.Image
		if im == nil {
			return dst, badParam(fmt.Sprintf("messages.%d.content", i), "message %d: an image part has no image", i)
		}
		if im.Data != "" {
			if im.MediaType == "" {
				return dst, badParam(fmt.Sprintf("messages.%d.content", i), "message %d: an inline image needs a media type for Anthropic", i)
			}
			dst = append(dst, `{"type":"image","source":{"type":"base64","media_type":`...)
			dst = appendString(dst, im.MediaType)
			dst = append(dst, `,"data":`...)
			dst = appendString(dst, im.Data)
		} else {
			dst = append(dst, `{"type":"image","source":{"type":"url","url":`...)
			dst = appendString(dst, im.URL)
		}
		dst = append(dst, '}')
	case llm.PartThinking:
		if p.Text == "" && p.Signature != "" {
			dst = append(dst, `{"type":"redacted_thinking","data":`...)
			dst = appendString(dst, p.Signature)
		} else {
			dst = append(dst, `{"type":"thinking","thinking":`...)
			dst = appendString(dst, p.Text)
			dst = append(dst, `,"signature":`...)
			dst = appendString(dst, p.Signature)
		}
		return append(dst, '}'), nil
	default:
		return dst, badParam(fmt.Sprintf("messages.%d.content", i), "message %d: unknown content part", i)
	}
	dst = appendCache(dst, p.CacheControl)
	return append(dst, '}'), nil
}

func appendToolResult(dst []byte, m *llm.Message, i int) ([]byte, *llm.Error) {
	dst = append(dst, `{"type":"tool_result","tool_use_id":`...)
	dst = appendString(dst, m.ToolCallID)
	if m.IsError {
		dst = append(dst, `,"is_error":true`...)
	}
	for _, p := range m.Content {
		if p.Type == llm.PartThinking {
			return dst, badParam(fmt.Sprintf("messages.%d.content", i), "message %d: a tool result cannot hold thinking", i)
		}
	}
	if len(m.Content) == 1 && m.Content[0].Type == llm.PartText && !m.Content[0].CacheControl {
		dst = append(dst, `,"content":`...)
		dst = appendString(dst, m.Content[0].Text)
	} else if len(m.Content) > 0 {
		dst = append(dst, `,"content":[`...)
		n := 0
		var e *llm.Error
		for j := range m.Content {
			p := m.Content[j]
			if p.Type == llm.PartText && p.Text == "" {
				continue
			}
			if n > 0 {
				dst = append(dst, ',')
			}
			n++
			if dst, e = appendPart(dst, &p, i); e != nil {
				return dst, e
			}
		}
		dst = append(dst, ']')
	}
	return append(dst, '}'), nil
}

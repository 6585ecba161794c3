package openai

import (
	"github.com/sluice-ai/sluice/llm"
)

// streamEncoder renders neutral events as chat.completion.chunk events.
type streamEncoder struct {
	head         []byte // `{"id":…,"object":"chat.completion.chunk","created":…,"model":…,"choices":[`
	includeUsage bool
	choices      []choiceOut
}

// choiceOut is the state of one choice of the answer being encoded.
type choiceOut struct {
	index    int
	roleSent bool
	// tools are the neutral tool indexes seen, in order: a tool's position
	// here is its OpenAI index (0..n-1, whatever the neutral numbering).
	tools []int
}

// NewStreamEncoder returns an encoder of neutral events as OpenAI
// chat.completion.chunk server-sent events for the answer id of model,
// created at created (Unix seconds). The first chunk carries
// delta.role "assistant"; text is delta.content, thinking
// delta.reasoning_content, tool calls delta.tool_calls with OpenAI indexes
// 0..n-1 per choice in order of appearance (whatever the neutral ones);
// EventFinish is the chunk with finish_reason. With includeUsage every
// chunk has "usage":null and Finish sends the usage chunk
// ("choices":[]) before data: [DONE]. Choices beyond MaxChoices and tool
// calls beyond MaxToolCalls per choice are dropped.
func NewStreamEncoder(id, model string, created int64, includeUsage bool) llm.StreamEncoder {
	h := append(make([]byte, 0, 64+len(id)+len(model)), `{"id":`...)
	h = appendString(h, id)
	h = append(h, `,"object":"chat.completion.chunk","created":`...)
	h = appendInt(h, created)
	h = append(h, `,"model":`...)
	h = appendString(h, model)
	h = append(h, `,"choices":[`...)
	return &streamEncoder{head: h, includeUsage: includeUsage}
}

// choice returns the state of choice index, nil when out of bounds.
func (s *streamEncoder) choice(index int) *choiceOut {
	if index < 0 || index >= MaxChoices {
		return nil
	}
	for i := range s.choices {
		if s.choices[i].index == index {
			return &s.choices[i]
		}
	}
	s.choices = append(s.choices, choiceOut{index: index})
	return &s.choices[len(s.choices)-1]
}

// tool returns the OpenAI index of neutral tool t of c, allocating the
// next one when new (-1 beyond MaxToolCalls); isNew says it was.
func (c *choiceOut) tool(t int) (idx int, isNew bool) {
	for i, x := range c.tools {
		if x == t {
			return i, false
		}
	}
	if len(c.tools) >= MaxToolCalls {
		return -1, false
	}
	c.tools = append(c.tools, t)
	return len(c.tools) - 1, true
}

// open starts a chunk for choice c: `data: {head{"index":N,"delta":{`
// with the role on the choice's first delta.
func (s *streamEncoder) open(dst []byte, c *choiceOut) []byte {
	dst = append(dst, "data: "...)
	dst = append(dst, s.head...)
	dst = append(dst, `{"index":`...)
	dst = appendInt(dst, int64(c.index))
	dst = append(dst, `,"delta":{`...)
	if !c.roleSent {
		c.roleSent = true
		dst = append(dst, `"role":"assistant",`...)
	}
	return dst
}

// close ends a chunk opened by open, after the delta's members.
func (s *streamEncoder) close(dst []byte, finish string) []byte {
	if dst[len(dst)-1] == ',' {
		dst = dst[:len(dst)-1]
	}
	dst = append(dst, `},"logprobs":null,"finish_reason":`...)
	dst = appendNullable(dst, finish)
	dst = append(dst, "}]"...)
	if s.includeUsage {
		dst = append(dst, `,"usage":null`...)
	}
	return append(dst, "}\n\n"...)
}

// Encode implements llm.StreamEncoder.
func (s *streamEncoder) Encode(dst []byte, ev *llm.Event) []byte {
	switch ev.Kind {
	case llm.EventStart:
		c := s.choice(0)
		if c.roleSent {
			return dst
		}
		dst = s.open(dst, c)
		dst = append(dst, `"content":""`...)
		return s.close(dst, "")
	case llm.EventText, llm.EventThinking:
		if ev.Text == "" {
			return dst
		}
		c := s.choice(ev.Index)
		if c == nil {
			return dst
		}
		dst = s.open(dst, c)
		if ev.Kind == llm.EventText {
			dst = append(dst, `"content":`...)
		} else {
			dst = append(dst, `"reasoning_content":`...)
		}
		dst = appendString(dst, ev.Text)
		return s.close(dst, "")
	case llm.EventToolStart, llm.EventToolArgs:
		c := s.choice(ev.Index)
		if c == nil {
			return dst
		}
		idx, isNew := c.tool(ev.Tool)
		if idx < 0 || (!isNew && (ev.Kind == llm.EventToolStart || ev.Text == "")) {
			return dst
		}
		dst = s.open(dst, c)
		dst = append(dst, `"tool_calls":[{"index":`...)
		dst = appendInt(dst, int64(idx))
		if isNew {
			dst = append(dst, `,"id":`...)
			if ev.Kind == llm.EventToolStart && ev.ID != "" {
				dst = appendString(dst, ev.ID)
			} else {
				dst = append(dst, `"call_`...)
				dst = appendInt(dst, int64(idx))
				dst = append(dst, '"')
			}
			dst = append(dst, `,"type":"function","function":{"name":`...)
			if ev.Kind == llm.EventToolStart {
				dst = appendString(dst, ev.Name)
			} else {
				dst = append(dst, `""`...)
			}
			dst = append(dst, `,"arguments":`...)
		} else {
			dst = append(dst, `,"function":{"arguments":`...)
		}
		if ev.Kind == llm.EventToolArgs {
			dst = appendString(dst, ev.Text)
		} else {
			dst = append(dst, `""`...)
		}
		dst = append(dst, "}}]"...)
		return s.close(dst, "")
	case llm.EventFinish:
		c := s.choice(ev.Index)
		if c == nil {
			return dst
		}
		fr := ev.FinishReason
		if fr == "" {
			fr = llm.FinishStop
		}
		dst = s.open(dst, c)
		return s.close(dst, fr)
	case llm.EventError:
		if ev.Err != nil {
			return s.Fail(dst, ev.Err)
		}
		return s.Fail(dst, llm.Errorf(llm.KindUpstream, "upstream reported an error"))
	}
	// EventToolEnd has no chunk of its own; EventUsage is the caller's to
	// total and pass to Finish.
	return dst
}

// Finish implements llm.StreamEncoder: the usage chunk (when asked for),
// then data: [DONE].
func (s *streamEncoder) Finish(dst []byte, u llm.Usage) []byte {
	if s.includeUsage {
		dst = append(dst, "data: "...)
		dst = append(dst, s.head...)
		dst = append(dst, `],"usage":`...)
		dst = appendUsage(dst, u)
		dst = append(dst, "}\n\n"...)
	}
	return append(dst, "data: [DONE]\n\n"...)
}

// Fail implements llm.StreamEncoder: an OpenAI error object as a data
// event (no [DONE]: the stream did not complete).
func (s *streamEncoder) Fail(dst []byte, e *llm.Error) []byte { return AppendErrorEvent(dst, e) }

// AppendErrorEvent appends e as the event that ends a broken OpenAI
// stream: one data line holding OpenAI's error shape.
func AppendErrorEvent(dst []byte, e *llm.Error) []byte {
	dst = append(dst, "data: "...)
	dst = AppendError(dst, e)
	return append(dst, "\n\n"...)
}

package responses

import (
	"time"

	"github.com/sluice-ai/sluice/llm"
)

// MaxKeptBytes bounds the text, reasoning and arguments a stream encoder
// keeps to repeat in its done events and in the final response object
// (the deltas themselves always pass). Past it, the kept copies stop
// growing: the done events and response.completed carry what was kept.
const MaxKeptBytes = 16 << 20

// item kinds of the open text item.
const (
	openNone = iota
	openMessage
	openReasoning
)

// toolCall is one function_call output item of the stream.
type toolCall struct {
	tool   int // the neutral tool-call index
	index  int // output_index
	id     string
	callID string
	name   string
	args   []byte
	open   bool
}

// encoder implements llm.StreamEncoder for the Responses dialect.
type encoder struct {
	id      string
	model   string
	created int64
	seq     int64

	started, ended bool
	// next is the output_index of the next item.
	next int
	// output holds the done items' JSON, comma-separated.
	output []byte
	// kept counts the bytes of text and arguments kept so far, up to
	// keepMax (MaxKeptBytes; tests lower it).
	kept, keepMax int

	// The open message or reasoning item.
	open     int
	openIdx  int
	openID   string
	openText []byte
	// openSig is the open reasoning item's signature (see
	// ThinkingPrefix); a reasoning item ends with it.
	openSig []byte

	tools []toolCall
	// last is the index in tools of the last tool call used.
	last int

	finish   string
	usage    llm.Usage
	hasUsage bool
}

// NewStreamEncoder returns an encoder of neutral events as Responses
// streaming events for the answer id (made a "resp_" id by ResponseID),
// of model, created at Unix time created. Each event is "event: <type>"
// and one data line of JSON carrying type and sequence_number. Only
// choice 0 is rendered. response.created and response.in_progress go out
// with the first content event (or Finish, or Fail), not on EventStart:
// until then the encoder writes nothing, so an answer that fails before
// its first token is still an error status the router can retry.
func NewStreamEncoder(id, model string, created int64) llm.StreamEncoder {
	return &encoder{id: ResponseID(id), model: model, created: created, keepMax: MaxKeptBytes}
}

// head appends an event's name and the start of its data, up to and
// including sequence_number; the caller appends members and tail. The
// JSON the encoder writes never holds a raw line break (appendString
// escapes them), so the data stays one line.
func (s *encoder) head(b []byte, typ string) []byte {
	b = append(b, "event: "...)
	b = append(b, typ...)
	b = append(b, "\ndata: {\"type\":\""...)
	b = append(b, typ...)
	b = append(b, `","sequence_number":`...)
	b = appendInt(b, s.seq)
	s.seq++
	return b
}

func tail(b []byte) []byte { return append(b, "}\n\n"...) }

// itemRef appends the item_id and output_index members.
func itemRef(b []byte, id string, index int) []byte {
	b = append(b, `,"item_id":`...)
	b = appendString(b, id)
	b = append(b, `,"output_index":`...)
	return appendInt(b, int64(index))
}

// responseEvent appends an event carrying the response object.
func (s *encoder) responseEvent(b []byte, typ string, o *object) []byte {
	b = s.head(b, typ)
	b = append(b, `,"response":`...)
	b = appendObject(b, o)
	return tail(b)
}

func (s *encoder) obj(status string) object {
	return object{id: s.id, model: s.model, created: s.created, status: status}
}

// start appends response.created and response.in_progress once.
func (s *encoder) start(b []byte) []byte {
	if s.started {
		return b
	}
	s.started = true
	o := s.obj("in_progress")
	b = s.responseEvent(b, "response.created", &o)
	return s.responseEvent(b, "response.in_progress", &o)
}

// keep appends frag to dst unless the kept bytes reached MaxKeptBytes.
func (s *encoder) keep(dst []byte, frag string) []byte {
	if s.kept+len(frag) > s.keepMax {
		return dst
	}
	s.kept += len(frag)
	return append(dst, frag...)
}

// addOutput records a done item for the final response object.
func (s *encoder) addOutput(item []byte) {
	if len(s.output)+len(item) > 2*s.keepMax {
		return
	}
	if len(s.output) > 0 {
		s.output = append(s.output, ',')
	}
	s.output = append(s.output, item...)
}

// itemDone appends response.output_item.done for the item JSON that
// was just appended to b at [from:], and records it.
func (s *encoder) itemDone(b []byte, index int, item func([]byte) []byte) []byte {
	b = s.head(b, "response.output_item.done")
	b = append(b, `,"output_index":`...)
	b = appendInt(b, int64(index))
	b = append(b, `,"item":`...)
	from := len(b)
	b = item(b)
	s.addOutput(b[from:])
	return tail(b)
}

// openItem closes what must close before an item of kind opens (a
// message or a reasoning item: everything open), and opens it.
func (s *encoder) openItem(b []byte, kind int) []byte {
	if s.open == kind {
		return b
	}
	b = s.closeAll(b)
	s.open, s.openIdx, s.openText, s.openSig = kind, s.next, s.openText[:0], s.openSig[:0]
	s.next++
	if kind == openMessage {
		s.openID = itemID("msg", s.id, s.openIdx)
		b = s.head(b, "response.output_item.added")
		b = append(b, `,"output_index":`...)
		b = appendInt(b, int64(s.openIdx))
		b = append(b, `,"item":{"id":`...)
		b = appendString(b, s.openID)
		b = append(b, `,"type":"message","status":"in_progress","content":[],"role":"assistant"}`...)
		b = tail(b)
		b = s.head(b, "response.content_part.added")
		b = itemRef(b, s.openID, s.openIdx)
		b = append(b, `,"content_index":0,"part":`...)
		b = appendTextPart(b, "")
		return tail(b)
	}
	s.openID = itemID("rs", s.id, s.openIdx)
	b = s.head(b, "response.output_item.added")
	b = append(b, `,"output_index":`...)
	b = appendInt(b, int64(s.openIdx))
	b = append(b, `,"item":{"id":`...)
	b = appendString(b, s.openID)
	b = append(b, `,"type":"reasoning","summary":[]}`...)
	b = tail(b)
	b = s.head(b, "response.reasoning_summary_part.added")
	b = itemRef(b, s.openID, s.openIdx)
	b = append(b, `,"summary_index":0,"part":`...)
	b = appendSummaryPart(b, "")
	return tail(b)
}

// closeOpen closes the open message or reasoning item.
func (s *encoder) closeOpen(b []byte) []byte {
	if s.open == openNone {
		return b
	}
	text := string(s.openText) // one copy per item, not per event
	switch s.open {
	case openMessage:
		b = s.head(b, "response.output_text.done")
		b = itemRef(b, s.openID, s.openIdx)
		b = append(b, `,"content_index":0,"logprobs":[],"text":`...)
		b = appendString(b, text)
		b = tail(b)
		b = s.head(b, "response.content_part.done")
		b = itemRef(b, s.openID, s.openIdx)
		b = append(b, `,"content_index":0,"part":`...)
		b = appendTextPart(b, text)
		b = tail(b)
		b = s.itemDone(b, s.openIdx, func(b []byte) []byte {
			return appendMessageItem(b, s.openID, "completed", text)
		})
	case openReasoning:
		b = s.head(b, "response.reasoning_summary_text.done")
		b = itemRef(b, s.openID, s.openIdx)
		b = append(b, `,"summary_index":0,"text":`...)
		b = appendString(b, text)
		b = tail(b)
		b = s.head(b, "response.reasoning_summary_part.done")
		b = itemRef(b, s.openID, s.openIdx)
		b = append(b, `,"summary_index":0,"part":`...)
		b = appendSummaryPart(b, text)
		b = tail(b)
		b = s.itemDone(b, s.openIdx, func(b []byte) []byte {
			return appendReasoningItem(b, s.openID, text, string(s.openSig))
		})
	}
	s.open = openNone
	return b
}

// closeTool closes tool call t.
func (s *encoder) closeTool(b []byte, t *toolCall) []byte {
	if !t.open {
		return b
	}
	t.open = false
	args := string(t.args)
	t.args = nil
	b = s.head(b, "response.function_call_arguments.done")
	b = itemRef(b, t.id, t.index)
	b = append(b, `,"name":`...)
	b = appendString(b, t.name)
	b = append(b, `,"arguments":`...)
	b = appendString(b, args)
	b = tail(b)
	return s.itemDone(b, t.index, func(b []byte) []byte {
		return appendFunctionCallItem(b, t.id, "completed", t.callID, t.name, args)
	})
}

// closeAll closes every open item.
func (s *encoder) closeAll(b []byte) []byte {
	b = s.closeOpen(b)
	for i := range s.tools {
		b = s.closeTool(b, &s.tools[i])
	}
	return b
}

// tool returns tool call n, opening it (and closing the open message or
// reasoning item) when it is new; nil when it was closed already or the
// answer has MaxToolCalls calls.
func (s *encoder) tool(b []byte, n int, callID, name string) ([]byte, *toolCall) {
	if s.last < len(s.tools) && s.tools[s.last].tool == n {
		t := &s.tools[s.last]
		if !t.open {
			return b, nil
		}
		return b, t
	}
	for i := range s.tools {
		if s.tools[i].tool == n {
			s.last = i
			if !s.tools[i].open {
				return b, nil
			}
			return b, &s.tools[i]
		}
	}
	if len(s.tools) >= MaxToolCalls {
		return b, nil
	}
	b = s.closeOpen(b)
	idx := s.next
	s.next++
	if callID == "" {
		callID = itemID("call", s.id, idx)
	}
	s.tools = append(s.tools, toolCall{tool: n, index: idx, id: itemID("fc", s.id, idx), callID: callID, name: name, open: true})
	s.last = len(s.tools) - 1
	t := &s.tools[s.last]
	b = s.head(b, "response.output_item.added")
	b = append(b, `,"output_index":`...)
	b = appendInt(b, int64(idx))
	b = append(b, `,"item":`...)
	b = appendFunctionCallItem(b, t.id, "in_progress", t.callID, t.name, "")
	return tail(b), t
}

// Encode implements llm.StreamEncoder.
func (s *encoder) Encode(dst []byte, ev *llm.Event) []byte {
	if s.ended {
		return dst
	}
	switch ev.Kind {
	case llm.EventStart:
		// Nothing yet: response.created goes out with the first content
		// (or the end), so an error the upstream reports before any
		// token finds no byte sent and the router may still retry.
		return dst
	case llm.EventUsage:
		s.usage, s.hasUsage = ev.Usage, true
		return dst
	case llm.EventError:
		e := ev.Err
		if e == nil {
			e = llm.Errorf(llm.KindUpstream, "the upstream reported an error")
		}
		return s.Fail(dst, e)
	}
	if ev.Index != 0 {
		return dst
	}
	switch ev.Kind {
	case llm.EventText:
		if ev.Text == "" {
			return dst
		}
		dst = s.start(dst)
		dst = s.openItem(dst, openMessage)
		s.openText = s.keep(s.openText, ev.Text)
		dst = s.head(dst, "response.output_text.delta")
		dst = itemRef(dst, s.openID, s.openIdx)
		dst = append(dst, `,"content_index":0,"logprobs":[],"delta":`...)
		dst = appendString(dst, ev.Text)
		return tail(dst)
	case llm.EventThinking:
		if ev.Text == "" && ev.Signature == "" {
			return dst
		}
		dst = s.start(dst)
		if s.open == openReasoning && len(s.openSig) > 0 {
			// A signature ends a thinking block: what follows is another.
			dst = s.closeOpen(dst)
		}
		dst = s.openItem(dst, openReasoning)
		if ev.Signature != "" {
			s.openSig = s.keep(s.openSig, ev.Signature)
		}
		if ev.Text == "" {
			return dst
		}
		s.openText = s.keep(s.openText, ev.Text)
		dst = s.head(dst, "response.reasoning_summary_text.delta")
		dst = itemRef(dst, s.openID, s.openIdx)
		dst = append(dst, `,"summary_index":0,"delta":`...)
		dst = appendString(dst, ev.Text)
		return tail(dst)
	case llm.EventToolStart, llm.EventToolArgs:
		dst = s.start(dst)
		var t *toolCall
		dst, t = s.tool(dst, ev.Tool, ev.ID, ev.Name)
		if t == nil || ev.Kind == llm.EventToolStart && ev.Text == "" {
			return dst
		}
		t.args = s.keep(t.args, ev.Text)
		dst = s.head(dst, "response.function_call_arguments.delta")
		dst = itemRef(dst, t.id, t.index)
		dst = append(dst, `,"delta":`...)
		dst = appendString(dst, ev.Text)
		return tail(dst)
	case llm.EventToolEnd:
		for i := range s.tools {
			if s.tools[i].tool == ev.Tool {
				return s.closeTool(dst, &s.tools[i])
			}
		}
		return dst
	case llm.EventFinish:
		s.finish = ev.FinishReason
		dst = s.start(dst)
		return s.closeAll(dst)
	}
	return dst
}

// Finish implements llm.StreamEncoder: it closes what is open and
// appends response.completed (response.incomplete after a length or
// content_filter finish) with the whole response and usage u.
func (s *encoder) Finish(dst []byte, u llm.Usage) []byte {
	if s.ended {
		return dst
	}
	dst = s.start(dst)
	dst = s.closeAll(dst)
	s.ended = true
	o := s.obj("completed")
	o.output, o.usage, o.completed = s.output, &u, time.Now().Unix()
	typ := "response.completed"
	if o.incomplete = incompleteReason(s.finish); o.incomplete != "" {
		o.status, typ = "incomplete", "response.incomplete"
	}
	return s.responseEvent(dst, typ, &o)
}

// Fail implements llm.StreamEncoder: an "error" event (code, message,
// param), then response.failed with the items done so far and the error.
func (s *encoder) Fail(dst []byte, e *llm.Error) []byte {
	if s.ended {
		return dst
	}
	dst = s.start(dst)
	s.ended = true
	code := e.Code
	if code == "" {
		code = failedCode(e)
	}
	dst = s.head(dst, "error")
	dst = append(dst, `,"code":`...)
	dst = appendString(dst, code)
	dst = append(dst, `,"message":`...)
	dst = appendString(dst, e.Message)
	dst = append(dst, `,"param":`...)
	dst = appendNullable(dst, e.Param)
	dst = tail(dst)
	o := s.obj("failed")
	o.output, o.err = s.output, e
	if s.hasUsage {
		o.usage = &s.usage
	}
	return s.responseEvent(dst, "response.failed", &o)
}

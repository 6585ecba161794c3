package anthropic

import (
	"errors"
	"io"
	"strconv"

	"github.com/sluice-ai/sluice/llm"
	"github.com/sluice-ai/sluice/wire/jsonspan"
	"github.com/sluice-ai/sluice/wire/sse"
)

// Block kinds of a stream.
const (
	blockNone uint8 = iota
	blockText
	blockTool
	blockThinking
	blockOther // a block type with no neutral form (server tools): its deltas are ignored
)

type block struct {
	kind uint8
	open bool
	tool int // neutral tool index of a tool_use block
}

// streamDecoder decodes a Messages event stream into neutral events.
type streamDecoder struct {
	r      *sse.Reader
	body   io.Reader
	ev     llm.Event
	queue  [2]llm.Event // events decoded but not yet returned
	queued int
	next   int
	blocks []block // by block index, at most MaxBlockIndex
	// text backs the delta strings of the events decoded by one Next
	// (text, tool input, thinking): llm.EventStream makes an event valid
	// until the next call, so it is reused from one call to the next and
	// a delta costs no allocation.
	text  []byte
	tools int
	usage wireUsage
	start bool // message_start seen
	done  bool
	err   error
}

// NewStreamDecoder returns the neutral event stream of the Messages event
// stream read from r: message_start is an EventStart (with the prompt
// tokens it reports), text, thinking and tool_use blocks become their
// events, message_delta an EventFinish and an EventUsage, message_stop the
// end (io.EOF), an error event an EventError. ping and unknown events are
// ignored. A stream that ends before message_stop, a malformed event or a
// block index of MaxBlockIndex or more is an error.
func NewStreamDecoder(r io.Reader) llm.EventStream {
	return &streamDecoder{r: sse.NewReader(r), body: r}
}

func malformed(format string, args ...any) *llm.Error {
	return llm.Errorf(llm.KindUpstream, format, args...)
}

// Close implements llm.EventStream.
func (d *streamDecoder) Close() error {
	d.done = true
	if c, ok := d.body.(io.Closer); ok {
		return c.Close()
	}
	return nil
}

// Next implements llm.EventStream.
func (d *streamDecoder) Next() (*llm.Event, error) {
	if d.next < d.queued {
		d.ev = d.queue[d.next]
		d.next++
		return &d.ev, nil
	}
	d.next, d.queued, d.text = 0, 0, d.text[:0]
	if d.err != nil {
		return nil, d.err
	}
	if d.done {
		return nil, io.EOF
	}
	for {
		data, name, comment, err := d.r.Next()
		if err != nil {
			if err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) {
				d.err = malformed("upstream stream ended before message_stop")
			} else if errors.Is(err, sse.ErrEventTooLarge) {
				d.err = malformed("upstream sent an event larger than %d bytes", sse.MaxEventBytes)
			} else {
				e := malformed("upstream stream broke")
				e.Err = err
				d.err = e
			}
			return nil, d.err
		}
		if comment {
			continue
		}
		ok, err := d.decode(name, data)
		if err != nil {
			d.err = err
			return nil, err
		}
		if ok {
			d.ev = d.queue[0]
			d.next = 1
			return &d.ev, nil
		}
		if d.done {
			return nil, io.EOF
		}
	}
}

// push queues an event.
func (d *streamDecoder) push(ev llm.Event) { d.queue[d.queued] = ev; d.queued++ }

// fields are the members of an event's data the decoder reads.
type fields struct {
	typ, index, message, block, delta, usage, errObj []byte
}

func scanFields(data []byte) (fields, bool) {
	var f fields
	it := newMembers(data)
	for it.next() {
		switch string(it.key) {
		case "type":
			f.typ = it.val
		case "index":
			f.index = it.val
		case "message":
			f.message = it.val
		case "content_block":
			f.block = it.val
		case "delta":
			f.delta = it.val
		case "usage":
			f.usage = it.val
		case "error":
			f.errObj = it.val
		}
	}
	return f, it.ok()
}

// plainString returns the contents of the JSON string v when it has no
// escapes (the names of event and block types), else nil.
func plainString(v []byte) []byte {
	if len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"' {
		return nil
	}
	for _, c := range v[1 : len(v)-1] {
		if c == '\\' || c == '"' {
			return nil
		}
	}
	return v[1 : len(v)-1]
}

// emptyObject reports whether the object span v has no members.
func emptyObject(v []byte) bool { return jsonspan.SkipWS(v, 1) == len(v)-1 }

// obj reports whether v is a JSON object span.
func obj(v []byte) bool { return len(v) >= 2 && v[0] == '{' }

// decode handles one event; it reports whether events were queued.
func (d *streamDecoder) decode(name, data []byte) (bool, error) {
	f, ok := scanFields(data)
	if !ok {
		return false, malformed("upstream sent a malformed %s event", clipName(string(name)))
	}
	typ := plainString(f.typ)
	if typ == nil {
		typ = name
	}
	switch string(typ) {
	case "ping":
		return false, nil
	case "message_start":
		if d.start {
			return false, malformed("upstream sent message_start twice")
		}
		d.start = true
		ev := llm.Event{Kind: llm.EventStart}
		if obj(f.message) {
			_, _ = jsonspan.EachMember(f.message, func(key []byte, vs, ve int) error {
				v := f.message[vs:ve]
				switch string(key) {
				case "id":
					ev.ID, _ = unquote(v)
				case "model":
					ev.Model, _ = unquote(v)
				case "usage":
					if obj(v) {
						d.usage.merge(v)
					}
				}
				return nil
			})
		}
		if d.usage.known {
			ev.Usage = d.usage.neutral()
			ev.Usage.CompletionTokens = 0
		}
		d.push(ev)
		return true, nil
	case "content_block_start":
		i, err := d.blockIndex(f.index)
		if err != nil {
			return false, err
		}
		if d.blocks[i].kind != blockNone {
			return false, malformed("upstream opened content block %d twice", i)
		}
		if !obj(f.block) {
			return false, malformed("upstream sent content_block_start without a content block")
		}
		var bt, id, nm, text, sig, data, input []byte
		for it := newMembers(f.block); it.next(); {
			v := it.val
			switch string(it.key) {
			case "type":
				bt = v
			case "id":
				id = v
			case "name":
				nm = v
			case "text", "thinking":
				text = v
			case "signature":
				sig = v
			case "data":
				data = v
			case "input":
				input = v
			}
		}
		b := &d.blocks[i]
		b.open = true
		switch string(plainString(bt)) {
		case "text":
			b.kind = blockText
			if t, _ := unquote(text); t != "" {
				d.push(llm.Event{Kind: llm.EventText, Text: t})
			}
		case "thinking":
			b.kind = blockThinking
			ev := llm.Event{Kind: llm.EventThinking}
			ev.Text, _ = unquote(text)
			ev.Signature, _ = unquote(sig)
			if ev.Text != "" || ev.Signature != "" {
				d.push(ev)
			}
		case "redacted_thinking":
			b.kind = blockThinking
			ev := llm.Event{Kind: llm.EventThinking}
			ev.Signature, _ = unquote(data)
			d.push(ev)
		case "tool_use":
			if d.tools >= MaxToolCalls {
				return false, malformed("upstream sent more than %d tool calls", MaxToolCalls)
			}
			b.kind, b.tool = blockTool, d.tools
			d.tools++
			ev := llm.Event{Kind: llm.EventToolStart, Tool: b.tool}
			ev.ID, _ = unquote(id)
			ev.Name, _ = unquote(nm)
			d.push(ev)
			if obj(input) && !emptyObject(input) {
				// The input given whole at the start (no deltas follow).
				d.push(llm.Event{Kind: llm.EventToolArgs, Tool: b.tool, Text: string(input)})
			}
		default:
			b.kind = blockOther
		}
		return d.queued > 0, nil
	case "content_block_delta":
		i, err := d.blockIndex(f.index)
		if err != nil {
			return false, err
		}
		b := &d.blocks[i]
		if !b.open {
			return false, malformed("upstream sent a delta for content block %d, which is not open", i)
		}
		if !obj(f.delta) {
			return false, malformed("upstream sent content_block_delta without a delta")
		}
		var dt, val []byte
		for it := newMembers(f.delta); it.next(); {
			switch string(it.key) {
			case "type":
				dt = it.val
			case "text", "partial_json", "thinking", "signature":
				val = it.val
			}
		}
		s := jsonspan.UnquoteInto(&d.text, val)
		switch string(dt) {
		case `"text_delta"`:
			if b.kind == blockText && s != "" {
				d.push(llm.Event{Kind: llm.EventText, Text: s})
			}
		case `"input_json_delta"`:
			if b.kind == blockTool && s != "" {
				d.push(llm.Event{Kind: llm.EventToolArgs, Tool: b.tool, Text: s})
			}
		case `"thinking_delta"`:
			if b.kind == blockThinking && s != "" {
				d.push(llm.Event{Kind: llm.EventThinking, Text: s})
			}
		case `"signature_delta"`:
			if b.kind == blockThinking && s != "" {
				d.push(llm.Event{Kind: llm.EventThinking, Signature: s})
			}
		}
		return d.queued > 0, nil
	case "content_block_stop":
		i, err := d.blockIndex(f.index)
		if err != nil {
			return false, err
		}
		b := &d.blocks[i]
		if !b.open {
			return false, malformed("upstream closed content block %d, which is not open", i)
		}
		b.open = false
		if b.kind == blockTool {
			d.push(llm.Event{Kind: llm.EventToolEnd, Tool: b.tool})
			return true, nil
		}
		return false, nil
	case "message_delta":
		if obj(f.delta) {
			if vs, ve, ok := member(f.delta, "stop_reason"); ok {
				if s, ok := unquote(f.delta[vs:ve]); ok {
					d.push(llm.Event{Kind: llm.EventFinish, FinishReason: stopReason(s)})
				}
			}
		}
		if obj(f.usage) {
			d.usage.merge(f.usage)
		}
		if d.usage.known {
			d.push(llm.Event{Kind: llm.EventUsage, Usage: d.usage.neutral()})
		}
		return d.queued > 0, nil
	case "message_stop":
		d.done = true
		return false, nil
	case "error":
		var et, msg string
		if obj(f.errObj) {
			_, _ = jsonspan.EachMember(f.errObj, func(key []byte, vs, ve int) error {
				switch string(key) {
				case "type":
					et, _ = unquote(f.errObj[vs:ve])
				case "message":
					msg, _ = unquote(f.errObj[vs:ve])
				}
				return nil
			})
		}
		d.done = true
		d.push(llm.Event{Kind: llm.EventError, Err: upstreamErr(et, msg)})
		return true, nil
	}
	return false, nil // new event types are ignored, as Anthropic's versioning asks
}

// blockIndex validates a block index and makes room for it.
func (d *streamDecoder) blockIndex(v []byte) (int, error) {
	i, ok := parseInt(v)
	if !ok || i < 0 || i >= MaxBlockIndex || string(v) != strconv.Itoa(i) {
		return 0, malformed("upstream sent content block index %s (want 0 to %d)", clipName(string(v)), MaxBlockIndex-1)
	}
	for len(d.blocks) <= i {
		d.blocks = append(d.blocks, block{})
	}
	return i, nil
}

// streamEncoder renders neutral events as a Messages event stream.
type streamEncoder struct {
	id, model  string
	started    bool
	open       uint8 // kind of the open block, blockNone when none
	openTool   int   // neutral tool index of the open tool_use block
	index      int   // index of the open block, or of the next one
	finish     string
	sawTool    bool
	startUsage llm.Usage
	data       []byte // scratch for one event's data
	closedTool []bool // tools closed (by neutral index), bounded by MaxToolCalls
}

// NewStreamEncoder returns an encoder of neutral events as a Messages
// stream for the answer id of model: message_start, then each block's
// content_block_start, deltas and content_block_stop with sequential
// indexes (one block open at a time), and at Finish message_delta and
// message_stop. Only choice 0 is rendered.
func NewStreamEncoder(id, model string) llm.StreamEncoder {
	return &streamEncoder{id: id, model: model}
}

func (e *streamEncoder) event(dst []byte, name string) []byte {
	return sse.AppendEvent(dst, []byte(name), e.data)
}

func (e *streamEncoder) begin(dst []byte, ev *llm.Event) []byte {
	if e.started {
		return dst
	}
	e.started = true
	id, model := e.id, e.model
	if ev != nil {
		if id == "" {
			id = ev.ID
		}
		if model == "" {
			model = ev.Model
		}
		e.startUsage = ev.Usage
	}
	b := append(e.data[:0], `{"type":"message_start","message":{"id":`...)
	b = appendString(b, id)
	b = append(b, `,"type":"message","role":"assistant","model":`...)
	b = appendString(b, model)
	b = append(b, `,"content":[],"stop_reason":null,"stop_sequence":null,"usage":`...)
	u := e.startUsage
	u.CompletionTokens = 0
	b = appendUsage(b, u)
	e.data = append(b, "}}"...)
	return e.event(dst, "message_start")
}

// closeBlock closes the open block, if any.
func (e *streamEncoder) closeBlock(dst []byte) []byte {
	if e.open == blockNone {
		return dst
	}
	if e.open == blockTool && e.openTool < len(e.closedTool) {
		e.closedTool[e.openTool] = true
	}
	b := append(e.data[:0], `{"type":"content_block_stop","index":`...)
	b = strconv.AppendInt(b, int64(e.index), 10)
	e.data = append(b, '}')
	e.open = blockNone
	e.index++
	return e.event(dst, "content_block_stop")
}

// openBlock closes the open block when it is not of kind (or another
// tool), and opens one of kind.
func (e *streamEncoder) openBlock(dst []byte, kind uint8, ev *llm.Event) []byte {
	if e.open == kind && (kind != blockTool || e.openTool == ev.Tool) {
		return dst
	}
	dst = e.closeBlock(dst)
	e.open = kind
	b := append(e.data[:0], `{"type":"content_block_start","index":`...)
	b = strconv.AppendInt(b, int64(e.index), 10)
	switch kind {
	case blockText:
		b = append(b, `,"content_block":{"type":"text","text":""}}`...)
	case blockThinking:
		b = append(b, `,"content_block":{"type":"thinking","thinking":"","signature":""}}`...)
	case blockTool:
		e.openTool = ev.Tool
		e.sawTool = true
		b = append(b, `,"content_block":{"type":"tool_use","id":`...)
		b = appendString(b, toolID(ev.ID, e.id, ev.Tool))
		b = append(b, `,"name":`...)
		b = appendString(b, ev.Name)
		b = append(b, `,"input":{}}}`...)
	}
	e.data = b
	return e.event(dst, "content_block_start")
}

func (e *streamEncoder) delta(dst []byte, typ, field, text string) []byte {
	b := append(e.data[:0], `{"type":"content_block_delta","index":`...)
	b = strconv.AppendInt(b, int64(e.index), 10)
	b = append(b, `,"delta":{"type":"`...)
	b = append(b, typ...)
	b = append(b, `","`...)
	b = append(b, field...)
	b = append(b, `":`...)
	b = appendString(b, text)
	e.data = append(b, "}}"...)
	return e.event(dst, "content_block_delta")
}

// toolClosed reports whether neutral tool t was closed already.
func (e *streamEncoder) toolClosed(t int) bool {
	return t >= 0 && t < len(e.closedTool) && e.closedTool[t]
}

// Encode implements llm.StreamEncoder. Events of choices other than 0,
// and tool arguments for a tool whose block was closed already (a stream
// interleaving tool calls, which Messages cannot express), are dropped.
func (e *streamEncoder) Encode(dst []byte, ev *llm.Event) []byte {
	if ev.Index != 0 && ev.Kind != llm.EventUsage && ev.Kind != llm.EventError {
		return dst
	}
	switch ev.Kind {
	case llm.EventStart:
		return e.begin(dst, ev)
	case llm.EventText:
		if ev.Text == "" {
			return dst
		}
		dst = e.begin(dst, nil)
		dst = e.openBlock(dst, blockText, ev)
		return e.delta(dst, "text_delta", "text", ev.Text)
	case llm.EventThinking:
		dst = e.begin(dst, nil)
		dst = e.openBlock(dst, blockThinking, ev)
		if ev.Text != "" {
			dst = e.delta(dst, "thinking_delta", "thinking", ev.Text)
		}
		if ev.Signature != "" {
			dst = e.delta(dst, "signature_delta", "signature", ev.Signature)
		}
		return dst
	case llm.EventToolStart:
		if ev.Tool < 0 || ev.Tool >= MaxToolCalls || e.toolClosed(ev.Tool) {
			return dst
		}
		for len(e.closedTool) <= ev.Tool {
			e.closedTool = append(e.closedTool, false)
		}
		dst = e.begin(dst, nil)
		return e.openBlock(dst, blockTool, ev)
	case llm.EventToolArgs:
		if ev.Text == "" || e.open != blockTool || e.openTool != ev.Tool {
			return dst
		}
		return e.delta(dst, "input_json_delta", "partial_json", ev.Text)
	case llm.EventToolEnd:
		if e.open == blockTool && e.openTool == ev.Tool {
			return e.closeBlock(dst)
		}
		return dst
	case llm.EventFinish:
		e.finish = ev.FinishReason
		return dst
	case llm.EventError:
		if ev.Err != nil {
			return e.Fail(dst, ev.Err)
		}
	}
	return dst
}

// Finish implements llm.StreamEncoder: it closes the open block and
// appends message_delta (stop reason, usage u) and message_stop.
func (e *streamEncoder) Finish(dst []byte, u llm.Usage) []byte {
	dst = e.begin(dst, nil)
	dst = e.closeBlock(dst)
	f := e.finish
	if f == "" && e.sawTool {
		f = llm.FinishToolCalls
	}
	b := append(e.data[:0], `{"type":"message_delta","delta":{"stop_reason":"`...)
	b = append(b, anthropicStop(f)...)
	b = append(b, `","stop_sequence":null},"usage":`...)
	b = appendUsage(b, u)
	e.data = append(b, '}')
	dst = e.event(dst, "message_delta")
	e.data = append(e.data[:0], `{"type":"message_stop"}`...)
	return e.event(dst, "message_stop")
}

// Fail implements llm.StreamEncoder: an error event.
func (e *streamEncoder) Fail(dst []byte, err *llm.Error) []byte {
	e.data = AppendError(e.data[:0], err)
	return e.event(dst, "error")
}

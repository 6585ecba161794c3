package openai

import (
	"bytes"
	"errors"
	"io"
	"unsafe"

	"github.com/sluice-ai/sluice/llm"
	"github.com/sluice-ai/sluice/wire/jsonspan"
	"github.com/sluice-ai/sluice/wire/sse"
)

// streamDecoder decodes an OpenAI chat.completion.chunk stream into
// neutral events. One chunk may yield several events; they wait in queue.
type streamDecoder struct {
	r        *sse.Reader
	queue    []llm.Event
	qpos     int
	err      error // returned once the queue is drained: io.EOF or the failure
	started  bool
	finished bool // some choice finished
	choices  []choiceIn
	scratch  []byte
	// text backs the delta strings (text, reasoning, tool arguments) of
	// the events queued by one read: llm.EventStream makes an event valid
	// until the next call, and the queue is refilled only once drained,
	// so it is reused and a delta costs no allocation.
	text []byte
}

// choiceIn is the state of one choice of the stream being decoded.
type choiceIn struct {
	index    int
	finished bool
	// open and ended are bitmaps of tool indexes (0..MaxToolCalls-1).
	open, ended [MaxToolCalls / 64]uint64
	last        int // the last tool index seen, for deltas without one
	nextNew     int // the index a delta with an id but no index gets
}

func (c *choiceIn) isOpen(t int) bool  { return c.open[t/64]&(1<<(t%64)) != 0 }
func (c *choiceIn) isEnded(t int) bool { return c.ended[t/64]&(1<<(t%64)) != 0 }

// NewStreamDecoder returns the neutral events of the OpenAI chat
// completion stream read from r (server-sent events): EventStart from the
// first chunk (id, model), EventText (delta.content, and delta.refusal),
// EventThinking (delta.reasoning_content or delta.reasoning),
// EventToolStart when a tool call's index first appears (with its id and
// name), EventToolArgs for its argument fragments and EventToolEnd when
// its choice finishes or the stream ends, EventFinish per choice,
// EventUsage for every usage object (the last one counts). data: [DONE],
// or the end of the body after a choice finished, ends the stream
// (io.EOF). An error object (top-level error member, vLLM's
// "object":"error" chunk, or an event named error) is an EventError, after
// which the stream ends. A malformed chunk, a choice or tool index out of
// bounds (≥ MaxChoices, ≥ MaxToolCalls), an oversized event or a body
// that ends before any choice finished is an error (*llm.Error, or the
// reader's). Close does not close r.
func NewStreamDecoder(r io.Reader) llm.EventStream {
	return &streamDecoder{r: sse.NewReader(r), queue: make([]llm.Event, 0, 4)}
}

// Close implements llm.EventStream; the stream ends.
func (d *streamDecoder) Close() error {
	if d.err == nil {
		d.err = io.EOF
	}
	d.queue, d.qpos = d.queue[:0], 0
	return nil
}

// deltaArgs is rawArgs backed by d.text (jsonspan.UnquoteInto): valid
// until the next call to Next.
func (d *streamDecoder) deltaArgs(v []byte) string {
	if len(v) > 0 && (v[0] == '{' || v[0] == '[') {
		start := len(d.text)
		d.text = append(d.text, v...)
		return unsafe.String(&d.text[start], len(v))
	}
	return jsonspan.UnquoteInto(&d.text, v)
}

func (d *streamDecoder) push() *llm.Event {
	d.queue = append(d.queue, llm.Event{})
	return &d.queue[len(d.queue)-1]
}

// Next implements llm.EventStream.
func (d *streamDecoder) Next() (*llm.Event, error) {
	if d.qpos < len(d.queue) {
		d.qpos++
		return &d.queue[d.qpos-1], nil
	}
	d.queue, d.qpos, d.text = d.queue[:0], 0, d.text[:0]
	if d.err != nil {
		return nil, d.err
	}
	for {
		data, event, comment, err := d.r.Next()
		switch {
		case err == io.EOF:
			if d.finished {
				d.endAll()
				d.err = io.EOF
			} else {
				d.err = malformed("upstream stream ended before the answer finished")
			}
		case err == sse.ErrEventTooLarge:
			d.err = malformed("upstream sent an event larger than %d bytes", sse.MaxEventBytes)
		case err == io.ErrUnexpectedEOF:
			d.err = malformed("upstream stream was cut in the middle of an event")
		case err != nil:
			d.err = err
		case comment:
			continue
		case string(event) == "error":
			ev := d.push()
			ev.Kind, ev.Err = llm.EventError, InbandError(bytes.TrimSpace(data))
			d.err = io.EOF
		case len(event) > 0 && string(event) != "message":
			continue // an event type this codec does not know
		default:
			data = bytes.TrimSpace(data)
			if len(data) == 0 {
				continue
			}
			if string(data) == "[DONE]" {
				d.endAll()
				d.err = io.EOF
				break
			}
			if e := d.chunk(data); e != nil {
				d.queue = d.queue[:0]
				d.err = e
			}
		}
		if len(d.queue) > 0 {
			d.qpos = 1
			return &d.queue[0], nil
		}
		if d.err != nil {
			return nil, d.err
		}
	}
}

// endAll ends the open tool calls of every choice.
func (d *streamDecoder) endAll() {
	for i := range d.choices {
		d.endTools(&d.choices[i])
	}
}

// endTools queues EventToolEnd for the open tool calls of c, in index order.
func (d *streamDecoder) endTools(c *choiceIn) {
	for w := range c.open {
		for bits := c.open[w] &^ c.ended[w]; bits != 0; bits &= bits - 1 {
			t := w*64 + trailingZeros(bits)
			c.ended[w] |= 1 << (t % 64)
			ev := d.push()
			ev.Kind, ev.Index, ev.Tool = llm.EventToolEnd, c.index, t
		}
	}
}

func trailingZeros(x uint64) int {
	n := 0
	for x&1 == 0 {
		x >>= 1
		n++
	}
	return n
}

// choice returns the state of choice index (< MaxChoices).
func (d *streamDecoder) choice(index int) *choiceIn {
	for i := range d.choices {
		if d.choices[i].index == index {
			return &d.choices[i]
		}
	}
	d.choices = append(d.choices, choiceIn{index: index, last: -1})
	return &d.choices[len(d.choices)-1]
}

// chunk decodes one chunk's JSON into queued events.
func (d *streamDecoder) chunk(data []byte) *llm.Error {
	if data[0] != '{' || !jsonspan.Valid(data) {
		return malformed("upstream sent a stream event that is not a JSON object")
	}
	var id, model, choices, usage, errV, object []byte
	_, err := jsonspan.EachMember(data, func(key []byte, vs, ve int) error {
		v := data[vs:ve]
		switch string(key) {
		case "id":
			id = v
		case "model":
			model = v
		case "choices":
			choices = v
		case "usage":
			usage = v
		case "error":
			errV = v
		case "object":
			object = v
		}
		return nil
	})
	if err != nil {
		return malformed("upstream sent a stream event that is not a JSON object")
	}
	if isErrorValue(errV) {
		ev := d.push()
		ev.Kind, ev.Err = llm.EventError, InbandError(errV)
		d.err = io.EOF
		return nil
	}
	if string(object) == `"error"` {
		ev := d.push()
		ev.Kind, ev.Err = llm.EventError, InbandError(data)
		d.err = io.EOF
		return nil
	}
	if !d.started {
		d.started = true
		ev := d.push()
		ev.Kind = llm.EventStart
		ev.ID = rawStr(id, &d.scratch)
		ev.Model = rawStr(model, &d.scratch)
	}
	if len(choices) > 0 && choices[0] == '[' {
		n := 0
		if err := eachObject(choices, func(obj []byte) (int, error) {
			if n++; n > MaxChoices {
				return 0, errTooMany
			}
			return d.choiceDelta(obj, n-1)
		}); err != nil {
			if err == errTooMany {
				return malformed("upstream sent more than %d choices in a chunk", MaxChoices)
			}
			if e, ok := err.(*llm.Error); ok {
				return e
			}
			return malformed("upstream sent malformed choices")
		}
	} else if len(choices) > 0 && string(choices) != "null" {
		return malformed("upstream sent choices that are not an array")
	}
	if len(usage) > 0 && usage[0] == '{' {
		if u, ok := decodeUsage(usage); ok {
			ev := d.push()
			ev.Kind, ev.Usage = llm.EventUsage, u
		}
	}
	return nil
}

// errTooMany stops a walk over too many elements.
var errTooMany = errors.New("too many elements")

// choiceDelta decodes the choice object at the start of v (v runs on to
// the end of the choices) and returns the index of its closing brace; pos
// is its position, the index of a choice that names none.
func (d *streamDecoder) choiceDelta(v []byte, pos int) (int, error) {
	var idxV, delta, finish []byte
	end, err := jsonspan.EachMember(v, func(key []byte, vs, ve int) error {
		switch string(key) {
		case "index":
			idxV = v[vs:ve]
		case "delta":
			delta = v[vs:ve]
		case "finish_reason":
			finish = v[vs:ve]
		}
		return nil
	})
	if err != nil {
		return 0, malformed("upstream sent a choice that is not an object")
	}
	index := pos
	if len(idxV) > 0 && string(idxV) != "null" {
		var ok bool
		if index, ok = indexOf(idxV, MaxChoices); !ok {
			return 0, malformed("upstream sent a choice index out of range (at most %d choices)", MaxChoices)
		}
	}
	c := d.choice(index)
	if len(delta) > 0 && delta[0] == '{' {
		if err := d.delta(c, delta); err != nil {
			return 0, err
		}
	}
	if len(finish) > 0 && finish[0] == '"' && !c.finished {
		// A second finish of the same choice (some servers repeat it on
		// the usage chunk) is not a second end.
		d.endTools(c)
		c.finished, d.finished = true, true
		ev := d.push()
		ev.Kind, ev.Index = llm.EventFinish, c.index
		ev.FinishReason = finishReason(rawStr(finish, &d.scratch))
		if ev.FinishReason == "" {
			ev.FinishReason = llm.FinishStop
		}
	}
	return end, nil
}

// indexOf reads an index below limit, accepting a float with no fraction
// ("0.0") as some servers write it.
func indexOf(v []byte, limit int) (int, bool) {
	if n, ok := index(v, limit); ok {
		return n, true
	}
	if n, ok := count(v); ok && n >= 0 && n < limit && bytes.ContainsAny(v, ".eE") {
		f := bytes.TrimRight(bytes.TrimRight(v, "0"), ".")
		if !bytes.ContainsAny(f, ".eE") {
			return n, true
		}
	}
	return 0, false
}

// delta decodes a choice's delta: reasoning, then text, then tool calls.
func (d *streamDecoder) delta(c *choiceIn, v []byte) error {
	var content, reasoning, reasoning2, refusal, calls []byte
	if _, err := jsonspan.EachMember(v, func(key []byte, vs, ve int) error {
		switch string(key) {
		case "content":
			content = v[vs:ve]
		case "reasoning_content":
			reasoning = v[vs:ve]
		case "reasoning":
			reasoning2 = v[vs:ve]
		case "refusal":
			refusal = v[vs:ve]
		case "tool_calls":
			calls = v[vs:ve]
		}
		return nil
	}); err != nil {
		return malformed("upstream sent a delta that is not an object")
	}
	if len(reasoning) == 0 || reasoning[0] != '"' {
		reasoning = reasoning2
	}
	if t := jsonspan.UnquoteInto(&d.text, reasoning); t != "" {
		ev := d.push()
		ev.Kind, ev.Index, ev.Text = llm.EventThinking, c.index, t
	}
	for _, tv := range [2][]byte{content, refusal} {
		if t := jsonspan.UnquoteInto(&d.text, tv); t != "" {
			ev := d.push()
			ev.Kind, ev.Index, ev.Text = llm.EventText, c.index, t
		}
	}
	if len(calls) == 0 || calls[0] != '[' {
		return nil
	}
	n := 0
	err := eachObject(calls, func(obj []byte) (int, error) {
		if n++; n > MaxToolCalls {
			return 0, malformed("upstream sent more than %d tool calls in a delta", MaxToolCalls)
		}
		return d.toolDelta(c, obj)
	})
	if err != nil {
		if _, ok := err.(*llm.Error); !ok {
			err = malformed("upstream sent malformed tool calls")
		}
	}
	return err
}

// toolDelta decodes the tool call delta at the start of v and returns the
// index of its closing brace.
func (d *streamDecoder) toolDelta(c *choiceIn, v []byte) (int, error) {
	var idxV, id, fn, name, args []byte
	end, err := jsonspan.EachMember(v, func(key []byte, vs, ve int) error {
		switch string(key) {
		case "index":
			idxV = v[vs:ve]
		case "id":
			id = v[vs:ve]
		case "function":
			fn = v[vs:ve]
		}
		return nil
	})
	if err != nil {
		return 0, malformed("upstream sent a tool call that is not an object")
	}
	if len(fn) > 0 && fn[0] == '{' {
		if _, err := jsonspan.EachMember(fn, func(key []byte, vs, ve int) error {
			switch string(key) {
			case "name":
				name = fn[vs:ve]
			case "arguments":
				args = fn[vs:ve]
			}
			return nil
		}); err != nil {
			return 0, malformed("upstream sent a tool call that is not an object")
		}
	}
	t := 0
	switch {
	case len(idxV) > 0 && string(idxV) != "null":
		var ok bool
		if t, ok = indexOf(idxV, MaxToolCalls); !ok {
			return 0, malformed("upstream sent a tool call index out of range (at most %d tool calls)", MaxToolCalls)
		}
	case len(id) > 0 && id[0] == '"' || c.last < 0:
		// No index (some servers omit it): a call with an id is the next
		// one, a fragment without belongs to the last.
		t = c.nextNew
		if t >= MaxToolCalls {
			return 0, malformed("upstream sent more than %d tool calls", MaxToolCalls)
		}
	default:
		t = c.last
	}
	c.last = t
	if t >= c.nextNew {
		c.nextNew = t + 1
	}
	if c.isEnded(t) {
		return end, nil // a fragment after its choice finished: nothing to attach it to
	}
	if !c.isOpen(t) {
		c.open[t/64] |= 1 << (t % 64)
		ev := d.push()
		ev.Kind, ev.Index, ev.Tool = llm.EventToolStart, c.index, t
		ev.ID = rawStr(id, &d.scratch)
		ev.Name = rawStr(name, &d.scratch)
	}
	if a := d.deltaArgs(args); a != "" {
		ev := d.push()
		ev.Kind, ev.Index, ev.Tool, ev.Text = llm.EventToolArgs, c.index, t, a
	}
	return end, nil
}

package gemini

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"

	"github.com/sluice-ai/sluice/llm"
	"github.com/sluice-ai/sluice/wire/sse"
)

// ErrStreamBroken is returned when a stream ends before any candidate
// finished.
var ErrStreamBroken = errors.New("gemini stream ended without a finish reason")

// NewStreamDecoder decodes a streamGenerateContent?alt=sse answer. Each
// data event is a whole GenerateContentResponse. The stream is: EventStart
// (responseId, modelVersion) once, then text and thinking fragments and
// each function call as EventToolStart, one EventToolArgs with the whole
// arguments JSON and EventToolEnd; when the body ends after a candidate
// carried a finishReason, an EventFinish per candidate seen (Gemini may
// repeat finishReason, and text may follow it, so finishes are emitted at
// the end), an EventUsage from the last usageMetadata, and io.EOF. A body
// that ends with no finishReason returns ErrStreamBroken; an error object
// in an event is an EventError, after which the stream ends.
func NewStreamDecoder(r io.Reader) llm.EventStream {
	return &streamDecoder{sr: sse.NewReader(r), closer: r}
}

type streamDecoder struct {
	sr     *sse.Reader
	closer io.Reader
	queue  []llm.Event
	qi     int
	cands  []candState // by candidate index, grown to the highest seen (< MaxCandidates)
	calls  int         // function calls so far, for generated ids
	usage  usageMetadata
	hasUse bool
	id     string
	model  string
	// state
	started  bool
	finished bool // some candidate carried a finishReason
	done     bool
	err      error
	resp     response
}

type candState struct {
	seen   bool
	tools  int
	finish string // Gemini's finishReason, "" until one arrives
}

// Next implements llm.EventStream.
func (d *streamDecoder) Next() (*llm.Event, error) {
	for {
		if d.qi < len(d.queue) {
			d.qi++
			return &d.queue[d.qi-1], nil
		}
		if d.done {
			return nil, d.err
		}
		d.queue, d.qi = d.queue[:0], 0
		data, _, comment, err := d.sr.Next()
		if err != nil {
			d.end(err)
			continue
		}
		if comment || len(bytes.TrimSpace(data)) == 0 {
			continue
		}
		d.event(data)
	}
}

// end handles the end of the body (err from the SSE reader).
func (d *streamDecoder) end(err error) {
	d.done = true
	if err != io.EOF {
		d.err = err
		return
	}
	if !d.finished {
		d.err = ErrStreamBroken
		return
	}
	for i := range d.cands {
		c := &d.cands[i]
		if !c.seen {
			continue
		}
		fr := finishReason(c.finish, c.tools > 0)
		if fr == "" {
			fr = llm.FinishStop
		}
		d.queue = append(d.queue, llm.Event{Kind: llm.EventFinish, Index: i, FinishReason: fr})
	}
	if d.hasUse {
		d.queue = append(d.queue, llm.Event{Kind: llm.EventUsage, Usage: d.usage.usage()})
	}
	d.err = io.EOF
}

// fail queues an error event and ends the stream.
func (d *streamDecoder) fail(e *llm.Error) {
	d.queue = append(d.queue, llm.Event{Kind: llm.EventError, Err: e})
	d.done, d.err = true, io.EOF
}

func (d *streamDecoder) event(data []byte) {
	d.resp = response{}
	r := &d.resp
	var target any = r
	if d.started {
		target = &r.body // the ids are the first event's
	}
	if err := json.Unmarshal(data, target); err != nil {
		d.done, d.err = true, errors.New("gemini stream event is not valid JSON")
		return
	}
	if r.Error != nil {
		d.fail(r.Error.toError())
		return
	}
	if !d.started {
		d.started = true
		d.id, d.model = r.ResponseID, r.ModelVersion
		d.queue = append(d.queue, llm.Event{Kind: llm.EventStart, ID: d.id, Model: d.model})
	}
	if r.UsageMetadata != nil {
		d.usage, d.hasUse = *r.UsageMetadata, true
	}
	if len(r.Candidates) == 0 && r.PromptFeedback != nil && r.PromptFeedback.BlockReason != "" {
		c := d.cand(0)
		c.finish = "PROHIBITED_CONTENT"
		d.finished = true
		return
	}
	if len(r.Candidates) > MaxCandidates {
		d.fail(llm.Errorf(llm.KindUpstream, "upstream sent more than %d candidates", MaxCandidates))
		return
	}
	for ci := range r.Candidates {
		c := &r.Candidates[ci]
		idx := ci
		if c.Index != nil {
			idx = *c.Index
		}
		if idx < 0 || idx >= MaxCandidates {
			d.fail(llm.Errorf(llm.KindUpstream, "upstream sent candidate index %d, beyond %d", idx, MaxCandidates-1))
			return
		}
		st := d.cand(idx)
		if c.Content != nil {
			if len(c.Content.Parts) > MaxParts {
				d.fail(llm.Errorf(llm.KindUpstream, "upstream sent more than %d parts in an event", MaxParts))
				return
			}
			for pi := range c.Content.Parts {
				p := &c.Content.Parts[pi]
				thought := p.Thought && p.Text != nil && *p.Text != ""
				if p.ThoughtSignature != "" && !thought {
					// A signature on a call or text comes first, as a
					// thinking block precedes what it led to.
					d.queue = append(d.queue, llm.Event{Kind: llm.EventThinking, Index: idx, Signature: p.ThoughtSignature})
				}
				switch {
				case p.FunctionCall != nil:
					if st.tools >= MaxToolCalls {
						d.fail(llm.Errorf(llm.KindUpstream, "upstream sent more than %d function calls in a candidate", MaxToolCalls))
						return
					}
					id := p.FunctionCall.ID
					if id == "" {
						id = "call_" + itoa(d.calls)
					}
					d.calls++
					t := st.tools
					st.tools++
					d.queue = append(d.queue,
						llm.Event{Kind: llm.EventToolStart, Index: idx, Tool: t, ID: id, Name: p.FunctionCall.Name},
						llm.Event{Kind: llm.EventToolArgs, Index: idx, Tool: t, Text: argsText(p.FunctionCall.Args)},
						llm.Event{Kind: llm.EventToolEnd, Index: idx, Tool: t})
				case thought:
					d.queue = append(d.queue, llm.Event{Kind: llm.EventThinking, Index: idx, Text: *p.Text})
					if p.ThoughtSignature != "" {
						// A thought's own signature closes it.
						d.queue = append(d.queue, llm.Event{Kind: llm.EventThinking, Index: idx, Signature: p.ThoughtSignature})
					}
				case p.Text != nil && *p.Text != "":
					d.queue = append(d.queue, llm.Event{Kind: llm.EventText, Index: idx, Text: *p.Text})
				}
			}
		}
		if c.FinishReason != "" {
			st.finish = c.FinishReason
			d.finished = true
		}
	}
}

// cand returns the state of candidate idx (0 <= idx < MaxCandidates).
func (d *streamDecoder) cand(idx int) *candState {
	for len(d.cands) <= idx {
		d.cands = append(d.cands, candState{})
	}
	c := &d.cands[idx]
	c.seen = true
	return c
}

// Close implements llm.EventStream: it closes the body when it is a Closer.
func (d *streamDecoder) Close() error {
	d.done = true
	if d.err == nil {
		d.err = io.EOF
	}
	if c, ok := d.closer.(io.Closer); ok {
		return c.Close()
	}
	return nil
}

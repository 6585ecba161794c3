package main

import (
	"net/http"
	"strconv"
	"time"
)

// respondJSON writes a complete non-stream JSON body, honouring the stall
// and disconnect controls:
//
//	X-Mock-Disconnect-After: 0  drop the connection before the headers
//	X-Mock-Disconnect-After: N  send the headers (with Content-Length), then drop it
//	X-Mock-Stall-After: 0       stall before the headers
//	X-Mock-Stall-After: N       send the headers, then stall before the body
//
// Headers already set on w (x-request-id, Retry-After) are kept.
func (m *mock) respondJSON(w http.ResponseWriter, r *http.Request, b *behaviour, body []byte) outcome {
	if b.disconnectAfter == 0 {
		return abort(w, false)
	}
	if b.stallAfter == 0 {
		return stall(r)
	}
	h := w.Header()
	h["Content-Type"] = ctJSON
	h["Content-Length"] = []string{strconv.Itoa(len(body))}
	if b.disconnectAfter > 0 || b.stallAfter > 0 {
		w.WriteHeader(http.StatusOK)
		if b.disconnectAfter > 0 {
			return abort(w, true)
		}
		if err := http.NewResponseController(w).Flush(); err != nil {
			return outcomeCanceled
		}
		return stall(r)
	}
	if _, err := w.Write(body); err != nil {
		return outcomeCanceled
	}
	return outcomeCompleted
}

// eventPlan describes one server-sent-event response for streamEvents.
type eventPlan struct {
	// n is the number of events, including a terminator such as data: [DONE].
	n int
	// The chunk delay is slept before events delayFrom..delayTo (inclusive);
	// the TTFT delay before event 0.
	delayFrom, delayTo int
	// appendEvent appends event i, with its SSE framing, to b.
	appendEvent func(b []byte, i int) []byte
	// contentType is the response's Content-Type; nil means
	// text/event-stream (Bedrock sends binary event-stream frames).
	contentType []string
}

// streamEvents sends the status line and headers at once, then the events of
// p, each flushed on its own. Before event i it drops the connection when
// X-Mock-Disconnect-After is i, or stalls until the client leaves when
// X-Mock-Stall-After is i; i may equal p.n (after the last event).
func (m *mock) streamEvents(w http.ResponseWriter, r *http.Request, b *behaviour, p eventPlan) outcome {
	h := w.Header()
	h["Content-Type"] = ctEventStream
	if p.contentType != nil {
		h["Content-Type"] = p.contentType
	}
	h["Cache-Control"] = noCache
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	if err := rc.Flush(); err != nil {
		return outcomeCanceled
	}
	ctx := r.Context()
	bp := m.bufs.get()
	defer m.bufs.put(bp)
	for i := 0; ; i++ {
		if b.disconnectAfter == i {
			return abort(w, true)
		}
		if b.stallAfter == i {
			return stall(r)
		}
		if i >= p.n {
			return outcomeCompleted
		}
		var d time.Duration
		if i == 0 {
			d = b.ttft
		} else if i >= p.delayFrom && i <= p.delayTo {
			d = b.chunkDelay
		}
		if !sleep(ctx, d) {
			return outcomeCanceled
		}
		*bp = p.appendEvent((*bp)[:0], i)
		if _, err := w.Write(*bp); err != nil {
			return outcomeCanceled
		}
		if err := rc.Flush(); err != nil {
			return outcomeCanceled
		}
	}
}

package router

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/sluice-ai/sluice/llm"
	"github.com/sluice-ai/sluice/providers"
	"github.com/sluice-ai/sluice/wire/openai"
	"github.com/sluice-ai/sluice/wire/sse"
)

// stream relays server-sent events. Headers are held back until the
// first event arrives, so an upstream that fails before sending anything
// can still be retried on another deployment or reported with a proper
// status. Events are written from the reader's buffer (no copy beyond the
// one write buffer) and flushed in batches: all the events the upstream
// has already sent go out together, flushed when the relay would next
// wait on the upstream (see upstreamBody), so an event that has to wait
// for the next is never held back. Error events, comments and event names
// are scrubbed of the provider's credentials when it implements
// providers.Redactor.
func (x *exchange) stream(resp *providers.Response, prov providers.Provider, d *llm.Deployment, idle *idleWatch, cancel context.CancelFunc) tryResult {
	red, _ := prov.(providers.Redactor)
	whole, _ := prov.(wholeRedactor)
	s := x.h.streams.get(x, resp.Body, idle, cancel)
	defer x.h.streams.put(s)
	er := s.reader()
	for {
		t0 := time.Now()
		data, event, comment, err := er.Next()
		if !s.sent {
			x.upstream += time.Since(t0)
		}
		if err != nil {
			if s.gone {
				return x.streamResult(s, errClientGone())
			}
			return x.endStream(s, err, resp.Status, d, idle)
		}
		if comment {
			// A keepalive: activity, forwarded once the stream has begun
			// (before that, forwarding would commit the status).
			if s.sent {
				if red != nil {
					data = s.scrub(red.Redact, data)
				}
				s.buf = sse.AppendComment(s.buf[:0], data)
				if !x.write(s) {
					return x.streamResult(s, errClientGone())
				}
			}
			continue
		}
		done := len(data) == 6 && string(data) == "[DONE]"
		if !done && len(data) > 6 && string(bytes.TrimSpace(data)) == "[DONE]" {
			done, data = true, []byte("[DONE]") // "[DONE] " from a lax server, passed on as clients expect
		}
		forward := true
		if !done {
			errV, usageV, choicesV, ok := chunkMembers(data)
			if !providers.IsErrorValue(errV) {
				errV = nil // "error":null beside a good chunk
			}
			isErr := string(event) == "error" || errV != nil
			if !ok && !isErr {
				if len(bytes.TrimSpace(data)) == 0 || s.finished {
					// An empty event is a keepalive; after the final
					// chunk the answer is complete: nothing to forward.
					continue
				}
				// Cut short or not JSON: the client's SDK would fail
				// on it, and the answer is not complete.
				return x.endStream(s, errBadEvent, resp.Status, d, idle)
			}
			if isErr {
				if errV == nil && ok {
					errV = data // {"message":…} under event: error
				}
				ue := providers.InbandError(d.Provider, errV, resp.Status, red)
				if !s.sent {
					// Nothing reached the client: an upstream error
					// status in all but name, retried or answered so.
					return tryResult{err: ue}
				}
				// Forwarded as sent (the stream has begun), and the
				// attempt's error for the balancer.
				s.upErr = ue
				x.rec.Status = llm.StatusError
				x.rec.ErrorType = "upstream_error"
				if red != nil {
					// An upstream error may echo the provider's secrets.
					data = s.scrub(red.Redact, data)
				}
			} else if whole != nil {
				// Nor may any other event carry the key the upstream
				// was sent.
				data = s.scrub(whole.RedactWhole, data)
			}
			if u, ok := parseUsage(usageV); ok {
				s.usage, s.gotUsage, s.finished = u, true, true
				if !x.req.includeUsage && emptyChoices(choicesV) {
					forward = false
				}
			}
			if len(choicesV) > 2 {
				if !s.finished && hasFinishReason(choicesV) {
					s.finished = true
				}
				if !s.gotUsage && len(s.text) < 1<<20 {
					// Keep the raw choices; they are decoded only if the
					// stream ends without usage and tokens must be estimated.
					if cap(s.text) == 0 {
						// Room for a short answer; a long one grows it by
						// doubling. An open stream holds this for its
						// whole life, so it starts small.
						s.text, s.ends = make([]byte, 0, 1024), make([]int, 0, 16)
					}
					s.text = append(s.text, choicesV...)
					s.ends = append(s.ends, len(s.text))
				}
			}
		}
		if forward {
			if !s.sent {
				idle.clearDeadline() // the first event came in time
			}
			x.streamHead(s, d)
			if red != nil && len(event) > 0 {
				event = red.Redact(nil, event)
			}
			s.buf = sse.AppendEvent(s.buf[:0], event, data)
			if !x.write(s) {
				return x.streamResult(s, errClientGone())
			}
		}
		if done {
			return x.streamResult(s, nil)
		}
	}
}

// wholeRedactor is implemented by providers that can remove whole echoes
// of their credentials from an answer (providers.OpenAI does), leaving
// fragments that may be ordinary content.
type wholeRedactor interface {
	RedactWhole(dst, b []byte) []byte
}

// streamState is what a stream relay keeps between events. States and
// their buffers are pooled (streamPool): an open stream holds one, and a
// stream that ends hands it, buffers included, to the next.
type streamState struct {
	sent     bool // headers written
	gotUsage bool
	finished bool // a chunk with finish_reason or usage was seen
	pending  bool // events written since the last flush
	gone     bool // a write or flush failed: the client is gone, the upstream cancelled
	usage    llm.Usage
	text     []byte // raw choices values, back to back
	ends     []int  // where each value in text ends
	buf      []byte // the write buffer
	red      []byte // redacted events (never the event reader's buffers)
	ttft     time.Duration
	upErr    *llm.Error // an error event forwarded mid-stream

	body   upstreamBody
	er     *sse.Reader        // the raw lanes' event reader, kept with its buffer across streams
	cancel context.CancelFunc // cancels the upstream call (clientGone)
}

// upstreamBody is the upstream's body as a stream relay reads it. Every
// read is a sign of life for the idle watch, and before each read — the
// relay has used up what the upstream sent and may have to wait for more
// — the events written since the last flush are flushed to the client.
// So events that arrived together leave together, in one write and one
// flush, and an event is never held back waiting for the next one. This
// relies on the readers of the body (the SSE reader, a provider's stream
// decoder) reading it only inside their Next, on the relay's goroutine,
// as llm.EventStream requires.
type upstreamBody struct {
	r    io.Reader
	idle *idleWatch
	x    *exchange
	s    *streamState
}

// errClientWrite is what an upstream read returns when the flush before
// it failed: the relay ends the stream as the client's cancellation.
var errClientWrite = errors.New("client write failed")

func (b *upstreamBody) Read(p []byte) (int, error) {
	if b.s.gone || (b.s.pending && !b.x.flush(b.s)) {
		return 0, errClientWrite
	}
	n, err := b.r.Read(p)
	b.idle.touch()
	return n, err
}

// reader returns the event reader of the raw lanes, reading s.body.
func (s *streamState) reader() *sse.Reader {
	if s.er == nil {
		s.er = sse.NewReader(&s.body)
	} else {
		s.er.Reset(&s.body)
	}
	return s.er
}

// streamPool recycles stream states with their buffers (the event
// reader's, the write buffer, the kept text), so a stream allocates none
// of them once the pool is warm. It lives in the Handler, not in a
// package variable.
type streamPool struct{ p sync.Pool }

// keepStreamBytes bounds the buffers a pooled state keeps: a stream that
// grew one beyond it (a huge event, a long answer without usage) leaves
// it to the garbage collector.
const keepStreamBytes = 64 << 10

// get returns a state for a stream of x reading body.
func (p *streamPool) get(x *exchange, body io.Reader, idle *idleWatch, cancel context.CancelFunc) *streamState {
	s, _ := p.p.Get().(*streamState)
	if s == nil {
		s = &streamState{buf: make([]byte, 0, 1024)}
	}
	s.body, s.cancel = upstreamBody{r: body, idle: idle, x: x, s: s}, cancel
	return s
}

// put returns s to the pool once its stream is over: nothing may use the
// slices it handed out (events read, text kept) any more.
func (p *streamPool) put(s *streamState) {
	if s.er != nil {
		s.er.Reset(nil)
	}
	ends := s.ends[:0]
	if cap(ends) > keepStreamBytes/8 {
		ends = nil
	}
	*s = streamState{text: keepBytes(s.text), ends: ends, buf: keepBytes(s.buf), red: keepBytes(s.red), er: s.er}
	p.p.Put(s)
}

// keepBytes returns b emptied, or nil when it grew beyond keepStreamBytes.
func keepBytes(b []byte) []byte {
	if cap(b) > keepStreamBytes {
		return nil
	}
	return b[:0]
}

// scrub returns data redacted by f, built in s.red. A redaction that
// matches nothing returns data itself, which lives in the event reader's
// buffers: s.red must never keep it, or the next redaction would write
// into the reader's buffer, over events not yet read.
func (s *streamState) scrub(f func(dst, b []byte) []byte, data []byte) []byte {
	out := f(s.red[:0], data)
	if len(out) > 0 && (len(data) == 0 || &out[0] != &data[0]) {
		s.red = out
	}
	return out
}

// keptText is the generated text of the events kept in s.text, each
// extracted by appendText (the dialect's reading of one event).
func (s *streamState) keptText(appendText func(dst, event []byte) []byte) string {
	var text []byte
	start := 0
	for _, end := range s.ends {
		text = appendText(text, s.text[start:end])
		start = end
	}
	return string(text)
}

// streamHead writes the response headers before the first event.
func (x *exchange) streamHead(s *streamState, d *llm.Deployment) {
	if s.sent {
		return
	}
	x.overhead = time.Since(x.start) - x.upstream
	hd := x.w.Header()
	hd["Content-Type"] = []string{"text/event-stream"}
	hd["Cache-Control"] = []string{"no-cache"}
	hd["X-Accel-Buffering"] = []string{"no"}
	x.setHeaders(hd, d)
	x.w.WriteHeader(http.StatusOK)
	x.rec.HTTPStatus = http.StatusOK
	s.sent = true
}

// write adds s.buf to the batch for the client: written into the
// connection's buffer (which reaches the socket when it fills), flushed
// when the relay next reads from the upstream or ends. The write deadline
// is set once per batch, at its first write, and bounds the batch's
// writes and its flush. False when the client is gone (the upstream is
// then cancelled).
func (x *exchange) write(s *streamState) bool {
	if s.gone {
		return false
	}
	if !s.pending {
		x.writeDeadline()
		s.pending = true
	}
	if _, err := x.w.Write(s.buf); err != nil {
		x.clientGone(s)
		return false
	}
	return true
}

// flush sends the batch written since the last flush; the first flush is
// the stream's time to first token. False when the client is gone.
func (x *exchange) flush(s *streamState) bool {
	if !s.pending {
		return !s.gone
	}
	s.pending = false
	err := x.rc.Flush()
	if s.ttft == 0 {
		s.ttft = time.Since(x.start)
		x.rec.TTFT = s.ttft
	}
	if err != nil {
		x.clientGone(s)
		return false
	}
	return true
}

// clientGone records a failed write: the client is gone (or too slow to
// read within the write deadline), the upstream call is cancelled.
func (x *exchange) clientGone(s *streamState) {
	s.gone, s.pending = true, false
	x.rec.Status = llm.StatusClientCancelled
	s.cancel()
}

// endStream handles the reader's error: a clean end, a failure before the
// first event (retryable), or a break after it.
func (x *exchange) endStream(s *streamState, err error, upstreamStatus int, d *llm.Deployment, idle *idleWatch) tryResult {
	if err == io.EOF && s.finished && x.r.Context().Err() == nil {
		// The upstream ended at an event boundary after its final chunk,
		// only without [DONE]: a complete answer. End the client's stream
		// as OpenAI clients expect.
		x.streamHead(s, d)
		s.buf = append(s.buf[:0], "data: [DONE]\n\n"...)
		x.write(s)
		return x.streamResult(s, nil)
	}
	return x.breakStream(s, x.streamError(err, upstreamStatus, d, idle), openai.AppendErrorEvent)
}

// breakStream ends a stream that failed with e. Before the first event
// it is the attempt's error (retried, or answered with a status); after
// it the request is recorded as broken (or cancelled by the client) and
// the client gets one error event rendered by fail in its dialect (none
// when fail is nil).
func (x *exchange) breakStream(s *streamState, e *llm.Error, fail func([]byte, *llm.Error) []byte) tryResult {
	if !s.sent {
		return tryResult{err: e}
	}
	if e.Kind == llm.KindCanceled {
		x.rec.Status = llm.StatusClientCancelled
	} else {
		x.rec.Status, x.rec.ErrorType = llm.StatusStreamBroken, e.Type
		if fail != nil {
			ev := *e
			ev.Type, ev.Code = "upstream_error", "stream_broken"
			s.buf = fail(s.buf[:0], &ev)
			x.write(s)
		}
	}
	return x.streamResult(s, e)
}

// streamResult ends a delivered stream: what was written is flushed,
// usage settled (estimated when the upstream reported none) and how it
// ended (e nil for a complete stream, which is still the attempt's error
// when it carried an error event).
func (x *exchange) streamResult(s *streamState, e *llm.Error) tryResult {
	x.flush(s)
	if e == nil {
		e = s.upErr
	}
	u := s.usage
	if !s.gotUsage {
		u = x.estimate(s.keptText(appendDeltaText))
	}
	return tryResult{delivered: true, err: e, usage: u, ttft: s.ttft}
}

// errBadEvent ends a stream whose upstream sent a data event that is not
// a JSON object.
var errBadEvent = errors.New("upstream event is not a JSON object")

func errClientGone() *llm.Error {
	return llm.Errorf(llm.KindCanceled, "client closed the request")
}

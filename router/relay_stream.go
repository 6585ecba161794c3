package router

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/sluice-ai/sluice/llm"
	"github.com/sluice-ai/sluice/providers"
	"github.com/sluice-ai/sluice/wire/openai"
	"github.com/sluice-ai/sluice/wire/sse"
)

// stream relays server-sent events, one flush per event, each write under
// the write deadline. Headers are held back until the first event arrives,
// so an upstream that fails before sending anything can still be retried
// on another deployment or reported with a proper status. Events are
// written from the reader's buffer: no copy beyond the one write buffer.
// Error events, comments and event names are scrubbed of the provider's
// credentials when it implements providers.Redactor.
func (x *exchange) stream(resp *providers.Response, prov providers.Provider, d *llm.Deployment, idle *idleWatch, cancel context.CancelFunc) tryResult {
	red, _ := prov.(providers.Redactor)
	whole, _ := prov.(wholeRedactor)
	er := sse.NewReader(resp.Body)
	s := streamState{buf: make([]byte, 0, 4096)}
	for {
		t0 := time.Now()
		data, event, comment, err := er.Next()
		if !s.sent {
			x.upstream += time.Since(t0)
		}
		if err != nil {
			return x.endStream(&s, err, resp.Status, d, idle, cancel)
		}
		idle.reset()
		if comment {
			// A keepalive: activity, forwarded once the stream has begun
			// (before that, forwarding would commit the status).
			if s.sent {
				if red != nil {
					data = s.scrub(red.Redact, data)
				}
				s.buf = sse.AppendComment(s.buf[:0], data)
				if !x.writeEvent(&s, cancel) {
					return x.streamResult(&s, errClientGone())
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
				return x.endStream(&s, errBadEvent, resp.Status, d, idle, cancel)
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
					if s.text == nil {
						// Sized for a typical answer: one allocation each
						// instead of a growth series per stream.
						s.text, s.ends = make([]byte, 0, 4096), make([]int, 0, 64)
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
			x.streamHead(&s, d)
			if red != nil && len(event) > 0 {
				event = red.Redact(nil, event)
			}
			s.buf = sse.AppendEvent(s.buf[:0], event, data)
			if !x.writeEvent(&s, cancel) {
				return x.streamResult(&s, errClientGone())
			}
		}
		if done {
			return x.streamResult(&s, nil)
		}
	}
}

// wholeRedactor is implemented by providers that can remove whole echoes
// of their credentials from an answer (providers.OpenAI does), leaving
// fragments that may be ordinary content.
type wholeRedactor interface {
	RedactWhole(dst, b []byte) []byte
}

// streamState is what the stream relay keeps between events.
type streamState struct {
	sent     bool // headers written
	gotUsage bool
	finished bool // a chunk with finish_reason or usage was seen
	usage    llm.Usage
	text     []byte // raw choices values, back to back
	ends     []int  // where each value in text ends
	buf      []byte // the write buffer
	red      []byte // redacted events (never the event reader's buffers)
	ttft     time.Duration
	upErr    *llm.Error // an error event forwarded mid-stream
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

// writeEvent writes and flushes s.buf; false when the client is gone (the
// upstream is then cancelled).
func (x *exchange) writeEvent(s *streamState, cancel context.CancelFunc) bool {
	x.writeDeadline()
	_, err := x.w.Write(s.buf)
	if err == nil {
		err = x.rc.Flush()
	}
	if s.ttft == 0 {
		s.ttft = time.Since(x.start)
		x.rec.TTFT = s.ttft
	}
	if err != nil {
		x.rec.Status = llm.StatusClientCancelled
		cancel()
		return false
	}
	return true
}

// endStream handles the reader's error: a clean end, a failure before the
// first event (retryable), or a break after it.
func (x *exchange) endStream(s *streamState, err error, upstreamStatus int, d *llm.Deployment, idle *idleWatch, cancel context.CancelFunc) tryResult {
	if err == io.EOF && s.finished && x.r.Context().Err() == nil {
		// The upstream ended at an event boundary after its final chunk,
		// only without [DONE]: a complete answer. End the client's stream
		// as OpenAI clients expect.
		x.streamHead(s, d)
		s.buf = append(s.buf[:0], "data: [DONE]\n\n"...)
		x.writeEvent(s, cancel)
		return x.streamResult(s, nil)
	}
	return x.breakStream(s, x.streamError(err, upstreamStatus, d, idle), openai.AppendErrorEvent, cancel)
}

// breakStream ends a stream that failed with e. Before the first event
// it is the attempt's error (retried, or answered with a status); after
// it the request is recorded as broken (or cancelled by the client) and
// the client gets one error event rendered by fail in its dialect (none
// when fail is nil).
func (x *exchange) breakStream(s *streamState, e *llm.Error, fail func([]byte, *llm.Error) []byte, cancel context.CancelFunc) tryResult {
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
			x.writeEvent(s, cancel)
		}
	}
	return x.streamResult(s, e)
}

// streamResult ends a delivered stream: usage (estimated when the upstream
// reported none) and how it ended (e nil for a complete stream, which is
// still the attempt's error when it carried an error event).
func (x *exchange) streamResult(s *streamState, e *llm.Error) tryResult {
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

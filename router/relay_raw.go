package router

import (
	"context"
	"io"
	"net/http"
	"time"

	"github.com/sluice-ai/sluice/llm"
	"github.com/sluice-ai/sluice/providers"
	"github.com/sluice-ai/sluice/wire/sse"
)

// rawStream relays a raw-lane stream of a dialect other than OpenAI chat
// (Anthropic Messages to Anthropic, Responses to OpenAI): every event is
// forwarded as the upstream sent it, while the dialect's sniffer reads
// usage, errors and the end of the answer on the way. As on the OpenAI
// relay, headers wait for the first event, events that arrived together
// are flushed together, error events and comments are scrubbed of the
// provider's credentials, and every write is bounded.
func (x *exchange) rawStream(resp *providers.Response, prov providers.Provider, d *llm.Deployment, idle *idleWatch, cancel context.CancelFunc) tryResult {
	red, _ := prov.(providers.Redactor)
	whole, _ := prov.(wholeRedactor)
	sn := x.in.sniffer()
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
			x.rawUsage(s, sn)
			if s.gone {
				return x.streamResult(s, errClientGone())
			}
			if err == io.EOF && s.finished && x.r.Context().Err() == nil {
				return x.streamResult(s, nil)
			}
			var fail func([]byte, *llm.Error) []byte
			if x.in.encoder != nil {
				fail = x.in.encoder("", "", 0, false).Fail
			}
			return x.breakStream(s, x.streamError(err, resp.Status, d, idle), fail)
		}
		if comment {
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
		errV, status, final := sn.Event(event, data)
		if len(s.text) < maxEstimateText {
			// Kept raw, decoded only if the answer ends without usage.
			s.text = append(s.text, data...)
			s.ends = append(s.ends, len(s.text))
		}
		if errV != nil {
			ue := providers.InbandError(d.Provider, errV, resp.Status, red)
			withStatus(ue, status)
			if !s.sent {
				return tryResult{err: ue}
			}
			s.upErr = ue
			x.rec.Status, x.rec.ErrorType = llm.StatusError, "upstream_error"
			if red != nil {
				data = s.scrub(red.Redact, data)
			}
		} else if whole != nil {
			data = s.scrub(whole.RedactWhole, data)
		}
		if !s.sent {
			idle.clearDeadline()
		}
		x.streamHead(s, d)
		if red != nil && len(event) > 0 {
			event = red.Redact(nil, event)
		}
		s.buf = sse.AppendEvent(s.buf[:0], event, data)
		if final || errV != nil {
			// The answer is complete (or ended by its error event):
			// nothing after it is the client's.
			s.finished = final
		}
		if !x.write(s) {
			x.rawUsage(s, sn)
			return x.streamResult(s, errClientGone())
		}
		if final || errV != nil {
			x.rawUsage(s, sn)
			return x.streamResult(s, nil)
		}
	}
}

// rawUsage settles a raw stream's usage: what the upstream reported when
// the answer completed with it; otherwise (no usage, or a stream that
// ended early, whose last figures are placeholders) estimated from the
// generated text kept, with the prompt count the stream did report.
func (x *exchange) rawUsage(s *streamState, sn rawSniffer) {
	u, ok := sn.Usage()
	if ok && s.finished {
		s.usage, s.gotUsage = u, true
		return
	}
	est := x.estimate(s.keptText(x.in.deltaText))
	if ok && u.PromptTokens > 0 {
		est.PromptTokens, est.CacheReadTokens, est.CacheWriteTokens = u.PromptTokens, u.CacheReadTokens, u.CacheWriteTokens
	}
	s.usage, s.gotUsage = est, true
}

// withStatus applies the HTTP status a dialect's error event implies
// (Anthropic's overloaded_error is a 529) when the error object itself
// named none: the client gets what the upstream would have answered with
// as a status (529 as 503), and health sees the upstream's status.
func withStatus(e *llm.Error, status int) {
	if status < 400 || status > 599 || (e.UpstreamStatus >= 400 && e.UpstreamStatus <= 599) {
		return
	}
	e.UpstreamStatus, e.Status = status, status
	switch {
	case status == 529:
		e.Status, e.Type = http.StatusServiceUnavailable, "overloaded_error"
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		e.Status, e.Type, e.Code = http.StatusBadGateway, "upstream_error", "upstream_auth_failed"
	case status >= 500:
		e.Type = "upstream_error"
	case status == http.StatusTooManyRequests:
		e.Type = "rate_limit_error"
	}
}

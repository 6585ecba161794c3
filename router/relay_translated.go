package router

import (
	"context"
	"errors"
	"io"
	"strings"
	"time"

	"github.com/sluice-ai/sluice/llm"
	"github.com/sluice-ai/sluice/providers"
	"github.com/sluice-ai/sluice/wire/sse"
)

// The translated lane: the client's dialect is not the provider's. The
// request goes to the provider in neutral form, decoded once per request
// by the client dialect's codec; the provider's Decoder turns its answer
// into neutral form, and the client dialect's codec renders it. The
// router only moves neutral values between the two and keeps the same
// bounds as on the raw lane: size, idle gaps, first event, write deadlines.

// translate fills call's neutral request for deployment d. The client's
// body is decoded on the first translated attempt only.
func (x *exchange) translate(call *providers.Call, d *llm.Deployment) *llm.Error {
	if x.in.dialect == llm.DialectOpenAIEmbeddings {
		if x.in.decodeEmbed == nil {
			return notTranslatable(x.ep, d)
		}
		if x.embed == nil {
			r, e := x.in.decodeEmbed(x.req.body)
			if e != nil {
				return e
			}
			x.embed = r
		}
		r := *x.embed
		r.Model = d.Model
		call.Embed = &r
		return nil
	}
	if !x.in.translates() {
		return notTranslatable(x.ep, d)
	}
	if x.chat == nil {
		r, e := x.in.decode(x.req.body)
		if e != nil {
			return e
		}
		x.chat = r
	}
	r := *x.chat // shallow: the provider must not modify what it shares
	r.Model, r.Stream = d.Model, x.req.stream
	call.Chat = &r
	return nil
}

func notTranslatable(ep llm.Endpoint, d *llm.Deployment) *llm.Error {
	e := llm.Errorf(llm.KindInvalidRequest, "the %s endpoint is not available for model deployments on provider %s; use /v1/chat/completions", ep, d.Provider)
	e.Code = "unsupported_endpoint"
	return e
}

// translatedJSON relays a non-streamed translated answer.
func (x *exchange) translatedJSON(resp *providers.Response, d *llm.Deployment, idle *idleWatch, limit time.Duration) tryResult {
	body, tr, ok := x.readJSON(resp, d, idle, limit)
	if !ok {
		return tr
	}
	var out []byte
	var u llm.Usage
	if x.in.dialect == llm.DialectOpenAIEmbeddings {
		r, err := resp.Decoder.Embed(body)
		if err != nil {
			return tryResult{err: asError(err)}
		}
		if u = r.Usage; !r.UsageKnown {
			u = x.estimate("")
			r.Usage = u
		}
		out = x.in.embedResponse(make([]byte, 0, len(body)), r, x.embed.Base64)
	} else {
		r, err := resp.Decoder.Chat(body)
		if err != nil {
			return tryResult{err: asError(err)}
		}
		if u = r.Usage; !r.UsageKnown {
			u = x.estimate(answerText(r))
			r.Usage = u
		}
		if r.Created == 0 { // Anthropic and Gemini answers carry no time
			r.Created = x.start.Unix()
		}
		if r.ID == "" {
			r.ID = x.rec.ID
		}
		out = x.in.response(make([]byte, 0, len(body)+256), r)
	}
	x.writeJSONAnswer(200, out, d)
	return tryResult{delivered: true, usage: u}
}

// answerText is the text of every choice, for estimating tokens.
func answerText(r *llm.ChatResponse) string {
	var b strings.Builder
	for i := range r.Choices {
		m := &r.Choices[i].Message
		for _, p := range m.Content {
			b.WriteString(p.Text)
		}
		for _, c := range m.ToolCalls {
			b.WriteString(c.Name)
			b.WriteString(c.Arguments)
		}
	}
	return b.String()
}

// maxEstimateText bounds the streamed text kept to estimate tokens when
// the upstream reports no usage.
const maxEstimateText = 1 << 20

// translatedStream relays a streamed translated answer: neutral events
// pulled from the provider's decoder, rendered by the client dialect's
// encoder. As on the raw lane, the events the upstream sent together are
// written and flushed together (the flush comes before the decoder next
// reads from the upstream, see upstreamBody: a decoder may skip upstream
// events, so only its reads tell when the relay would wait), and headers
// wait for the first event, so a failure before it is retried or answered
// with a proper status.
func (x *exchange) translatedStream(resp *providers.Response, d *llm.Deployment, idle *idleWatch, cancel context.CancelFunc) tryResult {
	s := x.h.streams.get(x, resp.Body, idle, cancel)
	defer x.h.streams.put(s)
	events := resp.Decoder.Stream(&s.body)
	defer events.Close()
	var enc llm.StreamEncoder
	for {
		t0 := time.Now()
		ev, err := events.Next()
		if !s.sent {
			x.upstream += time.Since(t0)
		}
		if err != nil {
			if s.gone {
				if !s.gotUsage {
					s.usage, s.gotUsage = x.estimate(string(s.text)), true
				}
				return x.streamResult(s, errClientGone())
			}
			if err == io.EOF && x.r.Context().Err() == nil {
				if enc == nil {
					err = errEmptyStream // ended before any event
				} else {
					if !s.gotUsage {
						s.usage = x.estimate(string(s.text))
					}
					s.buf = enc.Finish(s.buf[:0], s.usage)
					x.write(s)
					s.gotUsage = true // whatever was counted is final
					return x.streamResult(s, nil)
				}
			}
			if s.sent && !s.gotUsage {
				s.usage, s.gotUsage = x.estimate(string(s.text)), true
			}
			var fail func([]byte, *llm.Error) []byte
			if enc != nil { // nil before the first event: nothing was sent
				fail = enc.Fail
			}
			return x.breakStream(s, x.streamError(err, resp.Status, d, idle), fail)
		}
		if enc == nil {
			id, model := ev.ID, ev.Model
			if id == "" {
				id = x.rec.ID
			}
			if model == "" {
				model = x.req.model
			}
			enc = x.in.encoder(id, model, x.start.Unix(), x.req.includeUsage)
		}
		switch ev.Kind {
		case llm.EventError:
			e := ev.Err
			if e == nil {
				e = llm.Errorf(llm.KindUpstream, "upstream %s reported an error", d.Provider)
			}
			if !s.sent {
				return tryResult{err: e} // an error status in all but name
			}
			x.rec.Status, x.rec.ErrorType = llm.StatusError, "upstream_error"
			s.buf = enc.Fail(s.buf[:0], e)
			x.write(s)
			s.upErr = e
			if !s.gotUsage {
				s.usage = x.estimate(string(s.text))
				s.gotUsage = true
			}
			return x.streamResult(s, nil)
		case llm.EventUsage:
			s.usage, s.gotUsage = ev.Usage, true
		case llm.EventStart:
			if ev.Usage.PromptTokens > 0 && !s.gotUsage {
				s.usage = ev.Usage
			}
		case llm.EventText, llm.EventToolArgs:
			if len(s.text) < maxEstimateText {
				s.text = append(s.text, ev.Text...) // kept to estimate usage (no ends: not the raw lanes' events)
			}
		case llm.EventFinish:
			s.finished = true
		}
		s.buf = enc.Encode(s.buf[:0], ev)
		if len(s.buf) == 0 {
			continue
		}
		if !s.sent {
			idle.clearDeadline() // the first event came in time
		}
		x.streamHead(s, d)
		if !x.write(s) {
			if !s.gotUsage {
				s.usage, s.gotUsage = x.estimate(string(s.text)), true
			}
			return x.streamResult(s, errClientGone())
		}
	}
}

// errEmptyStream ends a translated stream that closed before any event.
var errEmptyStream = errors.New("upstream stream ended before any event")

// streamError maps a stream reader's error to the attempt's error, for
// every relay: the client gone, the idle watch's verdicts, an oversized or
// malformed event, a decoder's own error, else a stream cut short.
func (x *exchange) streamError(err error, upstreamStatus int, d *llm.Deployment, idle *idleWatch) *llm.Error {
	var e *llm.Error
	switch {
	case x.r.Context().Err() != nil:
		e = errClientGone()
	case idle.fired.Load():
		e = llm.Errorf(llm.KindTimeout, "upstream %s stream stalled for %s", d.Provider, idle.d)
	case idle.expired.Load():
		e = llm.Errorf(llm.KindTimeout, "upstream %s sent no event within its first-byte timeout", d.Provider)
	case errors.Is(err, sse.ErrEventTooLarge):
		e = llm.Errorf(llm.KindUpstream, "upstream %s sent an oversized event", d.Provider)
	case errors.Is(err, errBadEvent):
		e = llm.Errorf(llm.KindUpstream, "upstream %s sent an event that is not a JSON object", d.Provider)
		e.Code = "invalid_upstream_response"
	case errors.As(err, &e):
		// The decoder's own verdict (a malformed or oversized event).
		c := *e
		c.Provider = d.Provider
		if c.UpstreamStatus == 0 {
			c.UpstreamStatus = upstreamStatus
		}
		return &c
	default:
		e = llm.Errorf(llm.KindUpstream, "upstream %s stream ended before completion", d.Provider)
		e.Code = "stream_broken"
	}
	e.Err, e.UpstreamStatus = err, upstreamStatus
	return e
}

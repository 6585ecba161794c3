package router

import (
	"bytes"
	"context"
	"io"
	"sync/atomic"
	"time"

	"github.com/sluice-ai/sluice/balancer"
	"github.com/sluice-ai/sluice/llm"
	"github.com/sluice-ai/sluice/providers"
)

// contender is one upstream attempt: the call prepared for its deployment,
// its own context, its in-flight mark in the balancer and, once made, the
// call's answer. An attempt is made by deliver in the request's goroutine,
// or, when hedged, opened in a goroutine of its own (open, which touches
// nothing of the exchange) and then delivered or abandoned.
type contender struct {
	prov   providers.Provider
	d      *llm.Deployment
	adm    Admission // the attempt's admission on d's own limits
	call   *providers.Call
	to     llm.Timeouts
	ctx    context.Context
	cancel context.CancelFunc
	t0     time.Time
	// done reports the attempt's outcome to the balancer; it does nothing
	// when the call was never sent.
	done func(balancer.Outcome)
	// resp is the call's answer once made; when its first bytes were
	// awaited (peeked), Body gives them back first.
	resp *providers.Response
	// err is why the attempt failed before an answer: the request cannot
	// be expressed for the provider (resp nil, nothing sent), or the call
	// or its first bytes failed.
	err *llm.Error
	// waited is the time from t0 to the call's answer: its headers, or
	// its first bytes when they were awaited.
	waited time.Duration
	// hedge is true for the second attempt of a hedged race.
	hedge bool
}

func noReport(balancer.Outcome) {}

// prepare builds the attempt on d: the call in the provider's wire format
// and the attempt's context. Unless the request cannot be expressed for
// the provider (c.err), the attempt is marked in flight in the balancer;
// its done must then be called exactly once (deliver or abandon does).
func (x *exchange) prepare(prov providers.Provider, d *llm.Deployment) *contender {
	c := &contender{prov: prov, d: d, to: timeoutsOf(prov), adm: noAdmission{}, done: noReport, t0: time.Now()}
	c.ctx, c.cancel = context.WithCancel(x.r.Context())
	call := &providers.Call{Endpoint: x.ep, Dialect: x.in.dialect, Model: d.Model, Stream: x.req.stream, RequestID: x.rec.ID}
	c.call = call
	if prov.Native(x.in.dialect) {
		call.Body = x.req.upstreamBody(d.Model)
		if x.req.injectsUsage() {
			// For upstreams that reject stream_options (the provider
			// remembers which): the client's own request; usage is then
			// estimated if missing.
			call.PlainBody = func() []byte { return x.req.rewrite(d.Model, false) }
		}
	} else if e := x.translate(call, d); e != nil {
		c.err = e
		return c
	}
	c.done = x.h.opts.Balancer.Start(d)
	return c
}

// open makes the call. With peek it also waits for the answer's first
// bytes (see peekFirst), within the provider's first-byte timeout; a body
// that fails before them is the attempt's error, like a failed call. It
// reads nothing of the exchange: a hedge race runs it in goroutines.
func (c *contender) open(peek bool) {
	resp, err := c.prov.Do(c.ctx, c.call)
	if err != nil {
		c.waited = time.Since(c.t0)
		c.err = asError(err)
		return
	}
	if peek {
		if e := c.peekFirst(resp); e != nil {
			c.waited = time.Since(c.t0)
			resp.Body.Close()
			c.err = e
			return
		}
	}
	c.waited = time.Since(c.t0)
	c.resp = resp
}

// maxPeek bounds what peekFirst holds while it skips keepalive comments.
const maxPeek = 64 << 10

// peekFirst reads resp's body until the answer has started: its first
// bytes, or on an event stream the first bytes that are not keepalive
// comments or blank lines (an upstream that sends ": ping" at once has not
// started answering). What it read is put back in front of the body. It is
// bounded by the provider's first-byte timeout from t0 and by c's context.
func (c *contender) peekFirst(resp *providers.Response) *llm.Error {
	var expired atomic.Bool
	t := time.AfterFunc(time.Until(c.t0.Add(c.to.FirstByte)), func() {
		expired.Store(true)
		c.cancel()
	})
	defer t.Stop()
	sse := isEventStream(resp.Header)
	buf := make([]byte, 0, 4<<10)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := resp.Body.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if n > 0 && (!sse || answerStarted(buf) || len(buf) >= maxPeek) {
			break
		}
		if err == io.EOF {
			break // an empty (or comments-only) body: the relay judges it
		}
		if err != nil {
			if expired.Load() {
				e := llm.Errorf(llm.KindTimeout, "upstream %s sent no first byte within %s", c.d.Provider, c.to.FirstByte)
				e.Err, e.UpstreamStatus = err, resp.Status
				return e
			}
			if c.ctx.Err() != nil {
				// Canceled: the race is decided, or the client left.
				return llm.Errorf(llm.KindCanceled, "attempt canceled")
			}
			e := llm.Errorf(llm.KindUpstream, "upstream %s sent an incomplete response", c.d.Provider)
			e.Err, e.UpstreamStatus = err, resp.Status
			return e
		}
	}
	resp.Body = peekedBody{Reader: io.MultiReader(bytes.NewReader(buf), resp.Body), c: resp.Body}
	return nil
}

// answerStarted reports whether an event stream's first bytes b hold more
// than comment lines (":…") and blank lines.
func answerStarted(b []byte) bool {
	for len(b) > 0 {
		switch b[0] {
		case '\n', '\r':
			b = b[1:]
			continue
		case ':':
			i := bytes.IndexByte(b, '\n')
			if i < 0 {
				return false // the comment goes on
			}
			b = b[i+1:]
			continue
		}
		return true
	}
	return false
}

// peekedBody is a body whose first bytes were read ahead and are given
// back first.
type peekedBody struct {
	io.Reader
	c io.Closer
}

func (p peekedBody) Close() error { return p.c.Close() }

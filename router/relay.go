package router

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/sluice-ai/sluice/auth"
	"github.com/sluice-ai/sluice/balancer"
	"github.com/sluice-ai/sluice/llm"
	"github.com/sluice-ai/sluice/providers"
	"github.com/sluice-ai/sluice/state"
)

// maxResponseBytes bounds a non-streamed upstream body.
const maxResponseBytes = 64 << 20

// exchange is the state of one proxied request.
type exchange struct {
	h         *Handler
	w         http.ResponseWriter
	r         *http.Request
	ep        llm.Endpoint
	start     time.Time
	rec       llm.Record
	principal *auth.Principal
	modelOK   bool          // rec.Model is a configured model (safe as a label)
	upstream  time.Duration // time spent waiting on upstreams
	overhead  time.Duration
	req       *request
	dep       *llm.Deployment
}

func (h *Handler) relay(ep llm.Endpoint) gin.HandlerFunc {
	return func(c *gin.Context) {
		x := &exchange{h: h, w: c.Writer, r: c.Request, ep: ep, start: h.opts.Now()}
		x.serve()
	}
}

func (x *exchange) serve() {
	h := x.h
	h.opts.Metrics.inflight.Inc()
	defer h.opts.Metrics.inflight.Dec()
	x.rec = llm.Record{ID: newRequestID(), ClientRequestID: clientRequestID(x.r), Time: x.start, Endpoint: x.ep, Status: llm.StatusOK}
	// The client's own id is echoed when it sent one; the gateway's id,
	// which keys the usage row, is always in X-Sluice-Request-Id.
	hd := x.w.Header()
	hd["X-Sluice-Request-Id"] = []string{x.rec.ID}
	if x.rec.ClientRequestID != "" {
		hd["X-Request-Id"] = []string{x.rec.ClientRequestID}
	} else {
		hd["X-Request-Id"] = []string{x.rec.ID}
	}
	defer x.finish()
	if max := h.opts.MaxInFlight; max > 0 {
		n := h.inflight.Add(1)
		defer h.inflight.Add(-1)
		if n > max {
			// Shed load at once rather than queue: the client (or its SDK)
			// retries after a second, perhaps on another replica.
			e := llm.Errorf(llm.KindUnavailable, "the gateway is at capacity (%d requests in flight); retry shortly", max)
			e.Code, e.RetryAfter = "overloaded", time.Second
			x.fail(e)
			return
		}
	}

	st := h.opts.State()
	p, aerr := auth.AuthenticateHeader(st.Snapshot, x.r.Header, x.start)
	if aerr != nil {
		x.fail(aerr)
		return
	}
	x.principal = p
	x.rec.KeyID, x.rec.KeyPrefix = p.KeyID, p.KeyPrefix
	x.rec.PrincipalID, x.rec.PrincipalKind, x.rec.Owner = p.ID, p.Kind, p.Owner

	// A client that trickles its body must not hold the request forever.
	rc := http.NewResponseController(x.w)
	_ = rc.SetReadDeadline(time.Now().Add(h.opts.BodyReadTimeout))
	body, berr := readBody(x.w, x.r, h.opts.MaxBodyBytes)
	_ = rc.SetReadDeadline(time.Time{})
	if berr != nil {
		x.fail(berr)
		return
	}
	req, perr := parseRequest(body)
	if perr != nil {
		x.fail(perr)
		return
	}
	if x.ep == llm.EndpointEmbeddings {
		req.stream = false
	}
	x.req = req
	x.rec.Stream = req.stream
	m, ok := st.Snapshot.Models[req.model]
	if !ok {
		e := llm.Errorf(llm.KindNotFound, "the model %q does not exist or you do not have access to it", truncate(req.model, 256))
		e.Param = "model"
		x.fail(e)
		return
	}
	x.rec.Model, x.modelOK = m.Name, true
	if !p.Allows(m.Name) {
		e := llm.Errorf(llm.KindPermissionDenied, "this API key is not allowed to use model %q", m.Name)
		e.Param = "model"
		x.fail(e)
		return
	}
	x.attempt(st, m)
}

// attempt tries m's deployments in the balancer's order until one answers.
// Failures are retried on the next deployment only before the first byte
// reaches the client, and only when the error says another may succeed.
func (x *exchange) attempt(st *state.State, m *llm.Model) {
	h := x.h
	var last *llm.Error
	tries := 0
	plan := h.opts.Balancer.Plan(m)
	for d := plan.Next(); d != nil; d = plan.Next() {
		if tries >= h.opts.MaxAttempts {
			break
		}
		prov, ok := st.Providers.Get(d.Provider)
		if !ok {
			last = llm.Errorf(llm.KindUnavailable, "no provider is configured for deployment %s", d.ID)
			continue
		}
		if tries > 0 {
			h.opts.Metrics.retries.WithLabelValues(m.Name).Inc()
		}
		tries++
		x.dep = d
		x.rec.Provider, x.rec.Deployment, x.rec.UpstreamModel = d.Provider, d.ID, d.Model
		err, retry := x.try(st, prov, d)
		if err == nil {
			return
		}
		last = err
		if !retry || x.r.Context().Err() != nil {
			break
		}
	}
	if last == nil {
		last = llm.Errorf(llm.KindUnavailable, "model %q has no deployment available", m.Name)
	}
	x.fail(last)
}

// try runs one attempt. It returns nil once a response (or a mid-stream
// failure) has been delivered to the client; otherwise the error, and
// whether another deployment may be tried.
func (x *exchange) try(st *state.State, prov providers.Provider, d *llm.Deployment) (e *llm.Error, retry bool) {
	h := x.h
	ctx, cancel := context.WithCancel(x.r.Context())
	defer cancel()
	t0 := time.Now()
	done := h.opts.Balancer.Start(d)
	defer func() {
		out := balancer.Outcome{Err: e, Latency: time.Since(t0)}
		if out.Err == nil && x.rec.Status == llm.StatusStreamBroken {
			out.Err = llm.Errorf(llm.KindUpstream, "stream broken")
		}
		if ttft := x.rec.TTFT - t0.Sub(x.start); out.Err == nil && x.rec.TTFT > 0 && ttft > 0 {
			out.TTFT = ttft
		}
		done(out)
	}()
	call := &providers.Call{Endpoint: x.ep, Body: x.req.upstreamBody(d.Model), Stream: x.req.stream, RequestID: x.rec.ID}
	resp, err := prov.Do(ctx, call)
	if err != nil && x.req.injectsUsage() && rejectsStreamOptions(err) {
		// Some OpenAI-compatible servers reject stream_options. Ask again
		// exactly as the client did; usage is then estimated if missing.
		call.Body = x.req.rewrite(d.Model, false)
		resp, err = prov.Do(ctx, call)
	}
	x.upstream += time.Since(t0)
	if err != nil {
		e := asError(err)
		return e, balancer.Retryable(e)
	}
	defer resp.Body.Close()
	// From the response headers on, the provider's idle timeout bounds
	// every quiet gap in the body, streamed or not.
	idle := watchIdle(idleTimeout(st, d), cancel)
	defer idle.stop()
	if x.req.stream && isEventStream(resp.Header) {
		return x.stream(resp, d, idle, cancel)
	}
	return x.json(resp, d, idle)
}

// json relays a non-streamed answer.
func (x *exchange) json(resp *providers.Response, d *llm.Deployment, idle *idleWatch) (*llm.Error, bool) {
	t0 := time.Now()
	body, err := readAllLimited(idle.reader(resp.Body), resp.Header, maxResponseBytes)
	idle.stop()
	x.upstream += time.Since(t0)
	if err != nil {
		if x.r.Context().Err() != nil {
			return llm.Errorf(llm.KindCanceled, "client closed the request"), false
		}
		if idle.fired.Load() {
			e := llm.Errorf(llm.KindTimeout, "upstream %s stalled while sending its response", d.Provider)
			e.Err = err
			return e, true
		}
		e := llm.Errorf(llm.KindUpstream, "upstream %s sent an incomplete response", d.Provider)
		e.Err = err
		return e, true
	}
	if i := skipWS(body, 0); i >= len(body) || (body[i] != '{' && body[i] != '[') {
		// An HTML error page from a proxy in front of the provider, say.
		e := llm.Errorf(llm.KindUpstream, "upstream %s returned a response that is not JSON", d.Provider)
		e.Code = "invalid_upstream_response"
		return e, true
	}
	u, ok := parseUsage(member(body, "usage"))
	if !ok {
		u = x.estimate(completionText(body))
	}
	x.setUsage(u, d)
	x.overhead = time.Since(x.start) - x.upstream
	hd := x.w.Header()
	hd["Content-Type"] = []string{"application/json"}
	x.setHeaders(hd, d)
	x.w.WriteHeader(resp.Status)
	x.rec.HTTPStatus = resp.Status
	if _, err := x.w.Write(body); err != nil {
		x.rec.Status = llm.StatusClientCancelled
	}
	return nil, false
}

func (x *exchange) setHeaders(hd http.Header, d *llm.Deployment) {
	hd["X-Sluice-Provider"] = []string{d.Provider}
	hd["X-Sluice-Deployment"] = []string{d.ID}
	hd["X-Sluice-Overhead-Ms"] = []string{strconv.FormatFloat(ms(x.overhead), 'f', 3, 64)}
}

// stream relays server-sent events, one flush per event. Headers are held
// back until the first event arrives, so an upstream that fails before
// sending anything can still be retried on another deployment or reported
// with a proper status.
func (x *exchange) stream(resp *providers.Response, d *llm.Deployment, idle *idleWatch, cancel context.CancelFunc) (*llm.Error, bool) {
	h := x.h

	rc := http.NewResponseController(x.w)
	defer func() { _ = rc.SetWriteDeadline(time.Time{}) }()
	er := newEventReader(resp.Body)
	var (
		sent     bool
		usage    llm.Usage
		gotUsage bool
		text     []byte // raw choices values, back to back
		ends     []int  // where each value in text ends
		buf      = make([]byte, 0, 4096)
	)
	for {
		t0 := time.Now()
		data, event, comment, err := er.next()
		if !sent {
			x.upstream += time.Since(t0)
		}
		if comment && err == nil {
			// A keepalive: activity, forwarded once the stream has begun
			// (before that, forwarding would commit the status).
			idle.reset()
			if sent {
				buf = appendComment(buf[:0], data)
				_ = rc.SetWriteDeadline(time.Now().Add(h.opts.WriteTimeout))
				if _, werr := x.w.Write(buf); werr == nil {
					_ = rc.Flush()
				}
			}
			continue
		}
		if err != nil {
			var e *llm.Error
			switch {
			case x.r.Context().Err() != nil:
				x.rec.Status = llm.StatusClientCancelled
				e = llm.Errorf(llm.KindCanceled, "client closed the request")
			case idle.fired.Load():
				e = llm.Errorf(llm.KindTimeout, "upstream %s stream stalled for %s", d.Provider, idle.d)
			case errors.Is(err, errEventTooLarge):
				e = llm.Errorf(llm.KindUpstream, "upstream %s sent an oversized event", d.Provider)
			default:
				e = llm.Errorf(llm.KindUpstream, "upstream %s stream ended before completion", d.Provider)
				e.Code = "stream_broken"
			}
			e.Err = err
			if !sent {
				return e, e.Kind != llm.KindCanceled
			}
			if e.Kind != llm.KindCanceled {
				x.rec.Status = llm.StatusStreamBroken
				x.rec.ErrorType = e.Type
				e.Type, e.Code = "upstream_error", "stream_broken"
				buf = append(appendOpenAIError(append(buf[:0], "data: "...), e), "\n\n"...)
				_ = rc.SetWriteDeadline(time.Now().Add(h.opts.WriteTimeout))
				_, _ = x.w.Write(buf)
				_ = rc.Flush()
			}
			x.finishStream(usage, gotUsage, text, ends, d)
			return nil, false
		}
		idle.reset()
		done := len(data) == 6 && string(data) == "[DONE]"
		forward := true
		if !done {
			errV, usageV, choicesV := chunkMembers(data)
			if string(event) == "error" || errV != nil {
				x.rec.Status = llm.StatusError
				x.rec.ErrorType = "upstream_error"
			}
			if u, ok := parseUsage(usageV); ok {
				usage, gotUsage = u, true
				if !x.req.includeUsage && emptyChoices(choicesV) {
					forward = false
				}
			}
			if !gotUsage && len(text) < 1<<20 && len(choicesV) > 2 {
				// Keep the raw choices; they are decoded only if the stream
				// ends without usage and tokens must be estimated.
				text = append(text, choicesV...)
				ends = append(ends, len(text))
			}
		}
		if forward {
			if !sent {
				x.overhead = time.Since(x.start) - x.upstream
				hd := x.w.Header()
				hd["Content-Type"] = []string{"text/event-stream"}
				hd["Cache-Control"] = []string{"no-cache"}
				hd["X-Accel-Buffering"] = []string{"no"}
				x.setHeaders(hd, d)
				x.w.WriteHeader(http.StatusOK)
				x.rec.HTTPStatus = http.StatusOK
				sent = true
			}
			buf = appendEvent(buf[:0], event, data)
			_ = rc.SetWriteDeadline(time.Now().Add(h.opts.WriteTimeout))
			_, werr := x.w.Write(buf)
			if werr == nil {
				werr = rc.Flush()
			}
			if x.rec.TTFT == 0 {
				x.rec.TTFT = time.Since(x.start)
			}
			if werr != nil {
				x.rec.Status = llm.StatusClientCancelled
				cancel()
				x.finishStream(usage, gotUsage, text, ends, d)
				return nil, false
			}
		}
		if done {
			x.finishStream(usage, gotUsage, text, ends, d)
			return nil, false
		}
	}
}

func (x *exchange) finishStream(u llm.Usage, got bool, choices []byte, ends []int, d *llm.Deployment) {
	if !got {
		var text []byte
		start := 0
		for _, end := range ends {
			text = appendDeltaText(text, choices[start:end])
			start = end
		}
		u = x.estimate(string(text))
	}
	x.setUsage(u, d)
}

// idleTimeout is the idle timeout of d's provider in st.
func idleTimeout(st *state.State, d *llm.Deployment) time.Duration {
	if p, ok := st.Snapshot.Providers[d.Provider]; ok {
		return p.Timeouts.WithDefaults().Idle
	}
	return llm.DefaultIdleTimeout
}

// estimate counts tokens locally when the upstream reported none.
func (x *exchange) estimate(completion string) llm.Usage {
	est := x.h.opts.Estimator
	u := llm.Usage{PromptTokens: est.PromptTokens(x.req.body), Estimated: true}
	if x.ep != llm.EndpointEmbeddings {
		u.CompletionTokens = est.Count(completion)
	}
	return u
}

// setUsage sanitises u against what the request could use (see
// llm.Usage.Sanitize), then records it with its cost.
func (x *exchange) setUsage(u llm.Usage, d *llm.Deployment) {
	var l llm.UsageLimits
	if x.req != nil {
		l = x.req.usageLimits()
	}
	x.rec.Usage = u.Sanitize(l)
	x.rec.CostMicros = d.Cost(x.rec.Usage)
}

// fail answers with e (when nothing was written yet) and records it.
func (x *exchange) fail(e *llm.Error) {
	x.rec.HTTPStatus = e.Status
	x.rec.ErrorType = e.Type
	if e.Kind == llm.KindCanceled {
		x.rec.Status = llm.StatusClientCancelled
	} else {
		x.rec.Status = llm.StatusError
	}
	if e.Err != nil && e.Kind != llm.KindCanceled {
		x.h.opts.Logger.Warn("request failed", "request_id", x.rec.ID, "status", e.Status, "err", e.Error())
	}
	if x.req != nil && x.rec.PromptTokens == 0 && x.dep != nil {
		// Nothing came back; record the prompt size for the attempt.
		x.rec.PromptTokens = x.h.opts.Estimator.PromptTokens(x.req.body)
		x.rec.Estimated = true
		x.rec.Usage = x.rec.Usage.Sanitize(x.req.usageLimits())
	}
	x.overhead = time.Since(x.start) - x.upstream
	if x.dep != nil {
		x.setHeaders(x.w.Header(), x.dep)
	}
	writeError(x.w, e)
}

// finish records usage, metrics and the access log line.
func (x *exchange) finish() {
	h := x.h
	x.rec.Latency = time.Since(x.start)
	if x.overhead == 0 {
		x.overhead = x.rec.Latency - x.upstream
	}
	model := ""
	if x.modelOK {
		model = x.rec.Model
	}
	stream := "false"
	if x.rec.Stream {
		stream = "true"
	}
	m := h.opts.Metrics
	m.requests.WithLabelValues(string(x.ep), model, x.rec.Provider, strconv.Itoa(x.rec.HTTPStatus), stream).Inc()
	m.duration.WithLabelValues(string(x.ep), model, x.rec.Provider).Observe(x.rec.Latency.Seconds())
	m.overhead.WithLabelValues(string(x.ep)).Observe(x.overhead.Seconds())
	if x.rec.TTFT > 0 {
		m.ttft.WithLabelValues(model, x.rec.Provider).Observe(x.rec.TTFT.Seconds())
	}
	if x.rec.PromptTokens > 0 {
		m.tokens.WithLabelValues(model, x.rec.Provider, "input").Add(float64(x.rec.PromptTokens))
	}
	if x.rec.CompletionTokens > 0 {
		m.tokens.WithLabelValues(model, x.rec.Provider, "output").Add(float64(x.rec.CompletionTokens))
	}
	if x.rec.CacheReadTokens > 0 {
		m.tokens.WithLabelValues(model, x.rec.Provider, "cached_input").Add(float64(x.rec.CacheReadTokens))
	}
	if x.rec.CostMicros > 0 {
		m.cost.WithLabelValues(model, x.rec.Provider).Add(float64(x.rec.CostMicros) / 1e6)
	}
	var body []byte
	if h.opts.LogBodies && x.req != nil {
		body = x.req.body
	}
	h.opts.AccessLog.write(&x.rec, x.r.URL.Path, x.overhead, body)
	// Only authenticated requests produce usage rows: anonymous traffic
	// must not be able to fill the database.
	if x.principal != nil {
		h.opts.Usage.Record(x.rec)
	}
}

// idleWatch cancels an upstream call that stays quiet for d: every sign of
// life (reset, or a read through reader) restarts the clock.
type idleWatch struct {
	d     time.Duration
	t     *time.Timer
	fired atomic.Bool // the watch cancelled the call
}

func watchIdle(d time.Duration, cancel context.CancelFunc) *idleWatch {
	w := &idleWatch{d: d}
	w.t = time.AfterFunc(d, func() { w.fired.Store(true); cancel() })
	return w
}

func (w *idleWatch) reset() { w.t.Reset(w.d) }
func (w *idleWatch) stop()  { w.t.Stop() }

// reader returns r with every read resetting the watch.
func (w *idleWatch) reader(r io.Reader) io.Reader { return idleReader{r: r, w: w} }

type idleReader struct {
	r io.Reader
	w *idleWatch
}

func (r idleReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	r.w.reset()
	return n, err
}

// rejectsStreamOptions reports an upstream 400/422 that blames the
// stream_options the gateway added.
func rejectsStreamOptions(err error) bool {
	var e *llm.Error
	return errors.As(err, &e) && (e.Status == http.StatusBadRequest || e.Status == http.StatusUnprocessableEntity) &&
		(strings.Contains(e.Message, "stream_options") || strings.Contains(e.Param, "stream_options"))
}

func isEventStream(h http.Header) bool {
	return strings.HasPrefix(h.Get("Content-Type"), "text/event-stream")
}

func asError(err error) *llm.Error {
	var e *llm.Error
	if errors.As(err, &e) {
		return e
	}
	e = llm.Errorf(llm.KindInternal, "internal error")
	e.Err = err
	return e
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// wireUsage is OpenAI's usage object.
type wireUsage struct {
	PromptTokens        tokenCount `json:"prompt_tokens"`
	CompletionTokens    tokenCount `json:"completion_tokens"`
	PromptTokensDetails *struct {
		CachedTokens tokenCount `json:"cached_tokens"`
	} `json:"prompt_tokens_details"`
	CompletionTokensDetails *struct {
		ReasoningTokens tokenCount `json:"reasoning_tokens"`
	} `json:"completion_tokens_details"`
}

// parseUsage decodes an OpenAI usage value; ok is false when absent or null.
// The counts are as reported: setUsage sanitises them.
func parseUsage(raw []byte) (llm.Usage, bool) {
	if len(raw) == 0 || raw[0] != '{' {
		return llm.Usage{}, false
	}
	var w wireUsage
	if json.Unmarshal(raw, &w) != nil {
		return llm.Usage{}, false
	}
	u := llm.Usage{PromptTokens: int(w.PromptTokens), CompletionTokens: int(w.CompletionTokens)}
	if w.PromptTokensDetails != nil {
		u.CacheReadTokens = int(w.PromptTokensDetails.CachedTokens)
	}
	if w.CompletionTokensDetails != nil {
		u.ReasoningTokens = int(w.CompletionTokensDetails.ReasoningTokens)
	}
	return u, true
}

// chunkMembers returns the error, usage and choices values of a stream
// chunk in one scan of its top level.
func chunkMembers(b []byte) (errV, usageV, choicesV []byte) {
	_, _ = eachMember(b, func(k []byte, vs, ve int) error {
		switch string(k) {
		case "error":
			errV = b[vs:ve]
		case "usage":
			usageV = b[vs:ve]
		case "choices":
			choicesV = b[vs:ve]
		}
		return nil
	})
	return
}

// emptyChoices reports whether a choices value is absent, null or [].
func emptyChoices(raw []byte) bool {
	if len(raw) == 0 || string(raw) == "null" {
		return true
	}
	if raw[0] != '[' {
		return false
	}
	return skipWS(raw, 1) < len(raw) && raw[skipWS(raw, 1)] == ']'
}

// appendDeltaText appends the text of streamed choices (delta.content for
// chat, text for completions).
func appendDeltaText(b []byte, choices []byte) []byte {
	if len(choices) < 2 || choices[0] != '[' {
		return b
	}
	var cs []struct {
		Delta struct {
			Content string `json:"content"`
		} `json:"delta"`
		Text string `json:"text"`
	}
	if json.Unmarshal(choices, &cs) != nil {
		return b
	}
	for _, c := range cs {
		b = append(b, c.Delta.Content...)
		b = append(b, c.Text...)
	}
	return b
}

// completionText returns the generated text of a non-streamed response.
func completionText(body []byte) string {
	var r struct {
		Choices []struct {
			Message struct {
				Content string `json:"content"`
			} `json:"message"`
			Text string `json:"text"`
		} `json:"choices"`
	}
	if json.Unmarshal(body, &r) != nil {
		return ""
	}
	var sb strings.Builder
	for _, c := range r.Choices {
		sb.WriteString(c.Message.Content)
		sb.WriteString(c.Text)
	}
	return sb.String()
}

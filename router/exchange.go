package router

import (
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/sluice-ai/sluice/auth"
	"github.com/sluice-ai/sluice/llm"
	"github.com/sluice-ai/sluice/state"
)

// exchange is the state of one proxied request. It goes through its
// phases in order, each a method that returns its result:
//
//	shed → authenticate → decode → resolve → admit → attempt → finish
//
// finish runs deferred on every exit; an admitted request's Admission is
// settled exactly once, also deferred. rec is the usage record being
// built: an output, never read to decide anything.
type exchange struct {
	h         *Handler
	w         http.ResponseWriter
	rc        *http.ResponseController
	r         *http.Request
	ep        llm.Endpoint
	in        *inbound // the client's dialect
	start     time.Time
	rec       llm.Record
	principal *auth.Principal
	modelOK   bool          // rec.Model is a configured model (safe as a label)
	upstream  time.Duration // time spent waiting on upstreams
	overhead  time.Duration
	req       *request
	chat      *llm.ChatRequest  // the request in neutral form, decoded on first use
	embed     *llm.EmbedRequest // the embeddings request in neutral form, likewise
	facts     *requestFacts     // created on first use
	aff       affinity          // the prompt prefix's affinity keys (n 0: none)
	ask       Ask               // what admission was asked, for the attempts' own admissions
	wdl       bool              // a write deadline was set on the connection
	held      heldBytes         // the request body's share of h.bodies
	run       run               // the attempts, once admitted
}

func (h *Handler) relay(ep llm.Endpoint) gin.HandlerFunc {
	return func(c *gin.Context) {
		x := &exchange{h: h, w: c.Writer, r: c.Request, ep: ep, in: h.inbound[ep], start: h.opts.Now()}
		x.rc = http.NewResponseController(x.w)
		x.serve()
	}
}

// result is what the attempt phase hands back: the usage accounted for
// the request and, when no answer was delivered, the error to answer with.
type result struct {
	usage llm.Usage
	cost  int64
	err   *llm.Error      // nil once an answer (or a broken stream) was delivered
	dep   *llm.Deployment // the last deployment tried, nil when none was
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
	defer x.held.release() // the body's share of the budget, once nothing uses it
	if max := h.opts.MaxInFlight; max > 0 {
		n := h.inflight.Add(1)
		defer h.inflight.Add(-1)
		if n > max {
			x.fail(shedError(max), nil)
			return
		}
	}
	st := h.opts.State()
	p, e := x.authenticate(st)
	if e != nil {
		x.fail(e, nil)
		return
	}
	req, e := x.decode()
	if e != nil {
		x.fail(e, nil)
		return
	}
	m, e := x.resolve(st, p, req)
	if e != nil {
		x.fail(e, nil)
		return
	}
	adm, e := x.admit(st, p, m, req)
	if adm != nil {
		adm.Headers(hd) // x-ratelimit-*, on refusals too
	}
	if e != nil {
		x.fail(e, nil)
		return
	}
	var res result
	defer func() { adm.Settle(res.usage, res.cost) }()
	res = x.attempt(st, m)
	if res.err != nil {
		if res.dep != nil {
			// Nothing came back; record the prompt size of the attempt.
			res.usage = x.sanitize(llm.Usage{PromptTokens: x.promptTokens(), Estimated: true})
		}
		x.fail(res.err, res.dep)
	}
	x.rec.Usage, x.rec.CostMicros = res.usage, res.cost
}

func shedError(max int64) *llm.Error {
	// Shed load at once rather than queue: the client (or its SDK)
	// retries after a second, perhaps on another replica.
	e := llm.Errorf(llm.KindUnavailable, "the gateway is at capacity (%d requests in flight); retry shortly", max)
	e.Code, e.RetryAfter = "overloaded", time.Second
	return e
}

// authenticate identifies the caller (a Sluice key or an issuer's JWT)
// and puts the principal in the request's context (auth.PrincipalFrom).
func (x *exchange) authenticate(st *state.State) (*auth.Principal, *llm.Error) {
	p, e := st.Auth.AuthenticateHeader(x.r.Context(), st.Snapshot, x.r.Header, x.start)
	if e != nil {
		return nil, e
	}
	x.principal = p
	x.r = x.r.WithContext(auth.WithPrincipal(x.r.Context(), p))
	x.rec.KeyID, x.rec.KeyPrefix = p.KeyID, p.KeyPrefix
	x.rec.PrincipalID, x.rec.PrincipalKind, x.rec.Owner = p.ID, p.Kind, p.Owner
	x.h.opts.Metrics.principals.WithLabelValues(p.Kind).Inc()
	return p, nil
}

// decode reads and validates the body.
func (x *exchange) decode() (*request, *llm.Error) {
	// A client that trickles its body must not hold the request forever.
	_ = x.rc.SetReadDeadline(time.Now().Add(x.h.opts.BodyReadTimeout))
	x.held = heldBytes{b: &x.h.bodies}
	body, e := readBody(x.w, x.r, x.h.opts.MaxBodyBytes, &x.held)
	_ = x.rc.SetReadDeadline(time.Time{})
	if e != nil {
		return nil, e
	}
	req, e := parseRequest(body, x.in.dialect)
	if e != nil {
		return nil, e
	}
	if x.ep == llm.EndpointEmbeddings {
		req.stream = false
	}
	x.req = req
	x.rec.Stream = req.stream
	return req, nil
}

// resolve maps the requested model to its configured deployment group and
// checks the caller may use it.
func (x *exchange) resolve(st *state.State, p *auth.Principal, req *request) (*llm.Model, *llm.Error) {
	m, ok := st.Snapshot.Models[req.model]
	if !ok {
		e := llm.Errorf(llm.KindNotFound, "the model %q does not exist or you do not have access to it", truncate(req.model, 256))
		e.Param = "model"
		return nil, e
	}
	x.rec.Model, x.modelOK = m.Name, true
	if !p.Allows(m.Name) {
		who := "API key"
		if p.Kind == llm.PrincipalJWT {
			who = "token"
		}
		e := llm.Errorf(llm.KindPermissionDenied, "this %s is not allowed to use model %q", who, m.Name)
		e.Param = "model"
		return nil, e
	}
	return m, nil
}

// admit asks the Admitter for a reservation, before any upstream contact.
// A refusal may come with an Admission that only carries headers.
func (x *exchange) admit(st *state.State, p *auth.Principal, m *llm.Model, req *request) (Admission, *llm.Error) {
	if _, none := x.h.opts.Admitter.(noAdmission); none {
		return noAdmission{}, nil
	}
	x.promptFacts()
	x.ask = Ask{ID: x.rec.ID, Principal: p, Model: m, Snapshot: st.Snapshot, Endpoint: x.ep, Stream: req.stream,
		MaxTokens: req.maxTokens, Choices: req.choices, body: x.facts}
	adm, e := x.h.opts.Admitter.Admit(x.r.Context(), x.ask)
	if e == nil && adm == nil {
		adm = noAdmission{}
	}
	return adm, e
}

// promptFacts creates the request's lazily computed facts. They live
// apart from the exchange so that handing them to an Admitter does not
// move the whole exchange to the heap.
func (x *exchange) promptFacts() *requestFacts {
	if x.facts == nil {
		x.facts = &requestFacts{est: x.h.opts.Estimator, model: x.req.model, body: x.req.body}
	}
	return x.facts
}

// promptTokens is the request's prompt estimate, computed at most once.
func (x *exchange) promptTokens() int { return x.promptFacts().promptTokens() }

// estimate counts tokens locally when the upstream reported none.
func (x *exchange) estimate(completion string) llm.Usage {
	u := llm.Usage{PromptTokens: x.promptTokens(), Estimated: true}
	if x.ep != llm.EndpointEmbeddings {
		u.CompletionTokens = x.h.opts.Estimator.CountFor(x.req.model, completion)
	}
	return u
}

// sanitize bounds u by what the request could possibly use (see
// llm.Usage.Sanitize).
func (x *exchange) sanitize(u llm.Usage) llm.Usage {
	return u.Sanitize(x.req.usageLimits())
}

// setHeaders names, before the answer's first byte, the deployment that
// answered (or failed last), the attempts made and, when a fallback model
// answered, that model.
func (x *exchange) setHeaders(hd http.Header, d *llm.Deployment) {
	hd["X-Sluice-Provider"] = []string{d.Provider}
	hd["X-Sluice-Deployment"] = []string{d.ID}
	if x.rec.Attempts > 0 {
		hd["X-Sluice-Attempts"] = []string{strconv.Itoa(x.rec.Attempts)}
	}
	if x.rec.ServedModel != "" {
		hd["X-Sluice-Model"] = []string{x.rec.ServedModel}
	}
	hd["X-Sluice-Overhead-Ms"] = []string{strconv.FormatFloat(ms(x.overhead), 'f', 3, 64)}
}

// writeDeadline bounds the next write to the client, so a client that
// stops reading frees its request; finish clears it for the connection's
// next request.
func (x *exchange) writeDeadline() {
	_ = x.rc.SetWriteDeadline(time.Now().Add(x.h.opts.WriteTimeout))
	x.wdl = true
}

// fail answers with e (nothing was written yet) and records it. d is the
// deployment last tried, nil when no upstream was contacted.
func (x *exchange) fail(e *llm.Error, d *llm.Deployment) {
	x.rec.HTTPStatus = e.Status
	x.rec.ErrorType = e.Type
	if e.UpstreamStatus != 0 {
		x.rec.UpstreamStatus = e.UpstreamStatus
	}
	if e.Kind == llm.KindCanceled {
		x.rec.Status = llm.StatusClientCancelled
	} else {
		x.rec.Status = llm.StatusError
	}
	if e.Err != nil && e.Kind != llm.KindCanceled {
		x.h.opts.Logger.Warn("request failed", "request_id", x.rec.ID, "status", e.Status, "err", e.Error())
	}
	x.overhead = time.Since(x.start) - x.upstream
	if d != nil {
		x.setHeaders(x.w.Header(), d)
	}
	x.writeDeadline()
	writeErrorIn(x.w, e, x.in.appendError)
}

// finish records usage, metrics and the access log line.
func (x *exchange) finish() {
	h := x.h
	if x.wdl {
		_ = x.rc.SetWriteDeadline(time.Time{})
	}
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

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

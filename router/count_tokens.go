package router

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/sluice-ai/sluice/llm"
	"github.com/sluice-ai/sluice/providers"
)

// tokenCounter is implemented by providers that count a Messages
// request's input tokens themselves (Anthropic's count_tokens).
type tokenCounter interface {
	CountTokens(ctx context.Context, body []byte) (*providers.Response, error)
}

// maxCountAnswer bounds a count_tokens answer read from an upstream.
const maxCountAnswer = 64 << 10

// countTokens serves POST /v1/messages/count_tokens: the caller is
// authenticated and the model resolved as for a message; a model whose
// first deployment is on a provider that counts natively is asked (the
// answer relayed as it is), every other one is estimated locally with
// the gateway's tokenizer. Nothing is generated, so no usage is recorded
// and no quota taken.
func (h *Handler) countTokens(c *gin.Context) {
	x := &exchange{h: h, w: c.Writer, r: c.Request, ep: llm.EndpointMessages, in: h.inbound[llm.EndpointMessages], start: h.opts.Now()}
	x.rc = http.NewResponseController(x.w)
	defer x.held.release()
	defer func() {
		if x.wdl { // the connection's next request starts unbounded
			_ = x.rc.SetWriteDeadline(time.Time{})
		}
	}()
	fail := func(e *llm.Error) {
		x.writeDeadline()
		writeErrorIn(x.w, e, x.in.appendError)
	}
	st := h.opts.State()
	p, e := x.authenticate(st)
	if e != nil {
		fail(e)
		return
	}
	req, e := x.decode()
	if e != nil {
		fail(e)
		return
	}
	m, e := x.resolve(st, p, req)
	if e != nil {
		fail(e)
		return
	}
	if len(m.Deployments) > 0 {
		d := &m.Deployments[0]
		if prov, ok := st.Providers.Get(d.Provider); ok && prov.Native(llm.DialectAnthropicMessages) {
			if tc, ok := prov.(tokenCounter); ok {
				x.relayCount(tc, prov, d, req)
				return
			}
		}
	}
	n := x.promptTokens()
	x.writeDeadline()
	writeJSON(x.w, http.StatusOK, []byte(`{"input_tokens":`+strconv.Itoa(n)+`}`))
}

// relayCount asks the provider to count and relays its answer.
func (x *exchange) relayCount(tc tokenCounter, prov providers.Provider, d *llm.Deployment, req *request) {
	to := timeoutsOf(prov)
	ctx, cancel := context.WithTimeout(x.r.Context(), to.FirstByte)
	defer cancel()
	resp, err := tc.CountTokens(ctx, req.upstreamBody(d.Model))
	if err != nil {
		x.writeDeadline()
		writeErrorIn(x.w, asError(err), x.in.appendError)
		return
	}
	defer resp.Body.Close()
	body, err := readAllLimited(resp.Body, resp.Header, maxCountAnswer)
	if err != nil {
		e := llm.Errorf(llm.KindUpstream, "upstream %s sent an incomplete response", d.Provider)
		e.Err = err
		x.writeDeadline()
		writeErrorIn(x.w, e, x.in.appendError)
		return
	}
	if red, ok := prov.(wholeRedactor); ok {
		body = red.RedactWhole(nil, body)
	}
	x.setHeaders(x.w.Header(), d)
	x.writeDeadline()
	writeJSON(x.w, resp.Status, body)
}

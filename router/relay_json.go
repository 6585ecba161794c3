package router

import (
	"errors"
	"net/http"
	"time"

	"github.com/sluice-ai/sluice/llm"
	"github.com/sluice-ai/sluice/providers"

	"github.com/sluice-ai/sluice/wire/jsonspan"
)

// maxResponseBytes bounds a non-streamed upstream body.
const maxResponseBytes = 64 << 20

// json relays a non-streamed answer: read whole (bounded in size, in idle
// gaps and in total time by the idle watch's deadline), validated, then
// written under a write deadline. limit is that time, for the message. A 2xx body
// with an error member is the attempt's error (see inbandError), not an answer.
func (x *exchange) json(resp *providers.Response, prov providers.Provider, d *llm.Deployment, idle *idleWatch, limit time.Duration) tryResult {
	body, tr, ok := x.readJSON(resp, d, idle, limit)
	if !ok {
		return tr
	}
	errV, usageV, _, _ := chunkMembers(body)
	if providers.IsErrorValue(errV) {
		// A 2xx carrying an error object (some OpenAI-compatible servers
		// answer so): the error it is, nothing was sent to the client, so
		// it is retried or answered as an upstream error status would be.
		red, _ := prov.(providers.Redactor)
		return tryResult{err: providers.InbandError(d.Provider, errV, resp.Status, red)}
	}
	if red, ok := prov.(wholeRedactor); ok {
		// An upstream that echoes the key it was sent (a debugging
		// proxy, a hostile server): never to the client.
		body = red.RedactWhole(nil, body)
		_, usageV, _, _ = chunkMembers(body)
	}
	var u llm.Usage
	if x.in.bodyUsage != nil {
		u, ok = x.in.bodyUsage(body)
		if !ok {
			u = x.estimate(x.in.bodyText(body))
		}
	} else if u, ok = parseUsage(usageV); !ok {
		u = x.estimate(completionText(body))
	}
	x.writeJSONAnswer(resp.Status, body, d)
	return tryResult{delivered: true, usage: u}
}

// writeJSONAnswer writes a whole answer under the write deadline.
func (x *exchange) writeJSONAnswer(status int, body []byte, d *llm.Deployment) {
	x.overhead = time.Since(x.start) - x.upstream
	hd := x.w.Header()
	hd["Content-Type"] = []string{"application/json"}
	x.setHeaders(hd, d)
	x.writeDeadline()
	x.w.WriteHeader(status)
	x.rec.HTTPStatus = status
	if _, err := x.w.Write(body); err != nil {
		x.rec.Status = llm.StatusClientCancelled
	}
}

// readJSON reads a whole non-streamed upstream body: bounded in size, in
// idle gaps and in total time (the idle watch's deadline, limit), and
// checked to be one JSON value. ok is false when it failed; tr then says how.
func (x *exchange) readJSON(resp *providers.Response, d *llm.Deployment, idle *idleWatch, limit time.Duration) (body []byte, tr tryResult, ok bool) {
	t0 := time.Now()
	body, err := readAllLimited(idle.reader(resp.Body), resp.Header, maxResponseBytes)
	idle.stop()
	x.upstream += time.Since(t0)
	if err != nil {
		var e *llm.Error
		switch {
		case x.r.Context().Err() != nil:
			return nil, tryResult{err: errClientGone()}, false
		case idle.fired.Load():
			e = llm.Errorf(llm.KindTimeout, "upstream %s stalled while sending its response", d.Provider)
		case idle.expired.Load():
			// The upstream accepted the request and was generating (its
			// headers came): another deployment would be paid to start
			// over and the client would wait as long again. A failure
			// for health, but final.
			e = llm.Errorf(llm.KindTimeout, "upstream %s did not complete its response within %s", d.Provider, limit)
			e.Err, e.UpstreamStatus = err, resp.Status
			return nil, tryResult{err: e, final: true}, false
		case errors.As(err, new(*http.MaxBytesError)):
			// As large as the request asked (thousands of embeddings of
			// thousands of dimensions): another deployment would answer
			// the same, and the client must not be able to eject
			// deployments, or pay for each, by asking. Neither retried
			// nor held against the deployment (no UpstreamStatus: the
			// record keeps the status sent).
			e = llm.Errorf(llm.KindTooLarge, "upstream %s answered with more than %d MiB; ask for less (fewer inputs or dimensions) or stream", d.Provider, maxResponseBytes>>20)
			e.Status, e.Type, e.Code, e.Err = http.StatusBadGateway, "upstream_error", "upstream_response_too_large", err
			return nil, tryResult{err: e}, false
		default:
			e = llm.Errorf(llm.KindUpstream, "upstream %s sent an incomplete response", d.Provider)
		}
		e.Err, e.UpstreamStatus = err, resp.Status
		return nil, tryResult{err: e}, false
	}
	if i := jsonspan.SkipWS(body, 0); i >= len(body) || (body[i] != '{' && body[i] != '[') || !jsonspan.Valid(body) {
		// Truncated JSON, or an HTML page from a proxy in front of the
		// provider: never a 200 for the client.
		e := llm.Errorf(llm.KindUpstream, "upstream %s returned a response that is not valid JSON", d.Provider)
		e.Code, e.UpstreamStatus = "invalid_upstream_response", resp.Status
		return nil, tryResult{err: e}, false
	}
	return body, tryResult{}, true
}

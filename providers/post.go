package providers

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/sluice-ai/sluice/llm"
)

// upstream is what every provider family shares to reach its API: the
// provider's name, its HTTP client, the redactor of its credentials, the
// static headers it sends (credentials, options, the operator's) and the
// idle timeout that bounds reading an error body.
type upstream struct {
	name    string
	headers [][2]string // canonical name, value
	red     *redactor   // nil when the provider has no credentials
	idle    time.Duration
	client  *Client
}

func newUpstream(p *llm.Provider, c *Client) upstream {
	return upstream{name: p.Name, client: c, red: newRedactor(providerSecrets(p)), idle: p.Timeouts.WithDefaults().Idle}
}

// Redact implements Redactor: it removes the provider's API key, secrets
// and credential-like header values (and their fragments) from b.
func (u *upstream) Redact(dst, b []byte) []byte {
	if u.red == nil {
		return b
	}
	return u.red.Redact(dst, b)
}

// RedactWhole removes whole echoes of the provider's credentials from b,
// an upstream's answer, leaving fragments that may be ordinary content.
// Like Redact it returns b itself when nothing matches.
func (u *upstream) RedactWhole(dst, b []byte) []byte { return u.red.RedactWhole(dst, b) }

// Timeouts returns the provider's timeouts (defaults filled in): the
// router bounds idle gaps in a body with Idle and a whole non-streamed call
// with FirstByte.
func (u *upstream) Timeouts() llm.Timeouts { return u.client.Timeouts() }

// Accept header values.
const (
	acceptJSON = "application/json"
	acceptSSE  = "text/event-stream"
)

// acceptFor is the Accept header of a call that streams or not.
func acceptFor(stream bool) string {
	if stream {
		return acceptSSE
	}
	return acceptJSON
}

// request is one upstream call.
type request struct {
	// method is POST when empty; a GET (a probe of the model list) sends
	// no body and no Content-Type.
	method    string
	url       string
	body      []byte
	accept    string
	requestID string
	// sign, when set, adds per-call credentials after the static headers
	// (a SigV4 signature over the body, a fresh access token). It returns
	// a credential to redact from the error fields ("" for none).
	sign func(ctx context.Context, req *http.Request, body []byte) (string, error)
}

// do sends r with a POST (or r.method). It returns the 2xx answer, or the error:
// transport failures classified, error statuses mapped by upstreamError —
// then resp is returned too, its body closed, for a family to refine the
// mapping from its headers. No field of any error holds the provider's
// credentials. It calls RoundTrip straight on the transport: http.Client
// would clone the headers for redirects, which provider calls never follow.
func (u *upstream) do(ctx context.Context, r request) (*http.Response, *llm.Error) {
	method := r.method
	if method == "" {
		method = http.MethodPost
	}
	req, err := http.NewRequestWithContext(ctx, method, r.url, bytes.NewReader(r.body))
	if err != nil {
		e := llm.Errorf(llm.KindInternal, "cannot build upstream request")
		e.Err = u.red.redactErr(err)
		return nil, e
	}
	h := req.Header
	if method == http.MethodPost {
		h["Content-Type"] = []string{"application/json"}
	}
	h["Accept"] = []string{r.accept}
	if r.requestID != "" {
		h["X-Request-Id"] = []string{r.requestID}
	}
	for _, kv := range u.headers {
		h[kv[0]] = []string{kv[1]}
	}
	token := ""
	if r.sign != nil {
		if token, err = r.sign(ctx, req, r.body); err != nil {
			if e, ok := err.(*llm.Error); ok {
				return nil, e
			}
			e := llm.Errorf(llm.KindInternal, "cannot sign upstream request")
			e.Err = u.red.redactErr(err)
			return nil, e
		}
	}
	resp, err := u.client.tr.RoundTrip(req)
	if err != nil {
		return nil, classify(ctx, u.name, u.red.redactErr(err))
	}
	if resp.StatusCode >= 200 && resp.StatusCode <= 299 {
		return resp, nil
	}
	defer resp.Body.Close()
	e := upstreamError(u.name, resp, u.red, min(u.idle, errorBodyTimeout), time.Now())
	if token != "" {
		// A short-lived credential the redactor does not know.
		for _, f := range []*string{&e.Message, &e.Type, &e.Param, &e.Code} {
			*f = strings.ReplaceAll(*f, token, redacted)
		}
	}
	return resp, e
}

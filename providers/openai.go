package providers

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-ai/sluice/llm"
)

// DefaultOpenAIBaseURL is used when an openai provider has no base_url.
const DefaultOpenAIBaseURL = "https://api.openai.com/v1"

// maxErrorBody bounds how much of an upstream error body is read.
const maxErrorBody = 64 << 10

// OpenAI talks to OpenAI and every server that speaks its wire format. The
// request body is forwarded untouched; the response is passed through.
type OpenAI struct {
	name    string
	base    string // without trailing slash
	auth    string // "Bearer <key>", or "" when no key is configured
	secret  string // the raw key, only to redact upstream echoes
	headers [][2]string
	client  *Client
}

// NewOpenAI builds an OpenAI-format provider.
func NewOpenAI(p *llm.Provider, c *Client) (Provider, error) {
	base := strings.TrimRight(p.BaseURL, "/")
	if base == "" {
		if p.Type != llm.ProviderOpenAI {
			return nil, fmt.Errorf("base_url is required for type %s", p.Type)
		}
		base = DefaultOpenAIBaseURL
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("base_url must be an absolute http(s) URL")
	}
	o := &OpenAI{name: p.Name, base: base, secret: p.APIKey, client: c}
	if p.APIKey != "" {
		o.auth = "Bearer " + p.APIKey
	}
	for k, v := range p.Headers {
		if strings.ContainsAny(k, "\r\n\x00:") || strings.ContainsAny(v, "\r\n\x00") {
			return nil, fmt.Errorf("header %q has a forbidden character", k)
		}
		o.headers = append(o.headers, [2]string{http.CanonicalHeaderKey(k), v})
	}
	return o, nil
}

// Do implements Provider.
func (o *OpenAI) Do(ctx context.Context, call *Call) (*Response, error) {
	path := call.Endpoint.Path()
	if path == "" {
		return nil, llm.Errorf(llm.KindInvalidRequest, "endpoint %q is not supported by provider %s", call.Endpoint, o.name)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, o.base+path, bytes.NewReader(call.Body))
	if err != nil {
		e := llm.Errorf(llm.KindInternal, "cannot build upstream request")
		e.Err = err
		return nil, e
	}
	h := req.Header
	h["Content-Type"] = []string{"application/json"}
	if call.Stream {
		h["Accept"] = []string{"text/event-stream"}
	} else {
		h["Accept"] = []string{"application/json"}
	}
	if o.auth != "" {
		h["Authorization"] = []string{o.auth}
	}
	if call.RequestID != "" {
		h["X-Request-Id"] = []string{call.RequestID}
	}
	for _, kv := range o.headers {
		h[kv[0]] = []string{kv[1]}
	}
	// RoundTrip straight on the transport: http.Client would clone the
	// headers for redirects, which provider calls never follow.
	resp, err := o.client.tr.RoundTrip(req)
	if err != nil {
		return nil, classify(ctx, o.name, o.redactErr(err))
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		defer resp.Body.Close()
		return nil, o.upstreamError(resp)
	}
	return &Response{Status: resp.StatusCode, Header: resp.Header, Body: resp.Body}, nil
}

// Timeouts returns the provider's timeouts (defaults filled in): the
// router bounds idle gaps in a body with Idle and a whole non-streamed call
// with FirstByte.
func (o *OpenAI) Timeouts() llm.Timeouts { return o.client.Timeouts() }

// upstreamError maps an upstream error response to a gateway error. The
// status is kept (429 with its Retry-After) except for 401 and 403, which
// mean the provider rejected the gateway's credentials: the client's own
// credentials were fine, so that is a bad gateway, not a client auth error.
func (o *OpenAI) upstreamError(resp *http.Response) *llm.Error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	e := &llm.Error{Kind: llm.KindUpstream, Status: resp.StatusCode, UpstreamStatus: resp.StatusCode, Provider: o.name}
	var env struct {
		Error json.RawMessage `json:"error"`
		// Some OpenAI-compatible servers answer {"message":...} or {"detail":...}.
		Message string `json:"message"`
		Detail  any    `json:"detail"`
	}
	if json.Unmarshal(body, &env) == nil {
		var fields struct {
			Message string `json:"message"`
			Type    string `json:"type"`
			Param   any    `json:"param"`
			Code    any    `json:"code"`
		}
		if len(env.Error) > 0 && env.Error[0] == '{' && json.Unmarshal(env.Error, &fields) == nil {
			e.Message, e.Type = fields.Message, fields.Type
			e.Param = scalarString(fields.Param)
			e.Code = scalarString(fields.Code)
		} else if len(env.Error) > 0 && env.Error[0] == '"' {
			_ = json.Unmarshal(env.Error, &e.Message)
		} else if env.Message != "" {
			e.Message = env.Message
		} else if s, ok := env.Detail.(string); ok {
			e.Message = s
		}
	}
	if e.Message == "" {
		e.Message = fmt.Sprintf("upstream %s returned HTTP %d", o.name, resp.StatusCode)
	}
	e.Message = o.redact(e.Message)
	switch resp.StatusCode {
	case http.StatusUnauthorized, http.StatusForbidden:
		e.Status = http.StatusBadGateway
		e.Type, e.Code = "upstream_error", "upstream_auth_failed"
		e.Message = fmt.Sprintf("upstream %s rejected the gateway's provider credentials (HTTP %d)", o.name, resp.StatusCode)
	case http.StatusTooManyRequests:
		if e.Type == "" {
			e.Type = "rate_limit_error"
		}
		e.RetryAfter = parseRetryAfter(resp.Header)
	}
	if e.Type == "" {
		if resp.StatusCode >= 500 {
			e.Type = "upstream_error"
		} else {
			e.Type = "invalid_request_error"
		}
	}
	return e
}

// redact removes the provider key (and any long fragment of it) from s.
func (o *OpenAI) redact(s string) string {
	return Redact(s, o.secret)
}

func (o *OpenAI) redactErr(err error) error {
	if o.secret == "" || !strings.Contains(err.Error(), o.secret) {
		return err
	}
	return fmt.Errorf("%s", o.redact(err.Error()))
}

// Redact replaces every occurrence of secret in s, and of any 8-character
// fragment of it, with "[redacted]". Upstreams sometimes echo part of a key
// ("Incorrect API key provided: sk-abc…xyz").
func Redact(s, secret string) string {
	if secret == "" || s == "" {
		return s
	}
	s = strings.ReplaceAll(s, secret, "[redacted]")
	const frag = 8
	if len(secret) < frag {
		return s
	}
	for i := 0; i+frag <= len(secret); i++ {
		f := secret[i : i+frag]
		if strings.Contains(s, f) {
			s = strings.ReplaceAll(s, f, "[redacted]")
		}
	}
	return s
}

func scalarString(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(x)
	}
	return ""
}

// parseRetryAfter reads retry-after-ms or Retry-After (seconds or an HTTP date).
func parseRetryAfter(h http.Header) time.Duration {
	if v := h.Get("Retry-After-Ms"); v != "" {
		if ms, err := strconv.ParseFloat(v, 64); err == nil && ms > 0 {
			return time.Duration(ms * float64(time.Millisecond))
		}
	}
	v := h.Get("Retry-After")
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseFloat(v, 64); err == nil {
		if s <= 0 {
			return 0
		}
		return time.Duration(s * float64(time.Second))
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := time.Until(t); d > 0 {
			return d
		}
	}
	return 0
}

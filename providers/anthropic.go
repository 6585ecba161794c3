package providers

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/sluice-ai/sluice/llm"
	"github.com/sluice-ai/sluice/wire/anthropic"
)

// DefaultAnthropicBaseURL is used when an anthropic provider has no
// base_url: the bare origin; requests go to base + "/v1/messages".
const DefaultAnthropicBaseURL = "https://api.anthropic.com"

// DefaultAnthropicVersion is the anthropic-version header sent when the
// options set none.
const DefaultAnthropicVersion = "2023-06-01"

// anthropicOptions are the options of the anthropic family.
type anthropicOptions struct {
	// AnthropicVersion is sent as anthropic-version.
	AnthropicVersion string `json:"anthropic_version,omitempty"`
	// Beta values are sent, comma-joined, as anthropic-beta.
	Beta []string `json:"beta,omitempty"`
}

// validateAnthropic checks the options and secrets of the anthropic
// family: anthropic_version and beta header values, no secrets beyond
// api_key.
func validateAnthropic(p *llm.Provider) error {
	var o anthropicOptions
	if err := decodeOptions(p, &o); err != nil {
		return err
	}
	if len(o.AnthropicVersion) > 64 || !validHeaderValue(o.AnthropicVersion) || strings.Contains(o.AnthropicVersion, ",") {
		return invalid("options.anthropic_version", "must be at most 64 characters without control characters or commas")
	}
	if len(o.Beta) > 32 {
		return invalid("options.beta", "must hold at most 32 values")
	}
	for _, b := range o.Beta {
		if b == "" || len(b) > 128 || !validHeaderValue(b) || strings.ContainsAny(b, ", ") {
			return invalid("options.beta", "values must be 1 to 128 characters without control characters, spaces or commas")
		}
	}
	return noSecrets(p)
}

// Anthropic talks to Anthropic's Messages API: Messages requests as they
// are (the raw lane), other chat dialects translated through the neutral
// form (wire/anthropic).
type Anthropic struct {
	name     string
	messages string      // base + "/v1/messages"
	headers  [][2]string // canonical name, value: auth, version, beta, static headers
	red      *redactor
	idle     time.Duration
	client   *Client
}

// NewAnthropic builds an anthropic provider from a validated configuration.
func NewAnthropic(p *llm.Provider, c *Client) (Provider, error) {
	var opts anthropicOptions
	if len(p.Options) > 0 && string(p.Options) != "null" {
		if err := json.Unmarshal(p.Options, &opts); err != nil {
			return nil, invalid("options", "is not valid")
		}
	}
	base := strings.TrimRight(p.BaseURL, "/")
	base = strings.TrimSuffix(base, "/v1") // tolerate a base URL given with the version path
	a := &Anthropic{name: p.Name, messages: base + "/v1/messages", client: c,
		red: newRedactor(providerSecrets(p)), idle: p.Timeouts.WithDefaults().Idle}
	if p.APIKey != "" {
		a.headers = append(a.headers, [2]string{"X-Api-Key", p.APIKey})
	}
	v := opts.AnthropicVersion
	if v == "" {
		v = DefaultAnthropicVersion
	}
	a.headers = append(a.headers, [2]string{"Anthropic-Version", v})
	if len(opts.Beta) > 0 {
		a.headers = append(a.headers, [2]string{"Anthropic-Beta", strings.Join(opts.Beta, ",")})
	}
	for k, v := range p.Headers {
		a.headers = append(a.headers, [2]string{http.CanonicalHeaderKey(k), v})
	}
	return a, nil
}

// Redact implements Redactor.
func (a *Anthropic) Redact(dst, b []byte) []byte {
	if a.red == nil {
		return b
	}
	return a.red.Redact(dst, b)
}

// RedactWhole removes whole echoes of the provider's credentials from b
// (see OpenAI.RedactWhole).
func (a *Anthropic) RedactWhole(dst, b []byte) []byte { return a.red.RedactWhole(dst, b) }

// Timeouts returns the provider's timeouts, defaults filled in.
func (a *Anthropic) Timeouts() llm.Timeouts { return a.client.Timeouts() }

// Native implements Provider: Messages requests go as they are.
func (a *Anthropic) Native(d llm.Dialect) bool { return d == llm.DialectAnthropicMessages }

// Do implements Provider.
func (a *Anthropic) Do(ctx context.Context, call *Call) (*Response, error) {
	if !call.Translated() {
		if call.Endpoint != llm.EndpointMessages {
			return nil, llm.Errorf(llm.KindInvalidRequest, "endpoint %q is not supported by provider %s", call.Endpoint, a.name)
		}
		return a.send(ctx, a.messages, call.Stream, call.RequestID, call.Body)
	}
	if call.Chat == nil {
		return nil, llm.Errorf(llm.KindInvalidRequest, "provider %s (anthropic) serves chat only, not %s", a.name, call.Endpoint)
	}
	req := call.Chat
	if req.Stream != call.Stream {
		cp := *req
		cp.Stream = call.Stream
		req = &cp
	}
	body, e := anthropic.AppendRequest(make([]byte, 0, 1024), req)
	if e != nil {
		e.Provider = a.name
		return nil, e
	}
	resp, err := a.send(ctx, a.messages, call.Stream, call.RequestID, body)
	if err != nil {
		return nil, err
	}
	resp.Decoder = newDecoder(codec{chat: anthropic.DecodeResponse, stream: anthropic.NewStreamDecoder}, a.name, a.red, resp.Status)
	return resp, nil
}

// CountTokens posts a Messages count_tokens request (body as the client
// sent it, model already set) to /v1/messages/count_tokens; the answer is
// {"input_tokens":N}.
func (a *Anthropic) CountTokens(ctx context.Context, body []byte) (*Response, error) {
	return a.send(ctx, a.messages+"/count_tokens", false, "", body)
}

func (a *Anthropic) send(ctx context.Context, url string, stream bool, requestID string, body []byte) (*Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		e := llm.Errorf(llm.KindInternal, "cannot build upstream request")
		e.Err = a.red.redactErr(err)
		return nil, e
	}
	h := req.Header
	h["Content-Type"] = []string{"application/json"}
	if stream {
		h["Accept"] = []string{"text/event-stream"}
	} else {
		h["Accept"] = []string{"application/json"}
	}
	if requestID != "" {
		h["X-Request-Id"] = []string{requestID}
	}
	for _, kv := range a.headers {
		h[kv[0]] = []string{kv[1]}
	}
	resp, err := a.client.tr.RoundTrip(req)
	if err != nil {
		return nil, classify(ctx, a.name, a.red.redactErr(err))
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		defer resp.Body.Close()
		return nil, upstreamError(a.name, resp, a.red, min(a.idle, errorBodyTimeout), time.Now())
	}
	return &Response{Status: resp.StatusCode, Header: resp.Header, Body: resp.Body}, nil
}

package providers

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"

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
	upstream        // headers: auth, version, beta, static headers
	messages string // base + "/v1/messages"
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
	a := &Anthropic{upstream: newUpstream(p, c), messages: base + "/v1/messages"}
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
	resp, e := a.do(ctx, request{url: url, body: body, accept: acceptFor(stream), requestID: requestID})
	if e != nil {
		return nil, e
	}
	return &Response{Status: resp.StatusCode, Header: resp.Header, Body: resp.Body}, nil
}

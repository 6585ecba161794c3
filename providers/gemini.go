package providers

import (
	"context"
	"net/http"
	"net/url"
	"strings"

	"github.com/sluice-ai/sluice/llm"
	"github.com/sluice-ai/sluice/wire/gemini"
)

// DefaultGeminiBaseURL is used when a gemini provider has no base_url.
const DefaultGeminiBaseURL = "https://generativelanguage.googleapis.com"

// geminiOptions are the options of the gemini family.
type geminiOptions struct {
	// APIVersion is the path's version segment: "v1beta" (default) or "v1".
	APIVersion string `json:"api_version,omitempty"`
}

// validateGemini checks the gemini family: api_key required, api_version
// v1beta or v1, no other secrets.
func validateGemini(p *llm.Provider) error {
	var o geminiOptions
	if err := decodeOptions(p, &o); err != nil {
		return err
	}
	switch o.APIVersion {
	case "", "v1beta", "v1", "v1alpha":
	default:
		return invalid("options.api_version", "must be v1beta, v1 or v1alpha")
	}
	if p.APIKey == "" {
		return invalid("api_key", "is required for type gemini")
	}
	return noSecrets(p)
}

// Gemini talks to Google's Gemini API. Clients never speak Gemini, so
// every call is translated (Native is always false): the neutral request
// becomes a generateContent body, the answer is decoded by wire/gemini.
// The key goes in the x-goog-api-key header, never in the URL (where
// proxies and logs would keep it).
type Gemini struct {
	g googleCore
	// prefix is base_url + "/" + api_version + "/models/".
	prefix string
}

// NewGemini builds a gemini provider from a validated configuration.
func NewGemini(p *llm.Provider, c *Client) (Provider, error) {
	var o geminiOptions
	if err := decodeOptions(p, &o); err != nil {
		return nil, err
	}
	if o.APIVersion == "" {
		o.APIVersion = "v1beta"
	}
	g := &Gemini{g: newGoogleCore(p, c, providerSecrets(p)), prefix: strings.TrimRight(p.BaseURL, "/") + "/" + o.APIVersion + "/models/"}
	g.g.headers = append(g.g.headers, [2]string{"X-Goog-Api-Key", p.APIKey})
	return g, nil
}

// Native implements Provider: never.
func (g *Gemini) Native(llm.Dialect) bool { return false }

// Redact implements Redactor.
func (g *Gemini) Redact(dst, b []byte) []byte { return g.g.red.Redact(dst, b) }

// RedactWhole removes whole echoes of the provider's credentials from b.
func (g *Gemini) RedactWhole(dst, b []byte) []byte { return g.g.red.RedactWhole(dst, b) }

// Timeouts returns the provider's timeouts, defaults filled in.
func (g *Gemini) Timeouts() llm.Timeouts { return g.g.client.Timeouts() }

// Do implements Provider.
func (g *Gemini) Do(ctx context.Context, call *Call) (*Response, error) {
	return g.g.translated(ctx, call, func(model, method string) (string, error) {
		return g.prefix + modelPath(model) + ":" + method, nil
	}, nil)
}

// modelPath escapes a model name for the URL path; "models/x" is x.
func modelPath(model string) string {
	return url.PathEscape(strings.TrimPrefix(model, "models/"))
}

// googleCore is what the gemini and vertex providers share: translation
// through wire/gemini, the transport, the redactor and error mapping.
type googleCore struct {
	upstream // headers: the static ones
	// predictEmbed is set for Vertex AI, whose embedding models take
	// :predict, not batchEmbedContents.
	predictEmbed bool
}

func newGoogleCore(p *llm.Provider, c *Client, secrets []string) googleCore {
	g := googleCore{upstream: upstream{name: p.Name, red: newRedactor(secrets), client: c, idle: p.Timeouts.WithDefaults().Idle}}
	for k, v := range p.Headers {
		g.headers = append(g.headers, [2]string{http.CanonicalHeaderKey(k), v})
	}
	return g
}

// translated sends a translated call. url returns the endpoint for a model and a
// method (generateContent, streamGenerateContent?alt=sse,
// batchEmbedContents); auth, when set, adds the Authorization header (and
// returns the token, redacted from errors).
func (g *googleCore) translated(ctx context.Context, call *Call, endpoint func(model, method string) (string, error),
	auth func(ctx context.Context, h http.Header) (string, error)) (*Response, error) {
	if !call.Translated() {
		return nil, llm.Errorf(llm.KindInvalidRequest, "provider %s takes only translated requests", g.name)
	}
	var (
		body   []byte
		model  string
		method string
		lerr   *llm.Error
	)
	switch {
	case call.Chat != nil:
		chat, ferr := FetchImages(ctx, g.client.Images(), call.Chat)
		if ferr != nil {
			return nil, ferr
		}
		model = chat.Model
		if call.Model != "" {
			model = call.Model
		}
		body, lerr = gemini.AppendRequest(nil, chat)
		method = "generateContent"
		if call.Stream {
			method = "streamGenerateContent?alt=sse"
		}
	case call.Embed != nil:
		model = call.Embed.Model
		if call.Model != "" {
			model = call.Model
		}
		if g.predictEmbed {
			body, lerr = gemini.AppendPredictEmbedRequest(nil, call.Embed)
			method = "predict"
		} else {
			body, lerr = gemini.AppendEmbedRequest(nil, model, call.Embed)
			method = "batchEmbedContents"
		}
	default:
		return nil, llm.Errorf(llm.KindInvalidRequest, "endpoint %q is not supported by provider %s", call.Endpoint, g.name)
	}
	if lerr != nil {
		return nil, lerr
	}
	if model == "" {
		return nil, llm.Errorf(llm.KindInvalidRequest, "no upstream model for provider %s", g.name)
	}
	u, err := endpoint(model, method)
	if err != nil {
		return nil, err
	}
	out, err := g.send(ctx, u, call.Stream, call.RequestID, body, auth)
	if err != nil {
		return nil, err
	}
	c := codec{chat: gemini.DecodeResponse, stream: gemini.NewStreamDecoder, embed: gemini.DecodeEmbedResponse}
	if call.Embed != nil {
		m := model
		dec := gemini.DecodeEmbedResponse
		if g.predictEmbed {
			dec = gemini.DecodePredictEmbedResponse
		}
		c.embed = func(b []byte) (*llm.EmbedResponse, *llm.Error) {
			r, e := dec(b)
			if e == nil {
				r.Model = m
			}
			return r, e
		}
	}
	out.Decoder = newDecoder(c, g.name, g.red, out.Status)
	return out, nil
}

// send posts body to u and returns the 2xx answer, or the upstream's
// error mapped (Google's bad-key 400 as a credential failure, the access
// token redacted).
func (g *googleCore) send(ctx context.Context, u string, stream bool, requestID string, body []byte,
	auth func(ctx context.Context, h http.Header) (string, error)) (*Response, error) {
	r := request{url: u, body: body, accept: acceptFor(stream), requestID: requestID}
	if auth != nil {
		r.sign = func(ctx context.Context, req *http.Request, _ []byte) (string, error) { return auth(ctx, req.Header) }
	}
	resp, e := g.do(ctx, r)
	if e != nil {
		if resp != nil && e.UpstreamStatus == http.StatusBadRequest && (e.Code == "API_KEY_INVALID" || strings.Contains(e.Message, "API key not valid") || strings.Contains(e.Message, "API key expired")) {
			// Google answers 400 INVALID_ARGUMENT to a bad key: the
			// gateway's credentials, not the client's request.
			e.Status, e.Type, e.Code, e.Param = http.StatusBadGateway, "upstream_error", "upstream_auth_failed", ""
			e.Message = "upstream " + g.name + " rejected the gateway's provider credentials (HTTP 400)"
		}
		return nil, e
	}
	return &Response{Status: resp.StatusCode, Header: resp.Header, Body: resp.Body}, nil
}

package providers

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/sluice-ai/sluice/llm"
	"github.com/sluice-ai/sluice/wire/anthropic"
	"github.com/sluice-ai/sluice/wire/jsonspan"
)

// DefaultVertexBaseURL is the global Vertex AI origin. A vertex provider
// whose base_url is unset (or this) calls its location's regional origin,
// https://{location}-aiplatform.googleapis.com, except for location
// "global"; any other base_url is used as the origin.
const DefaultVertexBaseURL = "https://aiplatform.googleapis.com"

// vertexOptions are the options of the vertex family.
type vertexOptions struct {
	Project  string `json:"project"`
	Location string `json:"location"`
	// Publisher is "google" (default): Gemini models, or "anthropic":
	// Claude models through rawPredict with Anthropic's Messages body.
	Publisher string `json:"publisher,omitempty"`
}

// vertexName reports s made of 1 to n bytes of lowercase letters, digits
// and the bytes of extra, starting with a letter or digit.
func vertexName(s string, n int, extra string) bool {
	if s == "" || len(s) > n {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (i > 0 && strings.IndexByte(extra, c) >= 0) {
			continue
		}
		return false
	}
	return true
}

// validateVertex checks the vertex family: project and location options,
// the service account in secrets.service_account, no api_key.
func validateVertex(p *llm.Provider) error {
	var o vertexOptions
	if err := decodeOptions(p, &o); err != nil {
		return err
	}
	if !vertexName(o.Project, 128, ".:-") {
		return invalid("options.project", "is required: the Google Cloud project id (lowercase letters, digits, '-', '.', ':')")
	}
	if !vertexName(o.Location, 63, "-") {
		return invalid("options.location", "is required: a Vertex AI location such as us-central1, or global")
	}
	switch o.Publisher {
	case "", "google", "anthropic":
	default:
		return invalid("options.publisher", "must be google or anthropic")
	}
	if p.APIKey != "" {
		return invalid("api_key", "is not used by type vertex: put the service account's JSON key in secrets.service_account")
	}
	for name := range p.Secrets {
		if name != "service_account" {
			return invalid("secrets."+clip(name, 64), "type vertex takes only secrets.service_account")
		}
	}
	raw, ok := p.Secrets["service_account"]
	if !ok || raw == "" {
		return invalid("secrets.service_account", "is required: a service account's JSON key")
	}
	if _, err := parseServiceAccount(raw); err != nil {
		return invalid("secrets.service_account", "%s", err.Error())
	}
	return nil
}

// vertexURLs returns the service account's token endpoint, which must
// pass the checks base_url does.
func vertexURLs(p *llm.Provider) map[string]string {
	sa, err := parseServiceAccount(p.Secrets["service_account"])
	if err != nil {
		return nil
	}
	return map[string]string{"secrets.service_account.token_uri": sa.TokenURI}
}

// Vertex talks to Gemini models on Google Cloud's Vertex AI with a
// service account: every call is translated as for Gemini, and carries
// an OAuth2 access token obtained by the JWT-bearer grant and cached.
type Vertex struct {
	g      googleCore
	tokens *tokenSource
	prefix string // origin + /v1/projects/{p}/locations/{l}/publishers/{publisher}/models/
	// anthropic is true for publisher anthropic: Claude, spoken to in
	// Anthropic's Messages format through rawPredict.
	anthropic bool
}

// NewVertex builds a vertex provider from a validated configuration.
func NewVertex(p *llm.Provider, c *Client) (Provider, error) {
	var o vertexOptions
	if err := decodeOptions(p, &o); err != nil {
		return nil, err
	}
	sa, err := parseServiceAccount(p.Secrets["service_account"])
	if err != nil {
		return nil, invalid("secrets.service_account", "%s", err.Error())
	}
	// The redactor knows the key's parts, not the whole JSON (see
	// secretParts), plus any credential-like header.
	q := *p
	q.Secrets = nil
	secrets := append(providerSecrets(&q), sa.secretParts()...)
	origin := strings.TrimRight(p.BaseURL, "/")
	if origin == DefaultVertexBaseURL && o.Location != "global" {
		origin = "https://" + o.Location + "-aiplatform.googleapis.com"
	}
	publisher := "google"
	if o.Publisher == "anthropic" {
		publisher = "anthropic"
	}
	v := &Vertex{
		g:         newGoogleCore(p, c, secrets),
		prefix:    origin + "/v1/projects/" + url.PathEscape(o.Project) + "/locations/" + url.PathEscape(o.Location) + "/publishers/" + publisher + "/models/",
		anthropic: publisher == "anthropic",
	}
	v.g.predictEmbed = true
	v.tokens = &tokenSource{name: p.Name, sa: sa, client: c, red: v.g.red, now: time.Now}
	return v, nil
}

// Native implements Provider: Anthropic Messages requests for publisher
// anthropic (the body is adapted: no model, Vertex's anthropic_version);
// nothing for Gemini.
func (v *Vertex) Native(d llm.Dialect) bool { return v.anthropic && d == llm.DialectAnthropicMessages }

// Redact implements Redactor.
func (v *Vertex) Redact(dst, b []byte) []byte { return v.g.red.Redact(dst, b) }

// RedactWhole removes whole echoes of the provider's credentials from b.
func (v *Vertex) RedactWhole(dst, b []byte) []byte { return v.g.red.RedactWhole(dst, b) }

// Timeouts returns the provider's timeouts, defaults filled in.
func (v *Vertex) Timeouts() llm.Timeouts { return v.g.client.Timeouts() }

// Do implements Provider.
func (v *Vertex) Do(ctx context.Context, call *Call) (*Response, error) {
	if v.anthropic {
		return v.doAnthropic(ctx, call)
	}
	return v.g.translated(ctx, call, func(model, method string) (string, error) {
		return v.prefix + modelPath(model) + ":" + method, nil
	}, v.auth)
}

// auth sets the Bearer token and returns it.
func (v *Vertex) auth(ctx context.Context, h http.Header) (string, error) {
	tok, err := v.tokens.Token(ctx)
	if err != nil {
		return "", err
	}
	h["Authorization"] = []string{"Bearer " + tok}
	return tok, nil
}

// vertexAnthropicVersion is the anthropic_version Vertex AI wants in the body.
const vertexAnthropicVersion = "vertex-2023-10-16"

// doAnthropic sends a call to a Claude model on Vertex AI: the Messages
// body (the client's, or translated by wire/anthropic) without its model,
// which goes in the URL, and with Vertex's anthropic_version, to
// :rawPredict or :streamRawPredict.
func (v *Vertex) doAnthropic(ctx context.Context, call *Call) (*Response, error) {
	var body []byte
	model := call.Model
	switch {
	case !call.Translated():
		if call.Endpoint != llm.EndpointMessages {
			return nil, llm.Errorf(llm.KindInvalidRequest, "endpoint %q is not supported by provider %s", call.Endpoint, v.g.name)
		}
		body = call.Body
		if model == "" {
			model = jsonString(memberValue(body, "model"))
		}
	case call.Chat != nil:
		req := call.Chat
		if req.Stream != call.Stream {
			cp := *req
			cp.Stream = call.Stream
			req = &cp
		}
		if model == "" {
			model = req.Model
		}
		var e *llm.Error
		if body, e = anthropic.AppendRequest(make([]byte, 0, 1024), req); e != nil {
			e.Provider = v.g.name
			return nil, e
		}
	default:
		return nil, llm.Errorf(llm.KindInvalidRequest, "provider %s (vertex, anthropic) serves chat only, not %s", v.g.name, call.Endpoint)
	}
	if model == "" {
		return nil, llm.Errorf(llm.KindInvalidRequest, "no upstream model for provider %s", v.g.name)
	}
	body, err := vertexAnthropicBody(body)
	if err != nil {
		return nil, llm.Errorf(llm.KindInvalidRequest, "the request body must be a JSON object")
	}
	method := "rawPredict"
	if call.Stream {
		method = "streamRawPredict"
	}
	resp, err := v.g.send(ctx, v.prefix+modelPath(model)+":"+method, call.Stream, call.RequestID, body, v.auth)
	if err != nil {
		return nil, err
	}
	if call.Translated() {
		resp.Decoder = newDecoder(codec{chat: anthropic.DecodeResponse, stream: anthropic.NewStreamDecoder}, v.g.name, v.g.red, resp.Status)
	}
	return resp, nil
}

// vertexAnthropicBody rewrites a Messages body for Vertex: the model
// member is dropped and anthropic_version set to Vertex's. Members are
// copied as they are, in order.
func vertexAnthropicBody(b []byte) ([]byte, error) {
	out := make([]byte, 0, len(b)+48)
	out = append(out, `{"anthropic_version":"`+vertexAnthropicVersion+`"`...)
	_, err := jsonspan.EachMember(b, func(key []byte, vs, ve int) error {
		if k := string(key); k == "model" || k == "anthropic_version" {
			return nil
		}
		out = append(out, ',', '"')
		out = append(out, key...)
		out = append(out, '"', ':')
		out = append(out, b[vs:ve]...)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return append(out, '}'), nil
}

// memberValue returns the raw value of the top-level member key of the
// JSON object b, or nil.
func memberValue(b []byte, key string) []byte {
	var v []byte
	_, _ = jsonspan.EachMember(b, func(k []byte, vs, ve int) error {
		if string(k) == key {
			v = b[vs:ve]
		}
		return nil
	})
	return v
}

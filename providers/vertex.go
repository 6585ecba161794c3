package providers

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/sluice-ai/sluice/llm"
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
	// Publisher is "google" (default): Gemini models. ("anthropic",
	// Claude on Vertex, is not supported yet.)
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
	case "", "google":
	case "anthropic":
		return invalid("options.publisher", "anthropic (Claude on Vertex AI) is not supported yet; use google")
	default:
		return invalid("options.publisher", "must be google")
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
	prefix string // origin + /v1/projects/{p}/locations/{l}/publishers/google/models/
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
	v := &Vertex{
		g:      newGoogleCore(p, c, secrets),
		prefix: origin + "/v1/projects/" + url.PathEscape(o.Project) + "/locations/" + url.PathEscape(o.Location) + "/publishers/google/models/",
	}
	v.tokens = &tokenSource{name: p.Name, sa: sa, client: c, red: v.g.red, now: time.Now}
	return v, nil
}

// Native implements Provider: never.
func (v *Vertex) Native(llm.Dialect) bool { return false }

// Redact implements Redactor.
func (v *Vertex) Redact(dst, b []byte) []byte { return v.g.red.Redact(dst, b) }

// RedactWhole removes whole echoes of the provider's credentials from b.
func (v *Vertex) RedactWhole(dst, b []byte) []byte { return v.g.red.RedactWhole(dst, b) }

// Timeouts returns the provider's timeouts, defaults filled in.
func (v *Vertex) Timeouts() llm.Timeouts { return v.g.client.Timeouts() }

// Do implements Provider.
func (v *Vertex) Do(ctx context.Context, call *Call) (*Response, error) {
	if call.Embed != nil {
		return nil, llm.Errorf(llm.KindInvalidRequest, "provider %s (vertex) does not serve embeddings yet", v.g.name)
	}
	return v.g.do(ctx, call, func(model, method string) (string, error) {
		return v.prefix + modelPath(model) + ":" + method, nil
	}, func(ctx context.Context, h http.Header) (string, error) {
		tok, err := v.tokens.Token(ctx)
		if err != nil {
			return "", err
		}
		h["Authorization"] = []string{"Bearer " + tok}
		return tok, nil
	})
}

package providers

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"

	"github.com/sluice-ai/sluice/llm"
	"github.com/sluice-ai/sluice/wire/jsonspan"
)

// DefaultAzureAPIVersion is the api-version sent to Azure OpenAI's
// deployment URLs when the provider sets none: the current GA data-plane
// inference version (learn.microsoft.com/azure/ai-foundry/openai/reference).
const DefaultAzureAPIVersion = "2024-10-21"

// AzureADTokenSecret is the secret that holds a Microsoft Entra ID token;
// when set it is sent as Authorization: Bearer instead of the api-key header.
const AzureADTokenSecret = "azure_ad_token"

// maxDeploymentName bounds a deployment name taken into a URL (Azure
// allows 64 characters; anything much longer is not a deployment).
const maxDeploymentName = 256

// Azure talks to Azure OpenAI. It speaks OpenAI's dialects and shares the
// OpenAI provider's send path (headers, redaction, errors, the
// stream_options fallback, the translated lane); only the URL and the
// authentication differ:
//
//   - deployments (default): {base}/openai/deployments/{deployment}{path}?api-version={v},
//     the deployment being the call's upstream model;
//   - use_v1: {base}/openai/v1{path}, the model (the deployment name) in the
//     body and no api-version;
//
// and Responses always at {base}/openai/v1/responses, the surface Azure
// documents for it. Credentials: api-key: <api_key>, or Authorization:
// Bearer <azure_ad_token> when that secret is set.
type Azure struct {
	*OpenAI
	apiVersion string // query-escaped; "" with use_v1
	v1         bool
}

// azureOptions are the options of the azure family.
type azureOptions struct {
	// APIVersion is the api-version query of deployment URLs
	// (YYYY-MM-DD or YYYY-MM-DD-preview); default DefaultAzureAPIVersion.
	APIVersion string `json:"api_version,omitempty"`
	// UseV1 selects the /openai/v1/ surface: the model in the body, no
	// deployment in the path and no api-version.
	UseV1 bool `json:"use_v1,omitempty"`
}

// validAPIVersion reports whether v is YYYY-MM-DD or YYYY-MM-DD-preview.
func validAPIVersion(v string) bool {
	d, ok := strings.CutSuffix(v, "-preview")
	if !ok {
		d = v
	}
	if len(d) != len("2006-01-02") || d[4] != '-' || d[7] != '-' {
		return false
	}
	for i := 0; i < len(d); i++ {
		if i != 4 && i != 7 && (d[i] < '0' || d[i] > '9') {
			return false
		}
	}
	month, day := (d[5]-'0')*10+d[6]-'0', (d[8]-'0')*10+d[9]-'0'
	return month >= 1 && month <= 12 && day >= 1 && day <= 31
}

// validateAzure checks an azure provider: its options, its one optional
// secret (azure_ad_token), and a base URL that is the resource endpoint
// (a trailing /openai is tolerated and removed: the gateway appends it).
func validateAzure(p *llm.Provider) error {
	var o azureOptions
	if err := decodeOptions(p, &o); err != nil {
		return err
	}
	switch {
	case o.UseV1 && o.APIVersion != "":
		return invalid("options.api_version", "is not used with use_v1 (the /openai/v1/ surface takes no api-version)")
	case o.APIVersion != "" && !validAPIVersion(o.APIVersion):
		return invalid("options.api_version", "must be a date such as %s, optionally with -preview", DefaultAzureAPIVersion)
	}
	for name, v := range p.Secrets {
		if name != AzureADTokenSecret {
			return invalid("secrets."+clip(name, 64), "type azure takes only the secret %s besides api_key", AzureADTokenSecret)
		}
		if v == "" || len(v) > maxHeaderValue || !validHeaderValue(v) {
			return invalid("secrets."+name, "must be a token of at most 8 KiB without control characters or surrounding spaces")
		}
	}
	if p.APIKey != "" && !validHeaderValue(p.APIKey) {
		return invalid("api_key", "must not contain control characters or surrounding spaces")
	}
	base := strings.TrimSuffix(p.BaseURL, "/openai")
	if u, err := url.Parse(base); err == nil {
		path := strings.ToLower(u.Path)
		if strings.HasSuffix(path, "/openai/v1") || strings.Contains(path, "/openai/deployments") {
			return invalid("base_url", "must be the resource endpoint such as https://{resource}.openai.azure.com; deployments come from the models, and the v1 surface is options.use_v1")
		}
	}
	p.BaseURL = base
	return nil
}

// NewAzure builds an Azure OpenAI provider from a validated configuration.
func NewAzure(p *llm.Provider, c *Client) (Provider, error) {
	var opts azureOptions
	if len(p.Options) > 0 && string(p.Options) != "null" {
		if err := json.Unmarshal(p.Options, &opts); err != nil {
			return nil, invalid("options", "is not valid")
		}
	}
	o := &OpenAI{upstream: newUpstream(p, c), responses: true, base: strings.TrimSuffix(strings.TrimRight(p.BaseURL, "/"), "/openai")}
	if tok := p.Secrets[AzureADTokenSecret]; tok != "" {
		o.headers = append(o.headers, [2]string{"Authorization", "Bearer " + tok})
	} else if p.APIKey != "" {
		o.headers = append(o.headers, [2]string{"Api-Key", p.APIKey})
	}
	for k, v := range p.Headers {
		o.headers = append(o.headers, [2]string{http.CanonicalHeaderKey(k), v})
	}
	a := &Azure{OpenAI: o, v1: opts.UseV1}
	if !a.v1 {
		a.apiVersion = opts.APIVersion
		if a.apiVersion == "" {
			a.apiVersion = DefaultAzureAPIVersion
		}
		a.apiVersion = url.QueryEscape(a.apiVersion)
	}
	o.target = a.url
	return a, nil
}

// url builds the upstream URL of a call to the OpenAI path (as
// llm.Endpoint.Path gives it) with body, the bytes about to be sent.
func (a *Azure) url(call *Call, path string, body []byte) (string, error) {
	if a.v1 || path == "/responses" {
		return a.base + "/openai/v1" + path, nil
	}
	dep := call.Model
	if dep == "" {
		dep = bodyModel(body)
	}
	if dep == "" || dep == "." || dep == ".." || len(dep) > maxDeploymentName {
		return "", llm.Errorf(llm.KindInvalidRequest, "provider %s needs a deployment name (the model) of at most %d bytes", a.name, maxDeploymentName)
	}
	return a.base + "/openai/deployments/" + url.PathEscape(dep) + path + "?api-version=" + a.apiVersion, nil
}

// bodyModel returns the top-level "model" string of a JSON object, "" when
// there is none (or it is not a string). It is linear in the body.
func bodyModel(body []byte) string {
	var model string
	_, _ = jsonspan.EachMember(body, func(key []byte, vs, ve int) error {
		if string(key) != "model" {
			return nil
		}
		raw := body[vs:ve]
		switch {
		case len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"':
		case bytes.IndexByte(raw, '\\') < 0:
			model = string(raw[1 : len(raw)-1])
		case json.Unmarshal(raw, &model) != nil:
			model = ""
		}
		return stopWalk{}
	})
	return model
}

// stopWalk ends a jsonspan walk early.
type stopWalk struct{}

func (stopWalk) Error() string { return "stop" }

package providers

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/sluice-ai/sluice/llm"
	"github.com/sluice-ai/sluice/wire/bedrock"
)

// Bedrock talks to Amazon Bedrock's Converse API. Every call is
// translated: Bedrock speaks none of the client dialects. Requests are
// signed with AWS Signature Version 4 (service "bedrock") from the access
// key pair in secrets, or carry a Bedrock API key as a bearer token when
// api_key is set instead.
type Bedrock struct {
	upstream        // headers: the static ones
	base     string // https://bedrock-runtime.{region}.amazonaws.com, or base_url
	region   string
	bearer   string // "Bearer <api key>", "" for SigV4
	creds    aws.Credentials
	signer   *v4.Signer
	now      func() time.Time
}

// bedrockOptions are the options of the bedrock family.
type bedrockOptions struct {
	// Region is the AWS region ("us-east-1"): it names the endpoint
	// (unless base_url overrides it) and is part of every signature.
	Region string `json:"region"`
}

// Secrets of the bedrock family.
const (
	secretAccessKeyID     = "access_key_id"
	secretSecretAccessKey = "secret_access_key"
	secretSessionToken    = "session_token"
)

// validateBedrock checks a bedrock provider: a valid region, and either an
// api_key (a Bedrock API key, sent as a bearer token) or an access key
// pair (with an optional session token) in secrets, not both.
func validateBedrock(p *llm.Provider) error {
	var o bedrockOptions
	if err := decodeOptions(p, &o); err != nil {
		return err
	}
	if o.Region == "" {
		return invalid("options.region", "is required for type bedrock (for example us-east-1)")
	}
	if !validRegion(o.Region) {
		return invalid("options.region", "must be an AWS region such as us-east-1")
	}
	for name, v := range p.Secrets {
		switch name {
		case secretAccessKeyID:
			if len(v) < 16 || len(v) > 128 || !alnum(v) {
				return invalid("secrets."+name, "must be an AWS access key id (16 to 128 letters and digits)")
			}
		case secretSecretAccessKey:
			if v == "" || len(v) > 256 || !validHeaderValue(v) {
				return invalid("secrets."+name, "must be at most 256 characters without control characters")
			}
		case secretSessionToken:
			if v == "" || len(v) > 8192 || !validHeaderValue(v) {
				return invalid("secrets."+name, "must be at most 8192 characters without control characters")
			}
		default:
			return invalid("secrets."+clip(name, 64), "type bedrock takes only access_key_id, secret_access_key and session_token")
		}
	}
	_, hasID := p.Secrets[secretAccessKeyID]
	_, hasSecret := p.Secrets[secretSecretAccessKey]
	_, hasToken := p.Secrets[secretSessionToken]
	switch {
	case p.APIKey != "" && (hasID || hasSecret || hasToken):
		return invalid("secrets", "type bedrock takes either api_key (a Bedrock API key) or an access key pair in secrets, not both")
	case p.APIKey != "":
		if !validHeaderValue(p.APIKey) {
			return invalid("api_key", "must not contain control characters")
		}
	case hasID != hasSecret:
		return invalid("secrets", "type bedrock needs both access_key_id and secret_access_key")
	case !hasID:
		return invalid("secrets", "type bedrock needs credentials: secrets.access_key_id and secrets.secret_access_key, or api_key (a Bedrock API key)")
	}
	return nil
}

// validRegion accepts AWS region names: lowercase words and a final
// number joined by hyphens ("us-east-1", "us-gov-west-1", "ap-southeast-2").
func validRegion(s string) bool {
	if len(s) > 32 {
		return false
	}
	parts := strings.Split(s, "-")
	if len(parts) < 3 {
		return false
	}
	for i, p := range parts {
		if p == "" {
			return false
		}
		for j := 0; j < len(p); j++ {
			c := p[j]
			digit := c >= '0' && c <= '9'
			if i == len(parts)-1 && !digit || i < len(parts)-1 && !(c >= 'a' && c <= 'z') {
				return false
			}
		}
	}
	return true
}

func alnum(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// bedrockBaseURL is the Bedrock runtime endpoint of region.
func bedrockBaseURL(region string) string {
	return "https://bedrock-runtime." + region + ".amazonaws.com"
}

// NewBedrock builds a Bedrock provider from a validated configuration.
func NewBedrock(p *llm.Provider, c *Client) (Provider, error) {
	var o bedrockOptions
	if err := json.Unmarshal(p.Options, &o); err != nil || !validRegion(o.Region) {
		return nil, invalid("options.region", "is not valid")
	}
	b := &Bedrock{upstream: newUpstream(p, c), region: o.Region, base: strings.TrimRight(p.BaseURL, "/"), now: time.Now}
	if b.base == "" {
		b.base = bedrockBaseURL(o.Region)
	}
	if p.APIKey != "" {
		b.bearer = "Bearer " + p.APIKey
	} else {
		b.creds = aws.Credentials{AccessKeyID: p.Secrets[secretAccessKeyID], SecretAccessKey: p.Secrets[secretSecretAccessKey],
			SessionToken: p.Secrets[secretSessionToken], Source: "sluice"}
		b.signer = v4.NewSigner()
	}
	for k, v := range p.Headers {
		b.headers = append(b.headers, [2]string{http.CanonicalHeaderKey(k), v})
	}
	return b, nil
}

// Native implements Provider: Bedrock speaks none of the client dialects.
func (b *Bedrock) Native(llm.Dialect) bool { return false }

// Do implements Provider: a chat call becomes POST
// /model/{model}/converse (or /converse-stream), its answer decoded by
// wire/bedrock.
func (b *Bedrock) Do(ctx context.Context, call *Call) (*Response, error) {
	if !call.Translated() || call.Chat == nil {
		return nil, llm.Errorf(llm.KindInvalidRequest, "endpoint %q is not supported by provider %s", call.Endpoint, b.name)
	}
	model := call.Model
	if model == "" {
		model = call.Chat.Model
	}
	if model == "" {
		return nil, llm.Errorf(llm.KindInvalidRequest, "provider %s needs a model", b.name)
	}
	// Converse takes images inline only: those given by URL are fetched
	// through the guarded fetcher first.
	chat, lerr := FetchImages(ctx, b.client.Images(), call.Chat)
	if lerr != nil {
		lerr.Provider = b.name
		return nil, lerr
	}
	body, lerr := bedrock.AppendConverseRequest(nil, chat)
	if lerr != nil {
		lerr.Provider = b.name
		return nil, lerr
	}
	op := "/converse"
	if call.Stream {
		op = "/converse-stream"
	}
	url := b.base + "/model/" + escapeModelID(model) + op
	accept := "application/vnd.amazon.eventstream"
	if !call.Stream {
		accept = acceptJSON
	}
	resp, e := b.do(ctx, request{url: url, body: body, accept: accept, requestID: call.RequestID, sign: b.authorize})
	if e != nil {
		if resp != nil {
			b.refine(e, resp)
		}
		return nil, e
	}
	dec := newDecoder(codec{chat: bedrock.DecodeConverseResponse, stream: bedrock.NewStreamDecoder}, b.name, b.red, resp.StatusCode)
	return &Response{Status: resp.StatusCode, Header: resp.Header, Body: resp.Body, Decoder: dec}, nil
}

// authorize sets the request's Authorization: the bearer API key, or a
// SigV4 signature over the method, path, headers and body.
func (b *Bedrock) authorize(ctx context.Context, req *http.Request, body []byte) (string, error) {
	if b.bearer != "" {
		req.Header["Authorization"] = []string{b.bearer}
		return "", nil
	}
	sum := sha256.Sum256(body)
	return "", b.signer.SignHTTP(ctx, b.creds, req, hex.EncodeToString(sum[:]), "bedrock", b.region, b.now())
}

// refine completes e, a Bedrock error answer's mapping (the status as
// every provider maps it), with the AWS error type (x-amzn-ErrorType, "ThrottlingException:…")
// as the code, and for statuses AWS documents differently from HTTP's
// reading the matching client status: a 424 ModelErrorException and
// ModelStreamErrorException are the model's failure (502).
func (b *Bedrock) refine(e *llm.Error, resp *http.Response) {
	typ := resp.Header.Get("X-Amzn-Errortype")
	if i := strings.IndexAny(typ, ":,"); i >= 0 {
		typ = typ[:i]
	}
	typ = clip(b.red.str(strings.TrimSpace(typ)), maxErrorField)
	if typ != "" && e.Code == "" {
		e.Code = typ
	}
	if resp.StatusCode == http.StatusFailedDependency {
		e.Status = http.StatusBadGateway
	}
}

// escapeModelID escapes a model id (or inference profile ARN, which holds
// ':' and '/') as one URL path segment, as AWS's SDKs do: every byte but
// the unreserved ones is percent-encoded.
func escapeModelID(s string) string {
	var sb strings.Builder
	sb.Grow(len(s) + 16)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~' {
			sb.WriteByte(c)
			continue
		}
		sb.WriteByte('%')
		sb.WriteByte("0123456789ABCDEF"[c>>4])
		sb.WriteByte("0123456789ABCDEF"[c&15])
	}
	return sb.String()
}

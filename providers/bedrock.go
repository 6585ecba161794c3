package providers

import (
	"bytes"
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
	name    string
	base    string // https://bedrock-runtime.{region}.amazonaws.com, or base_url
	region  string
	bearer  string // "Bearer <api key>", "" for SigV4
	creds   aws.Credentials
	signer  *v4.Signer
	headers [][2]string // static headers, canonical names
	red     *redactor
	idle    time.Duration
	client  *Client
	now     func() time.Time
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
	b := &Bedrock{name: p.Name, region: o.Region, base: strings.TrimRight(p.BaseURL, "/"), client: c,
		red: newRedactor(providerSecrets(p)), idle: p.Timeouts.WithDefaults().Idle, now: time.Now}
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

// Timeouts returns the provider's timeouts (defaults filled in).
func (b *Bedrock) Timeouts() llm.Timeouts { return b.client.Timeouts() }

// Redact implements Redactor.
func (b *Bedrock) Redact(dst, p []byte) []byte {
	if b.red == nil {
		return p
	}
	return b.red.Redact(dst, p)
}

// RedactWhole removes whole echoes of the provider's credentials from p.
func (b *Bedrock) RedactWhole(dst, p []byte) []byte { return b.red.RedactWhole(dst, p) }

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
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		e := llm.Errorf(llm.KindInternal, "cannot build upstream request")
		e.Err = b.red.redactErr(err)
		return nil, e
	}
	h := req.Header
	h["Content-Type"] = []string{"application/json"}
	if call.Stream {
		h["Accept"] = []string{"application/vnd.amazon.eventstream"}
	} else {
		h["Accept"] = []string{"application/json"}
	}
	if call.RequestID != "" {
		h["X-Request-Id"] = []string{call.RequestID}
	}
	for _, kv := range b.headers {
		h[kv[0]] = []string{kv[1]}
	}
	if err := b.authorize(ctx, req, body); err != nil {
		e := llm.Errorf(llm.KindInternal, "cannot sign upstream request")
		e.Err = b.red.redactErr(err)
		return nil, e
	}
	resp, err := b.client.tr.RoundTrip(req)
	if err != nil {
		return nil, classify(ctx, b.name, b.red.redactErr(err))
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		defer resp.Body.Close()
		return nil, b.upstreamError(resp)
	}
	dec := newDecoder(codec{chat: bedrock.DecodeConverseResponse, stream: bedrock.NewStreamDecoder}, b.name, b.red, resp.StatusCode)
	return &Response{Status: resp.StatusCode, Header: resp.Header, Body: resp.Body, Decoder: dec}, nil
}

// authorize sets the request's Authorization: the bearer API key, or a
// SigV4 signature over the method, path, headers and body.
func (b *Bedrock) authorize(ctx context.Context, req *http.Request, body []byte) error {
	if b.bearer != "" {
		req.Header["Authorization"] = []string{b.bearer}
		return nil
	}
	sum := sha256.Sum256(body)
	return b.signer.SignHTTP(ctx, b.creds, req, hex.EncodeToString(sum[:]), "bedrock", b.region, b.now())
}

// upstreamError maps a Bedrock error answer: the status as every provider
// maps it, the AWS error type (x-amzn-ErrorType, "ThrottlingException:…")
// as the code, and for statuses AWS documents differently from HTTP's
// reading the matching client status: a 424 ModelErrorException and
// ModelStreamErrorException are the model's failure (502).
func (b *Bedrock) upstreamError(resp *http.Response) *llm.Error {
	e := upstreamError(b.name, resp, b.red, min(b.idle, errorBodyTimeout), time.Now())
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
	return e
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

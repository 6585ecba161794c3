package providers

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"

	"github.com/sluice-ai/sluice/llm"
	"github.com/sluice-ai/sluice/wire/openai"
)

// DefaultOpenAIBaseURL is used when an openai provider has no base_url.
const DefaultOpenAIBaseURL = "https://api.openai.com/v1"

// OpenAI talks to OpenAI and every server that speaks its wire format. The
// request body is forwarded untouched; the response is passed through.
type OpenAI struct {
	upstream        // headers: auth, options, static headers
	base     string // without trailing slash
	// responses is true when the upstream serves /responses (OpenAI
	// itself); other servers get Responses requests translated to chat.
	responses bool
	// plainStreams is set once the upstream rejected the stream_options
	// the gateway injects: from then on Call.PlainBody is sent directly.
	plainStreams atomic.Bool
	// quirks are what the upstream does not take (presets.go); the zero
	// value is OpenAI's own behaviour.
	quirks quirks
	// target, when set, builds the upstream URL of a call from the
	// OpenAI path ("/chat/completions") and the body about to be sent
	// (Azure puts the deployment and api-version in the URL); nil means
	// base + path. Both lanes send through it.
	target func(call *Call, path string, body []byte) (string, error)
}

// openAIOptions are the options of the openai family.
type openAIOptions struct {
	// Organization is sent as OpenAI-Organization.
	Organization string `json:"organization,omitempty"`
	// Project is sent as OpenAI-Project.
	Project string `json:"project,omitempty"`
}

// validateOpenAI checks the options and secrets of the openai family:
// organization and project, no secrets beyond api_key.
func validateOpenAI(p *llm.Provider) error {
	var o openAIOptions
	if err := decodeOptions(p, &o); err != nil {
		return err
	}
	for field, v := range map[string]string{"organization": o.Organization, "project": o.Project} {
		if len(v) > 256 || !validHeaderValue(v) {
			return invalid("options."+field, "must be at most 256 characters without control characters")
		}
	}
	return noSecrets(p)
}

// decodeOptions decodes p.Options strictly into v (unknown keys are an
// error) and replaces p.Options with v's canonical encoding.
func decodeOptions(p *llm.Provider, v any) error {
	raw := bytes.TrimSpace(p.Options)
	if len(raw) > 0 && string(raw) != "null" {
		if raw[0] != '{' {
			return invalid("options", "must be a JSON object")
		}
		d := json.NewDecoder(bytes.NewReader(raw))
		d.DisallowUnknownFields()
		if err := d.Decode(v); err != nil {
			msg := "is not valid for type " + string(p.Type)
			if f, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
				msg = "has unknown key " + clip(f, 80) + " for type " + string(p.Type)
			}
			return invalid("options", "%s", msg)
		}
		if d.More() {
			return invalid("options", "must be one JSON object")
		}
	}
	canon, err := json.Marshal(v)
	if err != nil {
		return invalid("options", "cannot be encoded")
	}
	p.Options = canon
	return nil
}

func noSecrets(p *llm.Provider) error {
	for name := range p.Secrets {
		return invalid("secrets."+clip(name, 64), "type %s takes no secrets besides api_key", p.Type)
	}
	return nil
}

// NewOpenAI builds an OpenAI-format provider from a validated configuration.
func NewOpenAI(p *llm.Provider, c *Client) (Provider, error) {
	var opts openAIOptions
	if len(p.Options) > 0 && string(p.Options) != "null" {
		if err := json.Unmarshal(p.Options, &opts); err != nil {
			return nil, invalid("options", "is not valid")
		}
	}
	o := &OpenAI{upstream: newUpstream(p, c), responses: p.Type == llm.ProviderOpenAI, base: strings.TrimRight(p.BaseURL, "/")}
	if p.APIKey != "" {
		o.headers = append(o.headers, [2]string{"Authorization", "Bearer " + p.APIKey})
	}
	if opts.Organization != "" {
		o.headers = append(o.headers, [2]string{"Openai-Organization", opts.Organization})
	}
	if opts.Project != "" {
		o.headers = append(o.headers, [2]string{"Openai-Project", opts.Project})
	}
	for k, v := range p.Headers {
		o.headers = append(o.headers, [2]string{http.CanonicalHeaderKey(k), v})
	}
	if p.Type == llm.ProviderOpenAICompatible {
		co := readCompatOptions(p)
		ps, ok := co.resolve()
		if !ok {
			return nil, invalid("options.preset", "is not a known preset")
		}
		o.quirks, o.responses = ps.quirks, ps.responses
	}
	return o, nil
}

// Native implements Provider: the OpenAI dialects (Responses only where
// the upstream serves it).
func (o *OpenAI) Native(d llm.Dialect) bool {
	switch d {
	case llm.DialectOpenAIChat, llm.DialectOpenAICompletions, llm.DialectOpenAIEmbeddings:
		return true
	case llm.DialectOpenAIResponses:
		return o.responses
	}
	return false
}

// Do implements Provider.
func (o *OpenAI) Do(ctx context.Context, call *Call) (*Response, error) {
	if call.Translated() {
		return o.translated(ctx, call)
	}
	path := call.Endpoint.Path()
	if path == "" {
		return nil, llm.Errorf(llm.KindInvalidRequest, "endpoint %q is not supported by provider %s", call.Endpoint, o.name)
	}
	if call.PlainBody != nil && (o.quirks.noStreamOptions || o.plainStreams.Load()) {
		return o.send(ctx, call, path, call.PlainBody())
	}
	resp, err := o.send(ctx, call, path, call.Body)
	if err != nil && call.PlainBody != nil && rejectsStreamOptions(err) {
		// Some OpenAI-compatible servers reject stream_options: ask again
		// exactly as the client did. Only when that succeeds was the
		// injected stream_options the culprit, and it is remembered: a
		// client whose own field merely mentions stream_options must not
		// switch the provider (and everyone's usage reporting) over.
		resp, err = o.send(ctx, call, path, call.PlainBody())
		if err == nil {
			o.plainStreams.Store(true)
		}
	}
	return resp, err
}

func (o *OpenAI) send(ctx context.Context, call *Call, path string, body []byte) (*Response, error) {
	u := o.base + path
	if o.target != nil {
		var err error
		if u, err = o.target(call, path, body); err != nil {
			return nil, err
		}
	}
	body = o.quirks.apply(body)
	resp, e := o.do(ctx, request{url: u, body: body, accept: acceptFor(call.Stream), requestID: call.RequestID})
	if e != nil {
		return nil, e
	}
	return &Response{Status: resp.StatusCode, Header: resp.Header, Body: resp.Body}, nil
}

// rejectsStreamOptions reports an upstream 400/422 that blames the
// stream_options the gateway added.
func rejectsStreamOptions(err error) bool {
	var e *llm.Error
	return errors.As(err, &e) && (e.UpstreamStatus == http.StatusBadRequest || e.UpstreamStatus == http.StatusUnprocessableEntity) &&
		(strings.Contains(e.Message, "stream_options") || strings.Contains(e.Param, "stream_options"))
}

// translated sends a neutral request as an OpenAI chat (or embeddings)
// request and decodes the answer back into neutral form. A streamed chat
// asks for usage with stream_options; an upstream that rejects it is asked
// again without, and from then on never sent it (as on the raw lane).
func (o *OpenAI) translated(ctx context.Context, call *Call) (*Response, error) {
	var (
		path string
		body []byte
		e    *llm.Error
	)
	// The token bound goes as max_completion_tokens (OpenAI's name, which
	// its reasoning models require) unless the upstream's preset knows
	// max_tokens only; a stream asks for usage unless the preset, or an
	// earlier rejection, says the upstream takes no stream_options.
	opts := openai.RequestOptions{MaxCompletionTokens: !o.quirks.renameMaxCompletionTokens}
	stream := false
	switch {
	case call.Embed != nil:
		path = llm.EndpointEmbeddings.Path()
		body, e = openai.AppendEmbedRequest(nil, call.Embed)
	case call.Chat != nil:
		path = llm.EndpointChat.Path()
		stream = call.Chat.Stream
		opts.NoStreamOptions = stream && (o.quirks.noStreamOptions || o.plainStreams.Load())
		body, e = openai.AppendChatRequestWith(nil, call.Chat, opts)
	default:
		return nil, llm.Errorf(llm.KindInvalidRequest, "provider %s got a translated call without a request", o.name)
	}
	if e != nil {
		return nil, e
	}
	resp, err := o.send(ctx, call, path, body)
	if err != nil && stream && !opts.NoStreamOptions && rejectsStreamOptions(err) {
		opts.NoStreamOptions = true
		// A new buffer, not body[:0]: the transport may still be reading it.
		if body, e = openai.AppendChatRequestWith(nil, call.Chat, opts); e != nil {
			return nil, e
		}
		resp, err = o.send(ctx, call, path, body)
		if err == nil {
			o.plainStreams.Store(true)
		}
	}
	if err != nil {
		return nil, err
	}
	resp.Decoder = newDecoder(codec{chat: openai.DecodeChatResponse, embed: openai.DecodeEmbedResponse, stream: openai.NewStreamDecoder},
		o.name, o.red, resp.Status)
	return resp, nil
}

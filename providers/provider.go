package providers

import (
	"context"
	"io"
	"net/http"

	"github.com/sluice-ai/sluice/llm"
)

// A provider is spoken to in one of two lanes, chosen per call by the
// router from the client's dialect:
//
//   - the raw lane, when the provider speaks the client's dialect natively
//     (Native reports it): Call.Body is the client's own bytes with the
//     model spliced in, and Response.Body is the upstream's answer in that
//     same dialect, relayed as it is with usage sniffed on the way — no
//     decode, no re-encode;
//   - the translated lane otherwise: Call.Chat (or Call.Embed) is the
//     request in neutral form, the provider encodes it in its own wire
//     format, and Response.Decoder turns the upstream's answer into
//     neutral form (llm.ChatResponse, or a pulled llm.EventStream), which
//     the router renders in the client's dialect.
//
// Both lanes use the wire/<family> codecs: N inbound plus M outbound
// translators, never N × M.

// Call is one request to one deployment.
type Call struct {
	// Endpoint is the API surface the client called.
	Endpoint llm.Endpoint
	// Dialect is the client's dialect.
	Dialect llm.Dialect
	// Model is the deployment's upstream model (already in Body and Chat;
	// here for providers that put it in the URL: Azure, Gemini, Bedrock).
	Model string
	// Body, on the raw lane, is the client's body in Dialect with the model
	// already rewritten to the deployment's upstream model. The provider
	// must not modify it. Nil on the translated lane.
	Body []byte
	// PlainBody, when non-nil, returns the body to send instead of Body if
	// the upstream rejects the stream_options the gateway injected; once
	// rejected, the provider sends it directly until its configuration
	// changes. It is a function so that the copy is made only when needed.
	PlainBody func() []byte
	// Chat is the neutral request on the translated lane (Model is the
	// upstream model); nil on the raw lane. The provider must not modify it.
	Chat *llm.ChatRequest
	// Embed is the neutral embeddings request on the translated lane.
	Embed *llm.EmbedRequest
	// Stream is true when the client asked for server-sent events.
	Stream bool
	// RequestID is the gateway's request id, forwarded as X-Request-Id.
	RequestID string
}

// Translated reports whether c is on the translated lane.
func (c *Call) Translated() bool { return c.Body == nil }

// Response is a successful (2xx) upstream answer. The caller must close Body.
type Response struct {
	Status int
	Header http.Header
	// Body is the upstream's body. On the raw lane it is in the call's
	// dialect: JSON, or server-sent events when the call streams.
	Body io.ReadCloser
	// Decoder is nil on the raw lane. On the translated lane it decodes
	// Body (which the router reads, bounded in size and time) into
	// neutral form.
	Decoder Decoder
}

// Decoder decodes a provider's answers into neutral form. Every error it
// returns is a *llm.Error whose fields hold nothing of the provider's
// credentials (they are redacted) and are bounded in length; an error the
// upstream reported inside a 2xx answer (an error object, an error event)
// carries UpstreamStatus as providers' error statuses do.
type Decoder interface {
	// Chat decodes a whole non-streamed chat answer.
	Chat(body []byte) (*llm.ChatResponse, error)
	// Embed decodes a whole embeddings answer.
	Embed(body []byte) (*llm.EmbedResponse, error)
	// Stream decodes a streamed answer read from r. The router closes the
	// response body itself; the stream's Close need not.
	Stream(r io.Reader) llm.EventStream
}

// Provider sends calls to one configured provider account. Implementations
// must be safe for concurrent use. Do returns a *llm.Error for every failure:
// upstream error statuses, unreachable upstreams, timeouts and cancellation.
// No field of the error (message, type, param, code, nor the text of the
// wrapped cause) contains the provider's credentials. Errors from the
// upstream carry UpstreamStatus.
type Provider interface {
	// Native reports whether the provider takes requests in dialect d as
	// they are (the raw lane).
	Native(d llm.Dialect) bool
	// Do sends call. On the translated lane a request the provider's API
	// cannot express (n > 1 where it has no choices, a response format it
	// lacks) is a KindInvalidRequest error before any upstream contact.
	Do(ctx context.Context, call *Call) (*Response, error)
}

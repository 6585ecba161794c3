package providers

import (
	"context"
	"io"
	"net/http"

	"github.com/sluice-ai/sluice/llm"
)

// Call is one request to one deployment.
type Call struct {
	// Endpoint is the API surface (chat, completions, embeddings).
	Endpoint llm.Endpoint
	// Body is the OpenAI-format JSON body with the model already rewritten
	// to the deployment's upstream model. The provider must not modify it.
	Body []byte
	// PlainBody, when non-nil, returns the body to send instead of Body if
	// the upstream rejects the stream_options the gateway injected; once
	// rejected, the provider sends it directly until its configuration
	// changes. It is a function so that the copy is made only when needed.
	PlainBody func() []byte
	// Stream is true when the body asks for server-sent events.
	Stream bool
	// RequestID is the gateway's request id, forwarded as X-Request-Id.
	RequestID string
}

// Response is a successful (2xx) upstream answer. The caller must close Body.
type Response struct {
	Status int
	Header http.Header
	// Body is OpenAI wire format: JSON, or SSE when the call streams.
	Body io.ReadCloser
}

// Provider sends calls to one configured provider account. Implementations
// must be safe for concurrent use. Do returns a *llm.Error for every failure:
// upstream error statuses, unreachable upstreams, timeouts and cancellation.
// No field of the error (message, type, param, code, nor the text of the
// wrapped cause) contains the provider's credentials. Errors from the
// upstream carry UpstreamStatus.
type Provider interface {
	Do(ctx context.Context, call *Call) (*Response, error)
}

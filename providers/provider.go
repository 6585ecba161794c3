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
// The error message never contains the provider's credentials.
type Provider interface {
	Do(ctx context.Context, call *Call) (*Response, error)
}

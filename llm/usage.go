package llm

import "time"

// Usage counts the tokens of one request.
type Usage struct {
	PromptTokens     int  `json:"prompt_tokens"`
	CompletionTokens int  `json:"completion_tokens"`
	CachedTokens     int  `json:"cached_tokens"`
	Estimated        bool `json:"estimated"`
}

// Endpoint names the API surface a request came in on.
type Endpoint string

// Endpoints of the proxy.
const (
	EndpointChat        Endpoint = "chat"
	EndpointCompletions Endpoint = "completions"
	EndpointEmbeddings  Endpoint = "embeddings"
)

// Path returns the upstream path of e, relative to an OpenAI base URL.
func (e Endpoint) Path() string {
	switch e {
	case EndpointChat:
		return "/chat/completions"
	case EndpointCompletions:
		return "/completions"
	case EndpointEmbeddings:
		return "/embeddings"
	}
	return ""
}

// Request outcome statuses recorded in usage rows.
const (
	StatusOK              = "ok"
	StatusError           = "error"
	StatusClientCancelled = "client_cancelled"
	StatusStreamBroken    = "stream_broken"
)

// Record is one usage row: everything the gateway knows about one request.
type Record struct {
	RequestID        string
	Time             time.Time
	KeyID            string
	KeyPrefix        string
	Endpoint         Endpoint
	Model            string // public model name the client asked for
	Provider         string
	Deployment       string // Deployment.ID()
	PromptTokens     int
	CompletionTokens int
	CachedTokens     int
	Cost             float64 // USD
	Latency          time.Duration
	TTFT             time.Duration // zero when not streamed or no token arrived
	HTTPStatus       int
	Status           string // StatusOK, StatusError, …
	ErrorType        string
	Stream           bool
	Estimated        bool
}

package router

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"os"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/sluice-ai/sluice/balancer"
	"github.com/sluice-ai/sluice/llm"
	"github.com/sluice-ai/sluice/quota"
	"github.com/sluice-ai/sluice/state"
)

// Recorder receives one usage record per request; it must not block.
type Recorder interface {
	Record(llm.Record)
}

// Options configures the proxy handler.
type Options struct {
	// State returns the current configuration; it is called once per
	// request and must be cheap (an atomic load).
	State func() *state.State
	// Balancer orders deployments and keeps their health. Required.
	Balancer *balancer.Balancer
	// Usage receives usage records. Required.
	Usage Recorder
	// Estimator counts tokens when an upstream reports no usage. Required.
	Estimator *quota.Estimator
	// Affinity remembers which deployment served a prompt prefix last
	// (prompt-cache affinity, see affinity.go). Nil turns affinity off.
	Affinity AffinityStore
	// Admitter admits each request before any upstream contact (quotas and
	// budgets) and settles it when it ends. Nil admits everything.
	Admitter Admitter
	// Metrics may be nil (no metrics).
	Metrics *Metrics
	// AccessLog may be nil (no access log).
	AccessLog *AccessLog
	// LogBodies adds each request's JSON body to its access-log line. Off by
	// default: prompts are often confidential. Credentials are never in a
	// body the gateway accepts, but a prompt may contain anything.
	LogBodies bool
	// Logger receives operational errors. Nil discards.
	Logger *slog.Logger
	// MaxBodyBytes bounds request bodies. Default 10 MiB.
	MaxBodyBytes int64
	// MaxBufferedBytes bounds the request-body bytes all requests hold
	// at once; beyond it new bodies get 503 overloaded. Default 64 ×
	// MaxBodyBytes, at least 1 GiB.
	MaxBufferedBytes int64
	// MaxAttempts bounds the upstream attempts of one request, across
	// deployments and fallback models, unless the model's routing says
	// otherwise. Default 3.
	MaxAttempts int
	// RetryRatio is the share of a model's requests that may be retried
	// (its retry budget); RetryFloor the retries a second it may always
	// make. Defaults DefaultRetryRatio and DefaultRetryFloor.
	RetryRatio, RetryFloor float64
	// WriteTimeout bounds each write to a client (every stream event, a
	// whole non-streamed answer, an error body), so a client that stops
	// reading frees its request. Default 30s.
	WriteTimeout time.Duration
	// MaxInFlight bounds the model requests served at once; beyond it new
	// ones get 503 with Retry-After at once. 0 means no bound.
	MaxInFlight int64
	// CORSOrigins lists the browser origins allowed to call the proxy
	// ("*" for any). Empty disables CORS.
	CORSOrigins []string
	// BodyReadTimeout bounds reading a request body. Default 60s.
	BodyReadTimeout time.Duration
	// Ready reports whether the gateway's dependencies are reachable, for
	// /readyz. Nil means always ready.
	Ready func(context.Context) error
	// Now is injectable for tests.
	Now func() time.Time
}

// Handler serves the proxy listener.
type Handler struct {
	opts     Options
	engine   *gin.Engine
	inflight atomic.Int64
	bodies   bodyBudget
	inbound  map[llm.Endpoint]*inbound // the client dialect of each endpoint
	budgets  retryBudgets
	streams  streamPool // the stream relays' states and buffers
}

// New builds the proxy handler.
func New(o Options) *Handler {
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = 10 << 20
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 3
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = 30 * time.Second
	}
	if o.BodyReadTimeout <= 0 {
		o.BodyReadTimeout = 60 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Metrics == nil {
		o.Metrics = NewMetrics(nil)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Admitter == nil {
		o.Admitter = noAdmission{}
	}
	if o.MaxBufferedBytes <= 0 {
		o.MaxBufferedBytes = max(64*o.MaxBodyBytes, 1<<30)
	}
	if o.RetryRatio <= 0 {
		o.RetryRatio = DefaultRetryRatio
	}
	if o.RetryFloor <= 0 {
		o.RetryFloor = DefaultRetryFloor
	}
	h := &Handler{opts: o, inbound: inbounds()}
	h.budgets.ratio, h.budgets.floor = o.RetryRatio, o.RetryFloor
	h.bodies.max = o.MaxBufferedBytes
	e := gin.New()
	e.Use(h.recovery)
	if len(o.CORSOrigins) > 0 {
		e.Use(h.cors)
	}
	e.HandleMethodNotAllowed = false
	e.RedirectTrailingSlash = false
	e.RedirectFixedPath = false
	v1 := e.Group("/v1")
	v1.POST("/chat/completions", h.relay(llm.EndpointChat))
	v1.POST("/completions", h.relay(llm.EndpointCompletions))
	v1.POST("/embeddings", h.relay(llm.EndpointEmbeddings))
	v1.POST("/responses", h.relay(llm.EndpointResponses))
	v1.POST("/messages", h.relay(llm.EndpointMessages))
	v1.POST("/messages/count_tokens", h.countTokens)
	v1.GET("/models", h.models)
	v1.GET("/models/*model", h.model) // ids may contain slashes (org/model)
	// HEAD answers as GET without the body (net/http drops it); it was a
	// 404 for probes that use HEAD.
	for _, m := range []string{http.MethodGet, http.MethodHead} {
		e.Handle(m, "/healthz", func(c *gin.Context) { writeJSON(c.Writer, http.StatusOK, []byte(`{"status":"ok"}`)) })
		e.Handle(m, "/readyz", h.readyz)
	}
	e.NoRoute(func(c *gin.Context) {
		e := llm.Errorf(llm.KindNotFound, "unknown path %s %s", truncate(c.Request.Method, 16), truncate(c.Request.URL.Path, 256)) // not the whole 64 KiB a client may send
		e.Code = "unknown_url"
		writeError(c.Writer, e)
	})
	h.engine = e
	return h
}

// ReleaseMode puts gin, the HTTP framework of both listeners, in release
// mode unless GIN_MODE says otherwise: its debug mode prints every route to
// stdout, where the access log goes. The mode is process-global, so the
// program sets it once at start (cmd/sluice, through server.ReleaseMode),
// never a constructor.
func ReleaseMode() {
	if os.Getenv(gin.EnvGinMode) == "" {
		gin.SetMode(gin.ReleaseMode)
	}
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.engine.ServeHTTP(w, r) }

func (h *Handler) recovery(c *gin.Context) {
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			h.opts.Logger.Error("panic in proxy handler", "panic", v, "path", c.Request.URL.Path)
			if !c.Writer.Written() {
				writeError(c.Writer, llm.Errorf(llm.KindInternal, "internal error"))
			}
			c.Abort()
		}
	}()
	c.Next()
}

func (h *Handler) readyz(c *gin.Context) {
	if h.opts.Ready != nil {
		if err := h.opts.Ready(c.Request.Context()); err != nil {
			b := append([]byte(`{"status":"unavailable","error":`), appendJSONString(nil, err.Error())...)
			writeJSON(c.Writer, http.StatusServiceUnavailable, append(b, '}'))
			return
		}
	}
	writeJSON(c.Writer, http.StatusOK, []byte(`{"status":"ready"}`))
}

// newRequestID returns a fresh request id: "req_", 48 bits of Unix
// milliseconds and 80 random bits, in hex. The random part makes it
// unguessable; the time prefix makes ids ascend, so the usage table's
// unique index grows at its right edge instead of taking every insert on a
// random page (random keys made each usage insert several times dearer).
// It is the usage row's key; no client input ever chooses it.
func newRequestID() string {
	var b [16]byte
	ms := uint64(time.Now().UnixMilli())
	for i := 5; i >= 0; i-- {
		b[i] = byte(ms)
		ms >>= 8
	}
	_, _ = rand.Read(b[6:]) // crypto/rand.Read never fails on supported platforms
	var out [4 + 32]byte
	copy(out[:], "req_")
	hex.Encode(out[4:], b[:])
	return string(out[:])
}

// clientRequestID returns the client's X-Request-Id when it is a plain id
// of at most 128 bytes, else "". It is stored and echoed, never a key.
func clientRequestID(r *http.Request) string {
	if v := r.Header.Get("X-Request-Id"); v != "" && len(v) <= 128 && plainID(v) {
		return v
	}
	return ""
}

func plainID(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

func writeJSON(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

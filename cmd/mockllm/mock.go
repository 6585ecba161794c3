package main

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"
)

// mock is the mock provider: the run's configuration, its counters and the
// state shared by every wire format. Handlers for one wire format live in a
// file named after it (openai.go).
type mock struct {
	cfg      config
	wantAuth []byte // "Bearer <key>", nil when no key is required
	stats    stats
	// forced is the status POST /_mock/status set for every model
	// request without its own X-Mock-Status (0: normal).
	forced   atomic.Int32
	bufs     bufPool
	idPrefix string        // random per process, so ids differ between runs
	seq      atomic.Uint64 // request sequence for ids
	google   googleState   // Vertex access tokens issued by POST /token
	cache    promptCache   // --prompt-cache
	now      func() time.Time

	defaultContent string // content of a reply with cfg.Chunks chunks
	models         []modelObject
	modelsJSON     []byte // pre-encoded GET /v1/models body
}

// newMock returns a mock for the validated configuration cfg.
func newMock(cfg config) *mock {
	m := &mock{cfg: cfg, now: time.Now}
	if cfg.APIKey != "" {
		m.wantAuth = []byte("Bearer " + cfg.APIKey)
	}
	var r [4]byte
	_, _ = rand.Read(r[:])
	m.idPrefix = "mock" + hex.EncodeToString(r[:])
	m.defaultContent = string(appendContent(nil, cfg.Chunks))
	m.models = []modelObject{
		{ID: "gpt-4o-mini", Object: "model", Created: 1721172741, OwnedBy: "system"},
		{ID: "gpt-4o", Object: "model", Created: 1715367049, OwnedBy: "system"},
		{ID: "text-embedding-3-small", Object: "model", Created: 1705948997, OwnedBy: "system"},
		{ID: "mock-model", Object: "model", Created: 1700000000, OwnedBy: "mockllm"},
	}
	m.modelsJSON, _ = json.Marshal(modelList{Object: "list", Data: m.models})
	return m
}

// handler returns the mock's routes.
func (m *mock) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/chat/completions", m.counted(m.handleChat))
	mux.HandleFunc("POST /v1/completions", m.counted(m.handleCompletion))
	mux.HandleFunc("POST /v1/embeddings", m.counted(m.handleEmbeddings))
	mux.HandleFunc("GET /v1/models", m.counted(m.handleModels))
	mux.HandleFunc("POST /v1/responses", m.counted(m.handleResponses))
	mux.HandleFunc("POST /v1/messages", m.counted(m.handleMessages))
	mux.HandleFunc("POST /v1/messages/count_tokens", m.counted(m.handleCountTokens))
	mux.HandleFunc("/v1/messages/", m.counted(m.handleAnthropicUnknown))
	mux.HandleFunc("GET /v1/models/{model}", m.counted(m.handleModel))
	mux.HandleFunc("POST /model/{modelId}/converse", m.counted(m.handleConverse(false)))
	mux.HandleFunc("POST /model/{modelId}/converse-stream", m.counted(m.handleConverse(true)))
	m.azureRoutes(mux)
	m.geminiRoutes(mux)
	mux.HandleFunc("GET /healthz", handleHealthz)
	mux.HandleFunc("GET /_mock/stats", m.handleStats)
	mux.HandleFunc("POST /_mock/reset", m.handleReset)
	mux.HandleFunc("POST /_mock/status", m.handleForceStatus)
	mux.HandleFunc("/", m.counted(m.handleUnknown))
	return mux
}

// counted wraps a model handler with the request counters. A handler that
// panics (http.ErrAbortHandler) counts as aborted.
func (m *mock) counted(h func(http.ResponseWriter, *http.Request) outcome) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if f := m.forced.Load(); f != 0 && r.Header.Get(hdrStatus) == "" {
			r.Header.Set(hdrStatus, strconv.Itoa(int(f)))
		}
		m.stats.begin()
		o := outcomeAborted
		defer func() { m.stats.end(o) }()
		o = h(w, r)
	}
}

func handleHealthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = io.WriteString(w, "ok\n")
}

// authorized reports whether r carries the configured API key.
func (m *mock) authorized(r *http.Request) bool {
	if m.wantAuth == nil {
		return true
	}
	got := r.Header["Authorization"]
	return len(got) == 1 && subtle.ConstantTimeCompare([]byte(got[0]), m.wantAuth) == 1
}

// nextID returns the next request sequence number.
func (m *mock) nextID() uint64 { return m.seq.Add(1) }

// appendID appends prefix, the process id prefix and seq.
func (m *mock) appendID(b []byte, prefix string, seq uint64) []byte {
	b = append(b, prefix...)
	b = append(b, m.idPrefix...)
	return strconv.AppendUint(b, seq, 10)
}

// requestID returns the x-request-id value for seq.
func (m *mock) requestID(seq uint64) string {
	var a [48]byte
	return string(m.appendID(a[:0], "req_", seq))
}

// errBodyTooLarge is returned by readBody for bodies over maxBodyBytes.
var errBodyTooLarge = errors.New("request body too large")

// readBody reads the whole request body, at most maxBodyBytes.
func readBody(r *http.Request) ([]byte, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return nil, nil
	}
	if r.ContentLength > maxBodyBytes {
		return nil, errBodyTooLarge
	}
	if r.ContentLength >= 0 {
		body := make([]byte, r.ContentLength)
		if _, err := io.ReadFull(r.Body, body); err != nil {
			return nil, fmt.Errorf("read body: %w", err)
		}
		return body, nil
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBodyBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read body: %w", err)
	}
	if len(body) > maxBodyBytes {
		return nil, errBodyTooLarge
	}
	return body, nil
}

// stall waits until the client goes away.
func stall(r *http.Request) outcome {
	<-r.Context().Done()
	return outcomeCanceled
}

// abort drops the connection without finishing the response. What was
// written so far is flushed first when flush is true; the client then sees
// the response end early (unexpected EOF). On HTTP/1 the connection is
// hijacked and closed; where hijacking is not supported (HTTP/2) the handler
// aborts with http.ErrAbortHandler, which resets the stream.
func abort(w http.ResponseWriter, flush bool) outcome {
	rc := http.NewResponseController(w)
	if flush {
		_ = rc.Flush()
	}
	conn, _, err := rc.Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	_ = conn.Close()
	return outcomeAborted
}

// words is the reply text; chunk i carries words[i%len(words)].
var words = [...]string{"Hello ", "from ", "the ", "mock ", "LLM! ", "This ", "is ", "a ", "simulated ", "reply. "}

// appendContent appends the reply text of n chunks. The words need no JSON
// escaping.
func appendContent(b []byte, n int) []byte {
	for i := 0; i < n; i++ {
		b = append(b, words[i%len(words)]...)
	}
	return b
}

// setRetryAfter sends the X-Mock-Retry-After value, if any.
func setRetryAfter(h http.Header, b *behaviour) {
	if b.retryAfter != "" {
		h["Retry-After"] = []string{b.retryAfter}
	}
}

// Shared header values; net/http never modifies them.
var (
	ctJSON        = []string{"application/json"}
	ctEventStream = []string{"text/event-stream; charset=utf-8"}
	noCache       = []string{"no-cache"}
)

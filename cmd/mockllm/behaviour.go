package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Limits on per-run and per-request knobs, so a bad header cannot make the
// mock allocate without bound.
const (
	maxChunks        = 100_000
	maxTokens        = 1 << 30
	maxEmbeddingDims = 16_384
	maxBodyBytes     = 32 << 20
)

// config holds the command-line flags: the defaults for every request.
type config struct {
	Listen           string
	Latency          time.Duration // before response headers (non-stream: before the whole response)
	TTFT             time.Duration // before the first stream chunk
	ChunkDelay       time.Duration // between stream chunks
	Chunks           int           // content chunks per stream
	PromptTokens     int           // 0 = count words of the input
	CompletionTokens int           // 0 = number of chunks
	APIKey           string        // when set, requests must carry "Authorization: Bearer <key>"
	EmbeddingDims    int           // default embedding length
	Quiet            bool          // no start-up log line
	PromptCache      bool          // report cached tokens for repeated prompt prefixes (promptcache.go)
	// TailP is the probability that a request is slow: it waits TailDelay
	// more before its response headers (--ttft-tail p:d).
	TailP     float64
	TailDelay time.Duration
	// rand returns a number in [0, 1); nil is math/rand/v2.Float64.
	rand func() float64
}

// parseTail parses --ttft-tail's value p:d (0.05:2s).
func parseTail(v string) (float64, time.Duration, error) {
	ps, ds, ok := strings.Cut(v, ":")
	p, err1 := strconv.ParseFloat(ps, 64)
	d, err2 := time.ParseDuration(ds)
	if !ok || err1 != nil || err2 != nil || !(p >= 0 && p <= 1) || d < 0 {
		return 0, 0, fmt.Errorf("invalid --ttft-tail %q: want p:d with p in [0, 1] and d a non-negative duration (0.05:2s)", v)
	}
	return p, d, nil
}

// validate checks the flag values.
func (c *config) validate() error {
	switch {
	case c.Latency < 0 || c.TTFT < 0 || c.ChunkDelay < 0:
		return fmt.Errorf("--latency, --ttft and --chunk-delay must not be negative")
	case c.Chunks < 0 || c.Chunks > maxChunks:
		return fmt.Errorf("--chunks must be between 0 and %d", maxChunks)
	case c.PromptTokens < 0 || c.PromptTokens > maxTokens:
		return fmt.Errorf("--prompt-tokens must be between 0 and %d", maxTokens)
	case c.CompletionTokens < 0 || c.CompletionTokens > maxTokens:
		return fmt.Errorf("--completion-tokens must be between 0 and %d", maxTokens)
	case c.EmbeddingDims < 1 || c.EmbeddingDims > maxEmbeddingDims:
		return fmt.Errorf("--embedding-dims must be between 1 and %d", maxEmbeddingDims)
	}
	return nil
}

// Request headers that override the flags. They are in canonical form so
// they can index http.Header directly.
const (
	hdrLatency          = "X-Mock-Latency"
	hdrTTFT             = "X-Mock-Ttft"
	hdrChunkDelay       = "X-Mock-Chunk-Delay"
	hdrChunks           = "X-Mock-Chunks"
	hdrPromptTokens     = "X-Mock-Prompt-Tokens"
	hdrCompletionTokens = "X-Mock-Completion-Tokens"
	hdrStatus           = "X-Mock-Status"
	hdrRetryAfter       = "X-Mock-Retry-After"
	hdrDisconnectAfter  = "X-Mock-Disconnect-After"
	hdrStallAfter       = "X-Mock-Stall-After"
	hdrNoUsage          = "X-Mock-No-Usage"
	hdrEchoKey          = "X-Mock-Echo-Key"
	hdrContentFilter    = "X-Mock-Content-Filter"
)

// behaviour is the resolved behaviour of one request: the flags overridden
// by the request's X-Mock-* headers. It is shared by every wire format.
type behaviour struct {
	latency          time.Duration
	ttft             time.Duration
	chunkDelay       time.Duration
	chunks           int
	promptTokens     int // 0 = count the input
	completionTokens int // resolved: never 0 unless chunks is 0
	status           int // 0 = answer normally
	retryAfter       string
	disconnectAfter  int // -1 = off
	stallAfter       int // -1 = off
	noUsage          bool
	cachedTokens     int // of the prompt, read from the prompt cache (--prompt-cache)
	echoKey          bool
	contentFilter    bool // Azure: refuse the prompt as its content filter does

	// Set from the path, not from headers: the request came in on an
	// Azure OpenAI path (/openai/…), and the deployment it names ("" on
	// the /openai/v1/ surface and elsewhere).
	azure      bool
	deployment string
}

// resolve returns the behaviour for a request with header h. An invalid
// header value is an error naming the header; the caller answers 400.
func resolve(c *config, h http.Header) (behaviour, error) {
	b := behaviour{
		latency:          c.Latency,
		ttft:             c.TTFT,
		chunkDelay:       c.ChunkDelay,
		chunks:           c.Chunks,
		promptTokens:     c.PromptTokens,
		completionTokens: c.CompletionTokens,
		disconnectAfter:  -1,
		stallAfter:       -1,
	}
	var err error
	if v, ok := header(h, hdrLatency); ok {
		if b.latency, err = parseDuration(hdrLatency, v); err != nil {
			return b, err
		}
	}
	if c.TailP > 0 {
		r := c.rand
		if r == nil {
			r = rand.Float64
		}
		if r() < c.TailP {
			b.latency += c.TailDelay
		}
	}
	if v, ok := header(h, hdrTTFT); ok {
		if b.ttft, err = parseDuration(hdrTTFT, v); err != nil {
			return b, err
		}
	}
	if v, ok := header(h, hdrChunkDelay); ok {
		if b.chunkDelay, err = parseDuration(hdrChunkDelay, v); err != nil {
			return b, err
		}
	}
	if v, ok := header(h, hdrChunks); ok {
		if b.chunks, err = parseInt(hdrChunks, v, 0, maxChunks); err != nil {
			return b, err
		}
	}
	if v, ok := header(h, hdrPromptTokens); ok {
		if b.promptTokens, err = parseInt(hdrPromptTokens, v, 0, maxTokens); err != nil {
			return b, err
		}
	}
	if v, ok := header(h, hdrCompletionTokens); ok {
		if b.completionTokens, err = parseInt(hdrCompletionTokens, v, 0, maxTokens); err != nil {
			return b, err
		}
	}
	if b.completionTokens == 0 {
		b.completionTokens = b.chunks
	}
	if v, ok := header(h, hdrStatus); ok {
		if b.status, err = parseInt(hdrStatus, v, 200, 599); err != nil {
			return b, err
		}
		if b.status < 400 {
			if b.status != 200 {
				return b, fmt.Errorf("invalid %s header %q: must be 200 or 400-599", hdrStatus, v)
			}
			b.status = 0
		}
	}
	if v, ok := header(h, hdrRetryAfter); ok {
		if strings.ContainsAny(v, "\r\n") {
			return b, fmt.Errorf("invalid %s header", hdrRetryAfter)
		}
		b.retryAfter = v
	}
	if v, ok := header(h, hdrDisconnectAfter); ok {
		if b.disconnectAfter, err = parseInt(hdrDisconnectAfter, v, 0, maxChunks+4); err != nil {
			return b, err
		}
	}
	if v, ok := header(h, hdrStallAfter); ok {
		if b.stallAfter, err = parseInt(hdrStallAfter, v, 0, maxChunks+4); err != nil {
			return b, err
		}
	}
	if v, ok := header(h, hdrNoUsage); ok {
		if b.noUsage, err = parseBool(hdrNoUsage, v); err != nil {
			return b, err
		}
	}
	if v, ok := header(h, hdrEchoKey); ok {
		if b.echoKey, err = parseBool(hdrEchoKey, v); err != nil {
			return b, err
		}
	}
	if v, ok := header(h, hdrContentFilter); ok {
		if b.contentFilter, err = parseBool(hdrContentFilter, v); err != nil {
			return b, err
		}
	}
	return b, nil
}

// header returns the first value of the canonical header key.
func header(h http.Header, key string) (string, bool) {
	v := h[key]
	if len(v) == 0 {
		return "", false
	}
	return strings.TrimSpace(v[0]), true
}

func parseDuration(name, v string) (time.Duration, error) {
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("invalid %s header %q: want a non-negative Go duration such as 250ms", name, v)
	}
	return d, nil
}

func parseInt(name, v string, lo, hi int) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("invalid %s header %q: want an integer between %d and %d", name, v, lo, hi)
	}
	return n, nil
}

func parseBool(name, v string) (bool, error) {
	t, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("invalid %s header %q: want true or false", name, v)
	}
	return t, nil
}

// sleep waits for d or until ctx is done; it reports whether the full delay
// elapsed.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

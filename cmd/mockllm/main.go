// Command mockllm is a fast mock LLM provider that speaks OpenAI's wire
// format. Sluice's tests, benchmarks and quick-start demo use it as an
// upstream. It has its own wire types (it imports only the standard
// library), so a misreading of the format is not shared with the gateway.
//
// Usage:
//
//	go run ./cmd/mockllm --listen 127.0.0.1:8000 [flags]
//
// # Endpoints
//
//	POST /v1/chat/completions  chat.completion, or SSE chat.completion.chunk with "stream": true
//	POST /v1/completions       legacy text_completion, streamed the same way
//	POST /v1/embeddings        deterministic unit vectors from a hash of each input
//	GET  /v1/models            gpt-4o-mini, gpt-4o, text-embedding-3-small, mock-model
//	GET  /v1/models/{model}    one of those, or 404
//	POST /v1/messages          Anthropic Messages (anthropic.go): a message, or its SSE events with "stream": true
//	POST /v1/messages/count_tokens  {"input_tokens":N}
//	POST /model/{model}/converse         Bedrock Converse (bedrock.go): a Converse answer
//	POST /model/{model}/converse-stream  Bedrock ConverseStream: application/vnd.amazon.eventstream frames
//	GET  /healthz              "ok"
//	GET  /_mock/stats          {"requests","completed","canceled","aborted","in_flight","last_headers","last_body"}
//	POST /_mock/reset          zero the counters (in_flight is left alone) and forget the last request
//	POST /_mock/status?code=N  answer every model request with status N (400-599) as X-Mock-Status
//	                           does, unless the request sets X-Mock-Status itself; code=200 (or 0)
//	                           returns to normal. For outages that start and end while clients
//	                           (and health probes) keep asking
//
// Anthropic's endpoints check its headers instead: x-api-key (when --api-key
// is set; 401 authentication_error otherwise) and anthropic-version (400
// without it), and answer errors in its shape
// {"type":"error","error":{"type","message"}} (X-Mock-Status 529 is
// overloaded_error). A stream follows the documented order: message_start,
// content_block_start, ping, content_block_delta…, content_block_stop,
// message_delta (stop_reason, cumulative usage), message_stop. When the
// request offers tools and its last message is not a tool_result, the
// answer is one tool_use block for the first tool with input {} (stop_reason
// tool_use); when it uses cache_control, half the prompt is reported as
// cache_read_input_tokens. max_tokens (required, 400 without it) caps the
// reply (stop_reason max_tokens). With "thinking":{"type":"enabled"} a
// thinking block (thinking_delta, signature_delta) comes first, at index 0.
// Other /v1/messages/… paths are 404 not_found_error.
//
// Bedrock's endpoints check Authorization when --api-key is set: a SigV4
// header ("AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…",
// not verified) or "Bearer <key>" (a Bedrock API key); 403 otherwise. Errors
// are {"message"} with an x-amzn-ErrorType header (X-Mock-Status 429 is
// ThrottlingException, 5xx InternalServerException, 503
// ServiceUnavailableException). A stream is messageStart,
// contentBlockDelta…, contentBlockStop, messageStop, metadata (usage), each
// payload padded with a "p" member as Bedrock does; with tools (and a last
// block that is not a toolResult) one toolUse block for the first tool with
// input {}. X-Mock-Stream-Exception: throttlingException (or another
// ConverseStream exception type) sends messageStart, one delta and that
// exception frame.
//
// With --api-key set, every /v1/* request must carry the key; /healthz and
// /_mock/* never need it. Any other path answers 404 in OpenAI's error shape. Requests are counted in
// /_mock/stats except /_mock/* and /healthz. "completed" counts responses the
// mock wrote in full (error responses included), "canceled" those whose
// client went away (request context done) before the mock finished writing,
// and "aborted" those the mock dropped on purpose (X-Mock-Disconnect-After).
// last_headers holds the last counted request's headers (multiple values
// joined with ", "), Authorization included, and last_body its raw body.
//
// A chat reply is made of chunks, one word each ("Hello ", "from ", "the ",
// "mock ", "LLM! ", …); the non-stream content is the concatenation of the
// chunks a stream would send. A stream sends a role chunk (delta
// {"role":"assistant","content":""}), the content chunks, a chunk with an
// empty delta and finish_reason "stop", then — when the request sets
// stream_options.include_usage — a usage chunk with "choices":[] (all other
// chunks then carry "usage":null), and finally data: [DONE]. Every event is
// flushed on its own. Legacy completions stream the same way without the role
// chunk. Invalid JSON, or a missing model, messages (chat), prompt
// (completions) or input (embeddings) gives 400 in OpenAI's error shape. For
// embeddings, input may be a string, an array of strings, an array of token
// ids or an array of token-id arrays; "dimensions" and
// "encoding_format":"base64" (little-endian float32, standard base64) are
// honoured.
//
// Token counts: prompt tokens are the number of whitespace-separated words in
// the input (message contents, prompt, embedding input; a token array counts
// its length), at least 1; completion tokens are the number of content chunks.
// Both can be fixed by flag or header.
//
// # Flags
//
//	--listen addr             listen address (default 127.0.0.1:8000; port 0 picks a free port)
//	--latency d               delay before the response headers; non-stream: before the whole response (default 0)
//	--ttft d                  delay before the first stream chunk (default 0)
//	--chunk-delay d           delay between content chunks, and before the finish chunk (default 0)
//	--chunks n                content chunks per reply (default 5)
//	--prompt-tokens n         reported prompt tokens; 0 counts words of the input (default 0)
//	--completion-tokens n     reported completion tokens; 0 uses the number of chunks (default 0)
//	--api-key key             when set, requests must carry "Authorization: Bearer <key>", else 401
//	--embedding-dims n        embedding length when the request has no "dimensions" (default 8)
//	--quiet                   do not log the listen address at start
//	--prompt-cache            imitate a provider's prompt cache for chat completions and Messages:
//	                          the prompt tokens of the longest run of leading messages (Messages:
//	                          the system prompt first) this process saw in the last 5 minutes are
//	                          reported as prompt_tokens_details.cached_tokens (Messages:
//	                          cache_read_input_tokens, instead of half the prompt for cache_control)
//	--ttft-tail p:d           a slow tail: with probability p a request waits d more before its
//	                          response headers, so its first token comes d later (0.05:2s)
//
// Durations use Go syntax (250ms, 1.5s). The total time of a stream is about
// latency + ttft + chunks × chunk-delay.
//
// # Per-request headers
//
// Each header overrides the matching flag for one request. An invalid value
// gives 400 naming the header.
//
//	X-Mock-Latency: d            as --latency
//	X-Mock-TTFT: d               as --ttft
//	X-Mock-Chunk-Delay: d        as --chunk-delay
//	X-Mock-Chunks: n             as --chunks
//	X-Mock-Prompt-Tokens: n      as --prompt-tokens
//	X-Mock-Completion-Tokens: n  as --completion-tokens
//	X-Mock-Status: code          answer this status (400-599; 200 means normal) with an OpenAI error
//	                             body {"error":{"message","type","param","code"}}; type is
//	                             authentication_error (401, 403), rate_limit_error (429),
//	                             server_error (5xx) or invalid_request_error (other 4xx)
//	X-Mock-Retry-After: v        send v as Retry-After, with any status
//	X-Mock-Disconnect-After: n   stream: send n SSE events (the role chunk and [DONE] count), then drop
//	                             the connection; non-stream: 0 drops it before the headers, n>0 sends
//	                             the headers and drops it before the body
//	X-Mock-Stall-After: n        stream: send n SSE events, then stall until the client goes away;
//	                             non-stream: 0 stalls before the headers, n>0 after the headers
//	X-Mock-No-Usage: true        never send usage (no usage chunk even with include_usage; no usage
//	                             field in non-stream bodies)
//	X-Mock-Echo-Key: true        on an error, append the received Authorization header to the message
//	                             (to test that the gateway redacts upstream echoes of its key)
//
// The latency applies before everything, errors included. A dropped
// connection is closed after flushing what was written, so the client sees
// the body end early (HTTP/1: hijack and close; HTTP/2: stream reset).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintln(os.Stderr, "mockllm:", err)
		stop()
		os.Exit(1)
	}
}

// parseFlags parses the command line into a validated config.
func parseFlags(args []string, stderr io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("mockllm", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.Listen, "listen", "127.0.0.1:8000", "listen address")
	fs.DurationVar(&c.Latency, "latency", 0, "delay before the response headers (non-stream: before the whole response)")
	fs.DurationVar(&c.TTFT, "ttft", 0, "delay before the first stream chunk")
	fs.DurationVar(&c.ChunkDelay, "chunk-delay", 0, "delay between stream chunks")
	fs.IntVar(&c.Chunks, "chunks", 5, "content chunks per reply")
	fs.IntVar(&c.PromptTokens, "prompt-tokens", 0, "reported prompt tokens (0 = count words of the input)")
	fs.IntVar(&c.CompletionTokens, "completion-tokens", 0, "reported completion tokens (0 = number of chunks)")
	fs.StringVar(&c.APIKey, "api-key", "", "require Authorization: Bearer <key>")
	fs.IntVar(&c.EmbeddingDims, "embedding-dims", 8, "default embedding length")
	fs.BoolVar(&c.Quiet, "quiet", false, "do not log the listen address")
	fs.BoolVar(&c.PromptCache, "prompt-cache", false, "report cached tokens for chat and Messages prompts whose leading messages were seen in the last 5 minutes")
	fs.Func("ttft-tail", "a slow tail `p:d`: with probability p a request waits d more before its headers", func(v string) (err error) {
		c.TailP, c.TailDelay, err = parseTail(v)
		return err
	})
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	return c, c.validate()
}

// newServer returns the HTTP server for m. It sets no write timeout, since
// streams and stalls are meant to be slow, and no read timeout, since that
// would cancel request contexts of long responses.
func newServer(m *mock) *http.Server {
	return &http.Server{
		Handler:           m.handler(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    1 << 20,
	}
}

// run serves until ctx is done, then shuts down gracefully (5 s grace, then
// remaining connections, such as stalled ones, are closed).
func run(ctx context.Context, args []string, stderr io.Writer) error {
	cfg, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return err
	}
	srv := newServer(newMock(cfg))
	if !cfg.Quiet {
		fmt.Fprintf(stderr, "mockllm: listening on http://%s\n", ln.Addr())
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close()
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Command sluice-bench measures what Sluice adds on top of a provider.
//
// It builds cmd/mockllm and cmd/sluice into a temporary directory, starts
// both on free loopback ports (SQLite in the temporary directory, a generated
// admin key), seeds a provider, a model and a key through the admin API, and
// starts two yardsticks in front of the same mock: nginx as a plain reverse
// proxy (Debian's nginx-light, from a configuration generated in the
// temporary directory; skipped with a message when not installed) and a bare
// Go reverse proxy (the "goproxy" subcommand of this binary,
// httputil.NewSingleHostReverseProxy on an http.Server). Every phase then
// drives the same load at each target in turn — direct (the mock itself),
// nginx, goproxy, sluice, reversed in every second --rounds round:
//
//  1. open-streams: N paced streams held open through each target, and the
//     target's resident memory with them open against idle (MiB per 1,000
//     streams); run first, while the heaps are small;
//  2. closed-loop throughput: C keep-alive connections for D seconds, plain
//     and streamed;
//  3. open-loop latency: a fixed request rate, with latency measured from
//     each request's scheduled send time so a slow response is never hidden
//     (no coordinated omission);
//  4. streaming time to first token at a modest and a high fixed rate;
//  5. CPU time per request of each target's process(es) and their memory.
//
// The load runs in a separate process (the harness re-executes itself with
// the "load" subcommand) so that its CPU is not spent inside the harness. The
// load generator is a small HTTP/1.1 keep-alive client written on net.Conn
// with pre-built request bytes; net/http is not on the hot path.
//
// By default both sides speak OpenAI chat completions to an
// openai-compatible provider. --family anthropic-translated seeds an
// anthropic provider and sends OpenAI chat through Sluice (the translated
// lane) while the direct side sends the same chat as Anthropic Messages to
// the mock's /v1/messages; --family anthropic-raw sends Anthropic Messages
// both ways (the raw lane); nginx and goproxy are spoken to as the mock is.
// Streams are read in each side's own SSE dialect
// (first text delta, data: [DONE] or message_stop).
//
// Usage:
//
//	go run ./cmd/sluice-bench [--quick] [--json out.json] [flags]
//
// Run with -h for the flags. Results are printed as a Markdown table.
package main

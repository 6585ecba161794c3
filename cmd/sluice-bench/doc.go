// Command sluice-bench measures what Sluice adds on top of a provider.
//
// It builds cmd/mockllm and cmd/sluice into a temporary directory, starts
// both on free loopback ports (SQLite in the temporary directory, a generated
// admin key), seeds a provider, a model and a key through the admin API, and
// then drives the same load twice, once straight at the mock and once through
// Sluice:
//
//  1. closed-loop throughput: C keep-alive connections for D seconds;
//  2. open-loop latency: a fixed request rate, with latency measured from each
//     request's scheduled send time so a slow response is never hidden
//     (no coordinated omission);
//  3. streaming time to first token at a modest fixed rate;
//  4. the resident memory of the Sluice process at idle and after the load.
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
// both ways (the raw lane). Streams are read in each side's own SSE dialect
// (first text delta, data: [DONE] or message_stop).
//
// Usage:
//
//	go run ./cmd/sluice-bench [--quick] [--json out.json] [flags]
//
// Run with -h for the flags. Results are printed as a Markdown table.
package main

package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

// loadMain is the "load" subcommand: it runs one LoadSpec against one
// address and writes the LoadResult as JSON on stdout. The harness starts it
// as a separate process; the credential (the value of the --auth-header
// header) comes from $SLUICE_BENCH_AUTH.
func loadMain(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("sluice-bench load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var spec LoadSpec
	var headers headerList
	addr := fs.String("addr", "", "host:port to send to (loopback)")
	path := fs.String("path", "/v1/chat/completions", "request path")
	body := fs.String("body", "", "JSON request body")
	authHeader := fs.String("auth-header", "Authorization", "header that carries $"+authEnv)
	fs.Var(&headers, "header", `extra request header "Name: value" (repeatable; not for secrets)`)
	fs.StringVar(&spec.SSE, "sse", sseOpenAI, "streamed bodies' dialect: openai or anthropic")
	fs.StringVar(&spec.Mode, "mode", modeClosed, "closed or open")
	fs.IntVar(&spec.Conns, "conns", 64, "connections")
	fs.DurationVar(&spec.Duration, "duration", 10*time.Second, "measured duration")
	fs.DurationVar(&spec.Warmup, "warmup", 0, "unmeasured warm-up (closed loop)")
	fs.Float64Var(&spec.Rate, "rate", 0, "open loop: requests per second")
	fs.DurationVar(&spec.Timeout, "timeout", 30*time.Second, "per-request timeout")
	fs.BoolVar(&spec.Stream, "stream", false, "streamed (SSE) responses: measure time to first token")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *addr == "" || *body == "" {
		fmt.Fprintln(stderr, "sluice-bench load: --addr and --body are required")
		return 2
	}
	if _, ok := sseDialectOf(spec.SSE); !ok {
		fmt.Fprintf(stderr, "sluice-bench load: unknown --sse %q\n", spec.SSE)
		return 2
	}
	var auth string
	if v := os.Getenv(authEnv); v != "" {
		auth = *authHeader + ": " + v
	}
	spec.Target = newTarget(*addr, *path, []byte(*body), append([]string{auth}, headers...)...)

	// The run stops by itself; this bound only guards against a bug.
	limit := spec.Warmup + spec.Duration + spec.Timeout + 30*time.Second
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	res, err := RunLoad(ctx, spec)
	if err != nil {
		fmt.Fprintf(stderr, "sluice-bench load: %v\n", err)
		return 1
	}
	if err := json.NewEncoder(stdout).Encode(res); err != nil {
		fmt.Fprintf(stderr, "sluice-bench load: %v\n", err)
		return 1
	}
	return 0
}

// headerList collects repeated --header flags.
type headerList []string

func (h *headerList) String() string { return strings.Join(*h, ", ") }

// Set checks that v is a "Name: value" line without line breaks.
func (h *headerList) Set(v string) error {
	name, _, ok := strings.Cut(v, ":")
	if !ok || name == "" || strings.ContainsAny(v, "\r\n") || strings.ContainsAny(name, " \t") {
		return fmt.Errorf("want \"Name: value\" on one line, got %q", v)
	}
	*h = append(*h, v)
	return nil
}

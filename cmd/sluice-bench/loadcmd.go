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
//
// With --mode hold it opens --conns streams at once, writes a HoldReady
// line when each has had its first event, holds them until stdin reaches
// its end (or --hold-max passes), closes them and writes a HoldResult line.
func loadMain(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
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
	fs.StringVar(&spec.Mode, "mode", modeClosed, "closed, open or hold")
	holdMax := fs.Duration("hold-max", 10*time.Minute, "hold mode: release the streams after this long at the latest")
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

	if spec.Mode == modeHold {
		return holdMain(spec, *holdMax, stdin, stdout, stderr)
	}

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

// holdMain runs the hold mode of the load subcommand (see loadMain).
func holdMain(spec LoadSpec, holdMax time.Duration, stdin io.Reader, stdout, stderr io.Writer) int {
	ctx, cancel := context.WithTimeout(context.Background(), holdMax)
	defer cancel()
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	release := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, stdin) // the harness closes stdin to release
		close(release)
	}()
	enc := json.NewEncoder(stdout)
	res, err := runHold(ctx, spec, func(r HoldReady) { _ = enc.Encode(r) }, release)
	if err != nil {
		fmt.Fprintf(stderr, "sluice-bench load: %v\n", err)
		return 1
	}
	if err := enc.Encode(res); err != nil {
		fmt.Fprintf(stderr, "sluice-bench load: %v\n", err)
		return 1
	}
	return 0
}

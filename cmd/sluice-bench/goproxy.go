package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// goproxyIdlePerHost is the bare Go proxy's only departure from
// http.DefaultTransport: idle upstream connections kept, the same as
// nginx's "keepalive 256" (the default, 2, makes a proxy under 64
// concurrent requests open and close upstream connections all the time).
const goproxyIdlePerHost = 256

// goproxyMain is the "goproxy" subcommand: the bare Go reverse proxy the
// harness measures as a yardstick, httputil.NewSingleHostReverseProxy on a
// plain http.Server and nothing else. It serves until SIGINT or SIGTERM.
func goproxyMain(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("sluice-bench goproxy", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:0", "host:port to listen on")
	upstream := fs.String("upstream", "", "upstream base URL, e.g. http://127.0.0.1:8000")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	u, err := url.Parse(*upstream)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		fmt.Fprintf(stderr, "sluice-bench goproxy: --upstream must be an http(s) URL, got %q\n", *upstream)
		return 2
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintf(stderr, "sluice-bench goproxy: %v\n", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := serveGoProxy(ctx, ln, u); err != nil {
		fmt.Fprintf(stderr, "sluice-bench goproxy: %v\n", err)
		return 1
	}
	return 0
}

// newGoProxy returns the bare reverse proxy to upstream. It flushes
// text/event-stream answers after every write by itself.
func newGoProxy(upstream *url.URL) *httputil.ReverseProxy {
	rp := httputil.NewSingleHostReverseProxy(upstream)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = goproxyIdlePerHost
	rp.Transport = tr
	return rp
}

// fullDuplex lets the proxy's transport go on reading the request body
// after the answer's headers are written. Without it the HTTP/1 server
// closes the request body when the headers go out, and the transport,
// still checking the body it copied upstream, tears down the upstream
// connection in the middle of the answer: about 1% of streamed requests
// cut ("ReverseProxy read error during body copy: use of closed network
// connection", golang/go#40747).
func fullDuplex(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = http.NewResponseController(w).EnableFullDuplex()
		h.ServeHTTP(w, r)
	})
}

// serveGoProxy serves the proxy on ln until ctx is done, then closes it.
// ReadHeaderTimeout is the only server setting, so a connection that never
// sends a request is not held for ever; it does not touch the measurement.
func serveGoProxy(ctx context.Context, ln net.Listener, upstream *url.URL) error {
	srv := &http.Server{Handler: fullDuplex(newGoProxy(upstream)), ReadHeaderTimeout: 30 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		_ = srv.Close()
		if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	}
}

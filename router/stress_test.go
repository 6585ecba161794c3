package router

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// slowStream is an upstream that streams a chunk every 20 ms until the
// request is cancelled, counting the cancellations it sees.
type slowStream struct {
	cancelled atomic.Int64
	active    atomic.Int64
}

func (s *slowStream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.active.Add(1)
	defer s.active.Add(-1)
	w.Header().Set("Content-Type", "text/event-stream")
	for i := 0; i < 1000; i++ {
		if _, err := fmt.Fprintf(w, "data: {\"choices\":[{\"delta\":{\"content\":\"%d \"}}]}\n\n", i); err != nil {
			s.cancelled.Add(1)
			return
		}
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
			s.cancelled.Add(1)
			return
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// TestManyStreamsCancelledAtRandom is RELIABILITY.md's T1 at test scale:
// 100 concurrent streams whose clients leave at random times (some before
// the first byte). Every upstream request must be cancelled, and the
// gateway's goroutines must return to the baseline.
func TestManyStreamsCancelledAtRandom(t *testing.T) {
	up := &slowStream{}
	upSrv := httptest.NewServer(up)
	defer upSrv.Close()
	srv, r := newTestProxy(t, 5*time.Second, upSrv.URL)

	const n = 100
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Go(func() {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, "POST", srv.URL+"/v1/chat/completions", strings.NewReader(`{"model":"m","stream":true}`))
			req.Header.Set("Authorization", "Bearer "+testKey)
			after := time.Duration(rand.IntN(400)) * time.Millisecond
			time.AfterFunc(after, cancel)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return // cancelled before the response
			}
			br := bufio.NewReader(resp.Body)
			for {
				if _, err := br.ReadString('\n'); err != nil {
					break
				}
			}
			resp.Body.Close()
		})
	}
	wg.Wait()
	deadline := time.Now().Add(3 * time.Second)
	for up.active.Load() != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if a := up.active.Load(); a != 0 {
		t.Fatalf("%d upstream streams still open after every client left", a)
	}
	if c := up.cancelled.Load(); c == 0 {
		t.Fatal("no upstream saw a cancellation")
	}
	// No request handler may outlive its client: count goroutines still
	// inside the relay (other tests' idle connections don't matter here).
	relayDeadline := time.Now().Add(5 * time.Second)
	for relayGoroutines() > 0 && time.Now().Before(relayDeadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if g := relayGoroutines(); g > 0 {
		t.Fatalf("%d goroutines still in the relay after every client left", g)
	}
	// Every request that reached the gateway produced one usage record.
	r.mu.Lock()
	recorded := len(r.list)
	r.mu.Unlock()
	if recorded < int(up.cancelled.Load()) {
		t.Fatalf("%d usage records for %d cancelled upstream streams", recorded, up.cancelled.Load())
	}
}

// TestSlowReaderIsDropped: a client that stops reading must not hold the
// stream forever; the per-write deadline ends it and cancels the upstream.
func TestSlowReaderIsDropped(t *testing.T) {
	big := strings.Repeat("x", 32<<10)
	upstreamDone := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer close(upstreamDone)
		w.Header().Set("Content-Type", "text/event-stream")
		for i := 0; i < 4000; i++ { // ~128 MiB if nobody stops it
			if _, err := fmt.Fprintf(w, "data: {\"choices\":[{\"delta\":{\"content\":\"%s\"}}]}\n\n", big); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			if r.Context().Err() != nil {
				return
			}
		}
	}))
	defer up.Close()
	srv, r := newTestProxyWith(t, func(o *Options) { o.WriteTimeout = 300 * time.Millisecond }, 5*time.Second, up.URL)
	conn, err := net.Dial("tcp", strings.TrimPrefix(srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetReadBuffer(4096) // keep the kernel from absorbing the stream
	}
	body := `{"model":"m","stream":true}`
	fmt.Fprintf(conn, "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Length: %d\r\n\r\n%s", testKey, len(body), body)
	// Never read from conn.
	select {
	case <-upstreamDone:
	case <-time.After(5 * time.Second):
		t.Fatal("upstream still streaming 5s after the client stopped reading")
	}
	// The record follows once the usage of ~1 MiB of streamed text is
	// estimated, which takes seconds under -race.
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		r.mu.Lock()
		n := len(r.list)
		r.mu.Unlock()
		if n > 0 {
			if rec := r.last(); rec.Status != "client_cancelled" {
				t.Fatalf("record status %q", rec.Status)
			}
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("no usage record for the dropped stream")
}

// relayGoroutines counts goroutines whose stack is inside a proxied exchange.
func relayGoroutines() int {
	buf := make([]byte, 1<<20)
	n := runtime.Stack(buf, true)
	return strings.Count(string(buf[:n]), "router.(*exchange).serve")
}

// failingWriter accepts the headers and then fails every body write, as a
// client connection that broke without its request context ending yet.
type failingWriter struct {
	h      http.Header
	writes atomic.Int32
}

func (f *failingWriter) Header() http.Header { return f.h }
func (f *failingWriter) WriteHeader(int)     {}
func (f *failingWriter) Write(p []byte) (int, error) {
	f.writes.Add(1)
	return 0, errors.New("broken pipe")
}

// TestWriteErrorEndsStream: the first failed write must end the relay and
// cancel the upstream, without waiting for the request context.
func TestWriteErrorEndsStream(t *testing.T) {
	up := &slowStream{}
	upSrv := httptest.NewServer(up)
	defer upSrv.Close()
	srv, r := newTestProxy(t, 5*time.Second, upSrv.URL)
	_ = srv
	h := r.handler
	w := &failingWriter{h: http.Header{}}
	req := httptest.NewRequest("POST", "/v1/chat/completions", strings.NewReader(`{"model":"m","stream":true}`))
	req.Header.Set("Authorization", "Bearer "+testKey)
	done := make(chan struct{})
	go func() { h.ServeHTTP(w, req); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("relay kept streaming into a broken client")
	}
	if n := w.writes.Load(); n != 1 {
		t.Fatalf("%d writes after the first failure", n-1)
	}
	if rec := r.last(); rec.Status != "client_cancelled" {
		t.Fatalf("record status %q", rec.Status)
	}
}

// TestMaxInFlightSheds: beyond MaxInFlight, requests get 503 with
// Retry-After at once instead of queueing.
func TestMaxInFlightSheds(t *testing.T) {
	up := &slowStream{}
	upSrv := httptest.NewServer(up)
	defer upSrv.Close()
	srv, _ := newTestProxyWith(t, func(o *Options) { o.MaxInFlight = 2 }, 5*time.Second, upSrv.URL)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for i := 0; i < 2; i++ {
		req, _ := http.NewRequestWithContext(ctx, "POST", srv.URL+"/v1/chat/completions", strings.NewReader(`{"model":"m","stream":true}`))
		req.Header.Set("Authorization", "Bearer "+testKey)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if _, err := bufio.NewReader(resp.Body).ReadString('\n'); err != nil {
			t.Fatal(err)
		}
	}
	resp := post(t, srv.URL, `{"model":"m"}`)
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") != "1" {
		t.Fatalf("third request: %d retry-after %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	cancel()
}

// TestBodyBudgetBoundsHeldBodies: bodies being received count against
// MaxBufferedBytes; a client that sends most of a body and stalls holds its
// share, and a body that would spend more than the rest gets 503
// overloaded at once. Before the budget, each body was bounded but their
// sum was not: a thousand stalled near-maximal bodies held gigabytes.
func TestBodyBudgetBoundsHeldBodies(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"choices":[{"message":{"content":"ok"}}],"usage":{"prompt_tokens":1,"completion_tokens":1}}`)
	}))
	defer up.Close()
	srv, _ := newTestProxyWith(t, func(o *Options) { o.MaxBodyBytes = 48 << 10; o.MaxBufferedBytes = 64 << 10 }, 5*time.Second, up.URL)
	body := `{"model":"m","messages":[{"role":"user","content":"` + strings.Repeat("a", 40<<10) + `"}]}`

	// The first client sends all but the last byte, then stalls.
	pr, pw := io.Pipe()
	t.Cleanup(func() { pw.CloseWithError(errors.New("test over")) }) // before the server closes
	req, _ := http.NewRequest("POST", srv.URL+"/v1/chat/completions", pr)
	req.ContentLength = int64(len(body))
	req.Header.Set("Authorization", "Bearer "+testKey)
	first := make(chan *http.Response, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Error(err)
		}
		first <- resp
	}()
	if _, err := io.WriteString(pw, body[:len(body)-1]); err != nil {
		t.Fatal(err)
	}
	// io.Pipe's Write returns once the client's transport has the bytes,
	// not the handler: wait until the handler holds them, or a second
	// body could take the budget first and the first request get the 503.
	h := srv.Config.Handler.(*Handler)
	deadline := time.Now().Add(5 * time.Second)
	for h.bodies.used.Load() < int64(len(body)-1) {
		if time.Now().After(deadline) {
			t.Fatalf("the handler holds %d bytes of the first body", h.bodies.used.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
	var resp *http.Response
	for {
		resp = post(t, srv.URL, body)
		if resp.StatusCode == http.StatusServiceUnavailable || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(b), `"code":"overloaded"`) || resp.Header.Get("Retry-After") != "1" {
		t.Fatalf("second body while the first is held: %d %s; want 503 overloaded", resp.StatusCode, b)
	}
	// A small body still fits.
	if resp := post(t, srv.URL, `{"model":"m","messages":[{"role":"user","content":"hi"}]}`); resp.StatusCode != http.StatusOK {
		t.Fatalf("small body: %d", resp.StatusCode)
	}
	// Once the first request ends, its share is back.
	if _, err := io.WriteString(pw, body[len(body)-1:]); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	if r := <-first; r == nil || r.StatusCode != http.StatusOK {
		t.Fatalf("first request: %v", r)
	} else {
		r.Body.Close()
	}
	if resp := post(t, srv.URL, body); resp.StatusCode != http.StatusOK {
		t.Fatalf("body after the first ended: %d", resp.StatusCode)
	}
}

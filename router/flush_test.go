package router

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-ai/sluice/llm"
)

// flushWriter is a client's ResponseWriter that records what was written
// and each flush: flushes receives what the client had at each flush.
// With failAfter > 0, every write after that many bytes fails, as on a
// connection whose peer left.
type flushWriter struct {
	mu        sync.Mutex
	h         http.Header
	status    int
	body      bytes.Buffer
	flushed   int // flushes so far
	failAfter int
	flushes   chan string
}

func newFlushWriter() *flushWriter {
	return &flushWriter{h: http.Header{}, flushes: make(chan string, 10000)}
}

func (w *flushWriter) Header() http.Header { return w.h }
func (w *flushWriter) WriteHeader(code int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.status == 0 {
		w.status = code
	}
}

func (w *flushWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.status == 0 {
		w.status = 200
	}
	if w.failAfter > 0 && w.body.Len()+len(p) > w.failAfter {
		return 0, errors.New("connection reset by peer")
	}
	return w.body.Write(p)
}

func (w *flushWriter) Flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.flushed++
	w.flushes <- w.body.String()
}

func (w *flushWriter) result() (status, flushes int, body string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.status, w.flushed, w.body.String()
}

// serveDirect calls the proxy's handler with w as the client, returning a
// channel closed when the handler returns.
func serveDirect(t *testing.T, r *recs, w http.ResponseWriter, path, body string) <-chan struct{} {
	t.Helper()
	req := httptest.NewRequest("POST", path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+testKey)
	req.Header.Set("Content-Type", "application/json")
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.handler.ServeHTTP(w, req)
	}()
	return done
}

// waitFlushWith waits for a flush after which the client has want; the
// timeout only guards against a hang (an event held back forever).
func waitFlushWith(t *testing.T, w *flushWriter, want string) {
	t.Helper()
	guard := time.After(10 * time.Second)
	for {
		select {
		case got := <-w.flushes:
			if strings.Contains(got, want) {
				return
			}
		case <-guard:
			_, _, body := w.result()
			t.Fatalf("%q not flushed to the client while the upstream waits; client has %q", want, body)
		}
	}
}

func waitDone(t *testing.T, done <-chan struct{}) {
	t.Helper()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the request did not end")
	}
}

func openAIDelta(i int) string {
	return fmt.Sprintf("data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"tok%d \"}}]}\n\n", i)
}

func anthropicDelta(i int) string {
	return fmt.Sprintf("event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"tok%d \"}}\n\n", i)
}

const (
	anthropicHead = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"model\":\"m\",\"usage\":{\"input_tokens\":9,\"output_tokens\":1}}}\n\n" +
		"event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n"
	anthropicTail = "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n" +
		"event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":40}}\n\n" +
		"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"
	streamChat = `{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}`
)

// TestStreamBatchFlushedTogether: events that arrive in one upstream write
// reach the client complete and in order, in fewer flushes than events
// (all of them already in the relay's buffer when the first is written).
func TestStreamBatchFlushedTogether(t *testing.T) {
	const n = 40
	var raw, an strings.Builder
	for i := 0; i < n; i++ {
		raw.WriteString(openAIDelta(i))
		an.WriteString(anthropicDelta(i))
	}
	raw.WriteString("data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n")
	for _, lane := range []struct {
		name   string
		typ    llm.ProviderType
		events string
	}{
		{"raw", llm.ProviderOpenAICompatible, raw.String()},
		{"translated", llm.ProviderAnthropic, anthropicHead + an.String() + anthropicTail},
	} {
		t.Run(lane.name, func(t *testing.T) {
			up := httptest.NewServer(rawSSE(0, lane.events)) // one write, one flush
			defer up.Close()
			_, r := newTestProxyOf(t, lane.typ, nil, time.Second, up.URL)
			w := newFlushWriter()
			waitDone(t, serveDirect(t, r, w, "/v1/chat/completions", streamChat))
			status, flushes, body := w.result()
			if status != 200 || !strings.HasSuffix(body, "data: [DONE]\n\n") {
				t.Fatalf("status %d body %q", status, body)
			}
			if lane.name == "raw" && body != lane.events {
				t.Fatalf("body %q, want the upstream's events as sent", body)
			}
			at := 0
			for i := 0; i < n; i++ {
				j := strings.Index(body[at:], fmt.Sprintf("tok%d ", i))
				if j < 0 {
					t.Fatalf("tok%d missing or out of order in %q", i, body)
				}
				at += j
			}
			if flushes == 0 || flushes >= n/4 {
				t.Fatalf("%d flushes for %d events arriving together", flushes, n)
			}
			if rec := r.last(); rec.Status != llm.StatusOK || rec.TTFT <= 0 {
				t.Fatalf("record %+v", rec)
			}
		})
	}
}

// TestStreamLoneEventFlushedAtOnce: an event the upstream sends alone
// reaches the client before the upstream sends anything more — also when
// something the relay skips (a ping, an empty event, a comment) follows
// it in the same write. The upstream waits for the client to have the
// event; were it held back for the next one, both would wait forever
// (the test's guard fails it after 10 s).
func TestStreamLoneEventFlushedAtOnce(t *testing.T) {
	for _, lane := range []struct {
		name, first, rest, want string
		typ                     llm.ProviderType
	}{
		{"raw", openAIDelta(0), openAIDelta(1) + "data: [DONE]\n\n", "tok0 ", llm.ProviderOpenAICompatible},
		{"raw/then-empty-event", openAIDelta(0) + "data: \n\n", openAIDelta(1) + "data: [DONE]\n\n", "tok0 ", llm.ProviderOpenAICompatible},
		{"raw/then-comment", openAIDelta(0) + ": keepalive\n\n", openAIDelta(1) + "data: [DONE]\n\n", "tok0 ", llm.ProviderOpenAICompatible},
		{"translated", anthropicHead + anthropicDelta(0), anthropicDelta(1) + anthropicTail, `"content":"tok0 "`, llm.ProviderAnthropic},
		{"translated/then-ping", anthropicHead + anthropicDelta(0) + "event: ping\ndata: {\"type\":\"ping\"}\n\n", anthropicDelta(1) + anthropicTail, `"content":"tok0 "`, llm.ProviderAnthropic},
	} {
		t.Run(lane.name, func(t *testing.T) {
			next := make(chan struct{})
			up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/event-stream")
				fmt.Fprint(w, lane.first)
				w.(http.Flusher).Flush()
				select {
				case <-next:
				case <-r.Context().Done():
					return
				}
				fmt.Fprint(w, lane.rest)
			}))
			defer up.Close()
			_, r := newTestProxyOf(t, lane.typ, nil, time.Minute, up.URL) // the guard, not the idle timeout, ends a hang
			w := newFlushWriter()
			done := serveDirect(t, r, w, "/v1/chat/completions", streamChat)
			waitFlushWith(t, w, lane.want)
			if _, _, body := w.result(); strings.Contains(body, "tok1") {
				t.Fatalf("the upstream's second event before it was sent: %q", body)
			}
			close(next)
			waitDone(t, done)
			_, _, body := w.result()
			if !strings.Contains(body, "tok1 ") || !strings.HasSuffix(body, "data: [DONE]\n\n") {
				t.Fatalf("body %q", body)
			}
			if rec := r.last(); rec.Status != llm.StatusOK {
				t.Fatalf("record %+v", rec)
			}
		})
	}
}

// TestStreamClientWriteFailsMidBatch: a client whose connection fails in
// the middle of a batch ends the relay as a cancellation and cancels the
// upstream call, on both lanes.
func TestStreamClientWriteFailsMidBatch(t *testing.T) {
	var raw, an strings.Builder
	for i := 0; i < 200; i++ {
		raw.WriteString(openAIDelta(i))
		an.WriteString(anthropicDelta(i))
	}
	for _, lane := range []struct {
		name, events string
		typ          llm.ProviderType
	}{
		{"raw", raw.String(), llm.ProviderOpenAICompatible},
		{"translated", anthropicHead + an.String(), llm.ProviderAnthropic},
	} {
		t.Run(lane.name, func(t *testing.T) {
			cancelled := make(chan struct{})
			up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/event-stream")
				fmt.Fprint(w, lane.events)
				w.(http.Flusher).Flush()
				<-r.Context().Done() // never ends on its own
				close(cancelled)
			}))
			defer up.Close()
			_, r := newTestProxyOf(t, lane.typ, nil, 5*time.Second, up.URL)
			w := newFlushWriter()
			w.failAfter = 1000
			waitDone(t, serveDirect(t, r, w, "/v1/chat/completions", streamChat))
			select {
			case <-cancelled:
			case <-time.After(10 * time.Second):
				t.Fatal("the upstream call was not cancelled")
			}
			if rec := r.last(); rec.Status != llm.StatusClientCancelled {
				t.Fatalf("record %+v", rec)
			}
		})
	}
}

// TestIdleWatchActivityKeepsCallAlive: reads spaced under the idle
// timeout keep the call alive well past it (the timer re-arms for the
// rest of each gap instead of being reset per read), and a quiet gap of
// the idle timeout then cancels it as idle.
func TestIdleWatchActivityKeepsCallAlive(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w := watchIdle(100*time.Millisecond, cancel)
	defer w.stop()
	for i := 0; i < 10; i++ { // 300 ms of activity every 30 ms
		time.Sleep(30 * time.Millisecond)
		w.touch()
		if ctx.Err() != nil {
			t.Fatalf("cancelled after %d touches 30 ms apart (idle 100 ms)", i)
		}
	}
	select {
	case <-ctx.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("a quiet call was never cancelled")
	}
	if !w.fired.Load() || w.expired.Load() {
		t.Fatalf("fired %v expired %v", w.fired.Load(), w.expired.Load())
	}
}

// TestIdleWatchDeadlineDespiteActivity: a deadline cancels the call
// however lively; once cleared only quiet gaps count; a stopped watch
// never cancels.
func TestIdleWatchDeadlineDespiteActivity(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w := watchIdle(time.Hour, cancel)
	defer w.stop()
	w.until(time.Now().Add(50 * time.Millisecond))
	for ctx.Err() == nil {
		w.touch()
		time.Sleep(5 * time.Millisecond)
	}
	if !w.expired.Load() || w.fired.Load() {
		t.Fatalf("fired %v expired %v", w.fired.Load(), w.expired.Load())
	}

	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	w2 := watchIdle(200*time.Millisecond, cancel2)
	w2.until(time.Now().Add(20 * time.Millisecond))
	w2.clearDeadline()
	w2.touch()
	time.Sleep(60 * time.Millisecond) // past the cleared deadline, within idle
	if ctx2.Err() != nil {
		t.Fatal("a cleared deadline still cancelled the call")
	}
	w2.stop()
	time.Sleep(300 * time.Millisecond) // past the idle timeout
	if ctx2.Err() != nil || w2.fired.Load() {
		t.Fatal("a stopped watch cancelled the call")
	}
}

// TestIdleWatchTinyTimeout: a timer that fires at once (before watchIdle
// has returned) finds the watch complete and cancels the call as idle.
func TestIdleWatchTinyTimeout(t *testing.T) {
	for i := 0; i < 100; i++ {
		ctx, cancel := context.WithCancel(context.Background())
		w := watchIdle(time.Nanosecond, cancel)
		select {
		case <-ctx.Done():
		case <-time.After(10 * time.Second):
			t.Fatal("not cancelled")
		}
		if !w.fired.Load() {
			t.Fatal("not recorded as idle")
		}
		w.stop()
	}
}

package router

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sluice-ai/sluice/llm"
)

// rawSSE is an upstream that writes raw as its event stream, flushing
// after each piece and waiting gap between pieces.
func rawSSE(gap time.Duration, pieces ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for i, p := range pieces {
			if i > 0 && gap > 0 {
				select {
				case <-time.After(gap):
				case <-r.Context().Done():
					return
				}
			}
			_, _ = io.WriteString(w, p)
			w.(http.Flusher).Flush()
		}
	}
}

func TestStreamMultiLineDataKeepsPrefix(t *testing.T) {
	up := httptest.NewServer(rawSSE(0,
		"data: {\"id\":\"1\",\ndata: \"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"}}]}\n\n",
		"event: error\ndata: {\"error\":{\"message\":\"x\"},\ndata: \"x\":1}\n\n",
		"data: [DONE]\n\n"))
	defer up.Close()
	srv, _ := newTestProxy(t, time.Second, up.URL)
	resp := post(t, srv.URL, `{"model":"m","stream":true}`)
	b, _ := io.ReadAll(resp.Body)
	want := "data: {\"id\":\"1\",\ndata: \"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"}}]}\n\n" +
		"event: error\ndata: {\"error\":{\"message\":\"x\"},\ndata: \"x\":1}\n\n" +
		"data: [DONE]\n\n"
	if resp.StatusCode != 200 || string(b) != want {
		t.Fatalf("status %d body %q, want %q", resp.StatusCode, b, want)
	}
	got, err := readEvents(strings.NewReader(string(b)))
	if err != nil || len(got) != 3 || got[1].name != "error" {
		t.Fatalf("client reads %q, %v", got, err)
	}
}

func TestStreamCROnlyLineEndings(t *testing.T) {
	up := httptest.NewServer(rawSSE(0,
		"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"}}]}\r\r",
		"data: {\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":1}}\r\r",
		"data: [DONE]\r\r"))
	defer up.Close()
	srv, r := newTestProxy(t, time.Second, up.URL)
	resp := post(t, srv.URL, `{"model":"m","stream":true}`)
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(b) != "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"}}]}\n\ndata: [DONE]\n\n" {
		t.Fatalf("status %d body %q", resp.StatusCode, b)
	}
	if rec := r.last(); rec.Status != llm.StatusOK || rec.PromptTokens != 3 || rec.Estimated {
		t.Fatalf("record %+v", rec)
	}
}

func TestStreamKeepaliveCommentsForwardedAndCountAsActivity(t *testing.T) {
	// The idle timeout is 400 ms; the upstream is quiet but for comments
	// every 50 ms for 1.2 s between its two events.
	pieces := []string{"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"}}]}\n\n"}
	for i := 0; i < 24; i++ {
		pieces = append(pieces, fmt.Sprintf(": keepalive %d\n\n", i))
	}
	pieces = append(pieces, "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"b\"}}]}\n\n", "data: [DONE]\n\n")
	up := httptest.NewServer(rawSSE(50*time.Millisecond, pieces...))
	defer up.Close()
	srv, r := newTestProxy(t, 400*time.Millisecond, up.URL)
	resp := post(t, srv.URL, `{"model":"m","stream":true}`)
	b, _ := io.ReadAll(resp.Body)
	s := string(b)
	if !strings.HasSuffix(s, "data: [DONE]\n\n") || !strings.Contains(s, ": keepalive 23\n\n") || strings.Contains(s, "stream_broken") {
		t.Fatalf("body %q", s)
	}
	if rec := r.last(); rec.Status != llm.StatusOK {
		t.Fatalf("record %+v", rec)
	}
}

// Keepalive comments are activity, but they are held back with the headers
// until the first event: an upstream that sends nothing else must not hold
// the client past the provider's first-byte timeout (2 s in the test proxy).
func TestStreamCommentsOnlyBoundedByFirstByte(t *testing.T) {
	var pieces []string
	for i := 0; i < 100; i++ { // 5 s of comments, 50 ms apart
		pieces = append(pieces, fmt.Sprintf(": ping %d\n\n", i))
	}
	up := httptest.NewServer(rawSSE(50*time.Millisecond, pieces...))
	defer up.Close()
	srv, r := newTestProxy(t, 400*time.Millisecond, up.URL)
	resp := post(t, srv.URL, `{"model":"m","stream":true}`)
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusGatewayTimeout || !strings.Contains(string(b), "upstream_timeout") || strings.Contains(string(b), "ping") {
		t.Fatalf("status %d body %q", resp.StatusCode, b)
	}
	if rec := r.last(); rec.Status != llm.StatusError {
		t.Fatalf("record %+v", rec)
	}
}

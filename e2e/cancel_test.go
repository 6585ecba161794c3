package e2e

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3/option"
)

// waitMock polls the mock's stats until ok accepts them, or fails after d.
func waitMock(t *testing.T, m *mockLLM, d time.Duration, what string, ok func(mockStats) bool) mockStats {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		st := m.stats(t)
		if ok(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s; mock stats %+v", what, d, st)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// TestClientCancelReachesUpstream checks that a client that goes away
// cancels the upstream request, for streams and non-streams (test 7).
func TestClientCancelReachesUpstream(t *testing.T) {
	t.Parallel()
	m := startMock(t)
	g := startGateway(t, gwOptions{})
	g.addRoute(t, "slow-stream", m.URL, map[string]string{"X-Mock-Chunk-Delay": "200ms", "X-Mock-Chunks": "50"}, nil)
	g.addRoute(t, "slow-answer", m.URL, map[string]string{"X-Mock-Latency": "5s"}, &timeouts{FirstByte: "30s"})
	key := g.addKey(t, "cancel", nil)
	c := g.client(key.Key)

	t.Run("stream", func(t *testing.T) {
		before := m.stats(t)
		id := "e2e-cancel-stream-" + randHex(t, 4)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		s := c.Chat.Completions.NewStreaming(ctx, chatParams("slow-stream", "count slowly"), option.WithHeader("X-Request-Id", id))
		if !s.Next() {
			t.Fatalf("no first chunk: %v", s.Err())
		}
		cancel()
		s.Close()
		start := time.Now()
		st := waitMock(t, m, time.Second, "upstream cancel after client cancel", func(s mockStats) bool {
			return s.Canceled > before.Canceled && s.InFlight == 0
		})
		t.Logf("upstream saw the cancel after %s (stats %+v)", time.Since(start), st)

		rec := g.waitRecord(t, id)
		if rec.Status != "client_cancelled" {
			t.Errorf("usage row status = %q, want client_cancelled (row %+v)", rec.Status, rec)
		}
		if !rec.Stream {
			t.Errorf("usage row stream = false")
		}
		// The admin roll-up counts it as an error.
		g.waitUsage(t, "model", "slow-stream", func(r usageRow) bool { return r.Requests >= 1 && r.Errors >= 1 })
	})

	t.Run("non_stream", func(t *testing.T) {
		before := m.stats(t)
		id := "e2e-cancel-plain-" + randHex(t, 4)
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		_, err := c.Chat.Completions.New(ctx, chatParams("slow-answer", "take your time"), option.WithHeader("X-Request-Id", id))
		if err == nil {
			t.Fatalf("request succeeded; want a cancel")
		}
		start := time.Now()
		waitMock(t, m, time.Second, "upstream cancel after client cancel", func(s mockStats) bool {
			return s.Canceled > before.Canceled && s.InFlight == 0
		})
		t.Logf("upstream saw the cancel after %s", time.Since(start))
		rec := g.waitRecord(t, id)
		if rec.Status != "client_cancelled" {
			t.Errorf("usage row status = %q, want client_cancelled (row %+v)", rec.Status, rec)
		}
	})
}

// TestBrokenStreams checks streams that break or stall after the first
// chunk (test 8).
func TestBrokenStreams(t *testing.T) {
	t.Parallel()
	m := startMock(t)
	g := startGateway(t, gwOptions{})
	g.addRoute(t, "disconnect", m.URL, map[string]string{"X-Mock-Disconnect-After": "3"}, nil)
	g.addRoute(t, "stall", m.URL, map[string]string{"X-Mock-Stall-After": "2"}, &timeouts{Connect: "1s", FirstByte: "2s", Idle: "1s"})
	key := g.addKey(t, "broken", nil)

	t.Run("disconnect", func(t *testing.T) {
		var rb bodyRecorder
		c := g.client(key.Key, rb.middleware())
		id := "e2e-broken-" + randHex(t, 4)
		ctx := testCtx(t, 10*time.Second)
		var resp *http.Response
		s := c.Chat.Completions.NewStreaming(ctx, chatParams("disconnect", "one two three four"), option.WithHeader("X-Request-Id", id), option.WithResponseInto(&resp))
		n := 0
		for s.Next() {
			n++
		}
		err := s.Err()
		s.Close()
		if n == 0 {
			t.Fatalf("no chunk before the break: %v", err)
		}
		if err == nil {
			t.Fatalf("stream.Err() = nil after the upstream broke; body:\n%s", rb.last())
		}
		if !strings.Contains(err.Error(), "stream_broken") {
			t.Errorf("stream error %q does not mention stream_broken", err)
		}
		body := rb.last()
		if strings.Contains(body, "[DONE]") {
			t.Errorf("broken stream ends with [DONE]:\n%s", body)
		}
		if !strings.Contains(body, `"code":"stream_broken"`) {
			t.Errorf("no stream_broken error event:\n%s", body)
		}
		if resp != nil && resp.StatusCode != http.StatusOK {
			t.Errorf("status %d, want 200 (failure after the first byte)", resp.StatusCode)
		}
		rec := g.waitRecord(t, id)
		if rec.Status != "stream_broken" {
			t.Errorf("usage status = %q, want stream_broken", rec.Status)
		}
		if !rec.Estimated || rec.PromptTokens <= 0 || rec.CompletionTokens <= 0 {
			t.Errorf("usage row not estimated or no tokens: %+v", rec)
		}
	})

	t.Run("stall", func(t *testing.T) {
		var rb bodyRecorder
		c := g.client(key.Key, rb.middleware())
		id := "e2e-stall-" + randHex(t, 4)
		ctx := testCtx(t, 10*time.Second)
		start := time.Now()
		s := c.Chat.Completions.NewStreaming(ctx, chatParams("stall", "hello"), option.WithHeader("X-Request-Id", id))
		n := 0
		for s.Next() {
			n++
		}
		err := s.Err()
		s.Close()
		el := time.Since(start)
		if n == 0 {
			t.Fatalf("no chunk before the stall: %v", err)
		}
		if err == nil {
			t.Fatalf("stream.Err() = nil after a stall; body:\n%s", rb.last())
		}
		if el < 900*time.Millisecond || el > 2500*time.Millisecond {
			t.Errorf("stall reported after %s, want about 1-2 s (idle timeout 1s)", el)
		}
		if strings.Contains(rb.last(), "[DONE]") {
			t.Errorf("stalled stream ends with [DONE]")
		}
		if !strings.Contains(rb.last(), `data: {"error":`) {
			t.Errorf("stalled stream has no error event:\n%s", rb.last())
		}
		rec := g.waitRecord(t, id)
		if rec.Status == "ok" {
			t.Errorf("usage status for a stalled stream = ok: %+v", rec)
		}
	})
}

package e2e

import (
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/openai/openai-go/v3/option"
)

// TestGracefulShutdown checks that SIGTERM drains an in-flight stream and
// flushes its usage row (test 10).
func TestGracefulShutdown(t *testing.T) {
	t.Parallel()
	m := startMock(t)
	g := startGateway(t, gwOptions{})
	g.addRoute(t, "slow10", m.URL, map[string]string{"X-Mock-Chunks": "10", "X-Mock-Chunk-Delay": "100ms"}, nil)
	key := g.addKey(t, "drain", nil)

	var rb bodyRecorder
	c := g.client(key.Key, rb.middleware())
	id := "e2e-drain-" + randHex(t, 4)
	ctx := testCtx(t, 20*time.Second)
	s := c.Chat.Completions.NewStreaming(ctx, chatParams("slow10", "drain me"), option.WithHeader("X-Request-Id", id))
	if !s.Next() {
		t.Fatalf("no first chunk: %v", s.Err())
	}
	if err := g.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}
	var content strings.Builder
	for s.Next() {
		if ch := s.Current(); len(ch.Choices) > 0 {
			content.WriteString(ch.Choices[0].Delta.Content)
		}
	}
	if err := s.Err(); err != nil {
		t.Fatalf("stream broken by shutdown: %v", err)
	}
	s.Close()
	if !strings.Contains(rb.last(), "data: [DONE]") {
		t.Errorf("stream did not end with [DONE]:\n%s", rb.last())
	}
	if n := len(strings.Fields(content.String())); n != 9 && n != 10 {
		// 10 content chunks; the first may have come with the role chunk.
		t.Errorf("content %q: %d words after the first chunk, want 9 or 10", content.String(), n)
	}

	select {
	case <-g.done:
	case <-time.After(15 * time.Second):
		t.Fatalf("sluice did not exit after SIGTERM and a drained stream")
	}
	if g.err != nil {
		t.Errorf("sluice exit: %v\n%s", g.err, tail(g.output(), 2000))
	}

	g2 := startGateway(t, g.opts)
	rec := g2.waitRecord(t, id)
	if rec.Status != "ok" || rec.CompletionTokens <= 0 {
		t.Errorf("usage row after restart: %+v", rec)
	}
	g2.waitUsage(t, "model", "slow10", func(r usageRow) bool { return r.Requests == 1 })
}

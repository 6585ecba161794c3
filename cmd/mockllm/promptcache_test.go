package main

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestPromptCache: with --prompt-cache a repeated prefix of leading
// messages is reported as cached tokens (the longest seen), streamed or
// not; a new prefix, another model or an expired entry is not; without the
// flag nothing is.
func TestPromptCache(t *testing.T) {
	cfg := testConfig()
	cfg.PromptCache = true
	srv := newTestServer(t, cfg)
	sys := strings.Repeat("word ", 100)
	chat := func(model string, stream bool, msgs ...string) (prompt, cached int) {
		t.Helper()
		var sb strings.Builder
		fmt.Fprintf(&sb, `{"model":%q,"stream":%v,"stream_options":{"include_usage":true},"messages":[{"role":"system","content":%q}`, model, stream, sys)
		for _, m := range msgs {
			fmt.Fprintf(&sb, `,{"role":"user","content":%q}`, m)
		}
		sb.WriteString("]}")
		data := string(readAll(t, post(t, srv, "/v1/chat/completions", sb.String(), nil)))
		if stream {
			i := strings.LastIndex(data, `"usage":{`)
			if i < 0 {
				t.Fatalf("no usage in stream: %s", data)
			}
			data = "{" + data[i:strings.Index(data[i:], "}}")+i+2] + "}"
		}
		var r struct {
			Usage struct {
				Prompt  int `json:"prompt_tokens"`
				Details struct {
					Cached int `json:"cached_tokens"`
				} `json:"prompt_tokens_details"`
			} `json:"usage"`
		}
		decode(t, []byte(data), &r)
		return r.Usage.Prompt, r.Usage.Details.Cached
	}
	if _, c := chat("m", false, "one two"); c != 0 {
		t.Fatalf("first request cached %d; want 0", c)
	}
	if p, c := chat("m", false, "three"); c != 100 || p != 101 {
		t.Fatalf("same system, new turn: prompt %d cached %d; want 101, 100 (the system prompt)", p, c)
	}
	if _, c := chat("m", true, "one two", "four"); c != 102 {
		t.Fatalf("streamed longer prefix: cached %d; want 102 (system + first turn)", c)
	}
	if _, c := chat("other", false, "one two"); c != 0 {
		t.Fatalf("another model: cached %d; want 0", c)
	}
	m := newMock(cfg)
	now := time.Unix(1000, 0)
	m.now = func() time.Time { return now }
	body := `{"model":"m","messages":[{"role":"user","content":"a b c"}]}`
	m.cachedTokens([]byte(body), "m", true, 3)
	now = now.Add(promptCacheTTL)
	if c := m.cachedTokens([]byte(body), "m", true, 3); c != 0 {
		t.Fatalf("expired prefix cached %d; want 0", c)
	}
	off := newTestServer(t, testConfig())
	for range 2 {
		data := string(readAll(t, post(t, off, "/v1/chat/completions", body, nil)))
		if !strings.Contains(data, `"cached_tokens":0`) {
			t.Fatalf("without --prompt-cache: %s", data)
		}
	}
}

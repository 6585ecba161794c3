package main

import (
	"fmt"
	"net/http/httptest"
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

// TestPromptCacheAnthropic: Messages report a repeated system prompt as
// cache_read_input_tokens (input_tokens the rest); without the flag,
// cache_control still reads half the prompt.
func TestPromptCacheAnthropic(t *testing.T) {
	cfg := testConfig()
	cfg.PromptCache = true
	srv := newTestServer(t, cfg)
	sys := strings.Repeat("word ", 50)
	hdr := map[string]string{"anthropic-version": "2023-06-01"}
	msgs := func(turn string) string {
		return fmt.Sprintf(`{"model":"claude","max_tokens":10,"system":%q,"messages":[{"role":"user","content":%q}]}`, sys, turn)
	}
	usage := func(srv *httptest.Server, body string) (in, read int) {
		t.Helper()
		var r struct {
			Usage struct {
				In   int `json:"input_tokens"`
				Read int `json:"cache_read_input_tokens"`
			} `json:"usage"`
		}
		decode(t, readAll(t, post(t, srv, "/v1/messages", body, hdr)), &r)
		return r.Usage.In, r.Usage.Read
	}
	if _, read := usage(srv, msgs("one")); read != 0 {
		t.Fatalf("first request read %d from the cache; want 0", read)
	}
	if in, read := usage(srv, msgs("two three")); read != 50 || in != 2 {
		t.Fatalf("repeated system: input %d, read %d; want 2, 50", in, read)
	}
	legacy := newTestServer(t, testConfig())
	body := fmt.Sprintf(`{"model":"claude","max_tokens":10,"system":[{"type":"text","text":%q,"cache_control":{"type":"ephemeral"}}],"messages":[{"role":"user","content":"hi"}]}`, sys)
	if in, read := usage(legacy, body); read != 25 || in != 26 {
		t.Fatalf("cache_control without --prompt-cache: input %d, read %d; want 26, 25", in, read)
	}
}

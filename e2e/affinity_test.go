package e2e

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go/v2"
	aoption "github.com/anthropics/anthropic-sdk-go/v2/option"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
)

// Prices of the affinity demo's deployments (USD per million tokens).
const (
	affInPrice     = 1.0
	affCachedPrice = 0.1
	affOutPrice    = 4.0
)

// addAffinityModel creates model name (upstream model up) on providers
// with weighted round-robin and the given cache_affinity.
func (g *gateway) addAffinityModel(t testing.TB, name, up string, affinity map[string]any, providers ...string) {
	t.Helper()
	deps := make([]map[string]any, 0, len(providers))
	for _, p := range providers {
		deps = append(deps, map[string]any{"provider": p, "model": up, "weight": 1,
			"input_price_per_mtok": affInPrice, "output_price_per_mtok": affOutPrice, "cached_input_price_per_mtok": affCachedPrice})
	}
	body := map[string]any{"name": name, "deployments": deps, "strategy": "weighted"}
	if affinity != nil {
		body["cache_affinity"] = affinity
	}
	g.adminOK(t, http.MethodPost, "/admin/models", body, nil)
}

// convStats are the figures of one run of conversations.
type convStats struct {
	requests, hits       int
	prompt, cached, comp int64
	// switches counts the turns after the first that went to another
	// deployment than the conversation's previous turn.
	switches int
	costUSD  float64
}

func (s convStats) String() string {
	return fmt.Sprintf("requests %d, cache hits %d (%.0f%%), cached tokens %d of %d prompt (%.1f%%), deployment switches %d, cost $%.6f",
		s.requests, s.hits, 100*float64(s.hits)/float64(s.requests), s.cached, s.prompt,
		100*float64(s.cached)/float64(s.prompt), s.switches, s.costUSD)
}

// runConversations runs convs conversations of turns turns each, one
// after another (turn by turn within a conversation), each with its own
// long system prompt (a document of about 1 100 words, 6 KB), sending the
// requests to the gateways' clients in turn. after, when not nil, runs
// after each answer.
func runConversations(t *testing.T, clients []*openai.Client, model string, convs, turns int, after func()) convStats {
	t.Helper()
	ctx := testCtx(t, 2*time.Minute)
	var s convStats
	n := 0
	for c := range convs {
		doc := strings.Repeat(fmt.Sprintf("Document %d, clause: the tenant's answer is %d. ", c, c*7), 120)
		msgs := []openai.ChatCompletionMessageParamUnion{openai.SystemMessage(doc)}
		prev := ""
		for turn := range turns {
			msgs = append(msgs, openai.UserMessage(fmt.Sprintf("Question %d of conversation %d?", turn, c)))
			var hr *http.Response
			resp, err := clients[n%len(clients)].Chat.Completions.New(ctx,
				openai.ChatCompletionNewParams{Model: openai.ChatModel(model), Messages: msgs}, option.WithResponseInto(&hr))
			n++
			if err != nil {
				t.Fatalf("%s conversation %d turn %d: %v", model, c, turn, describe(err))
			}
			dep := hr.Header.Get("X-Sluice-Deployment")
			if turn > 0 && dep != prev {
				s.switches++
			}
			prev = dep
			u := resp.Usage
			cached := u.PromptTokensDetails.CachedTokens
			s.requests++
			if cached > 0 {
				s.hits++
			}
			s.prompt += u.PromptTokens
			s.cached += cached
			s.comp += u.CompletionTokens
			s.costUSD += (float64(u.PromptTokens-cached)*affInPrice + float64(cached)*affCachedPrice + float64(u.CompletionTokens)*affOutPrice) / 1e6
			msgs = append(msgs, openai.AssistantMessage(resp.Choices[0].Message.Content))
			if after != nil {
				after()
			}
		}
	}
	return s
}

// TestPromptCacheAffinity shows the effect of prompt-cache affinity: three
// mockllm deployments imitating a provider's prompt cache
// (--prompt-cache), weighted round-robin, six conversations of four turns
// each with its own 6 KB system prompt. Without affinity round-robin sends
// a conversation's turns to a new deployment each time, whose cache has
// not seen its prefix; with it every turn after the first goes where the
// conversation's prefix is cached. Then the same across two replicas
// sharing Redis, alternating requests between them.
func TestPromptCacheAffinity(t *testing.T) {
	t.Parallel()
	const convs, turns = 6, 4
	mocks := []*mockLLM{startMock(t, "--prompt-cache"), startMock(t, "--prompt-cache"), startMock(t, "--prompt-cache")}
	setup := func(g *gateway) {
		for i, m := range mocks {
			g.addProvider(t, provider{Name: fmt.Sprintf("mock%d", i), BaseURL: m.URL + "/v1", APIKey: "sk-upstream-" + randHex(t, 8)})
		}
	}
	t.Run("single", func(t *testing.T) {
		g := startGateway(t, gwOptions{})
		setup(g)
		g.addAffinityModel(t, "aff-off", "up-off", map[string]any{"enabled": false}, "mock0", "mock1", "mock2")
		g.addAffinityModel(t, "aff-on", "up-on", nil, "mock0", "mock1", "mock2")
		k := g.addKey(t, "affinity", nil)
		cl := []*openai.Client{g.client(k.Key)}
		off := runConversations(t, cl, "aff-off", convs, turns, nil)
		on := runConversations(t, cl, "aff-on", convs, turns, nil)
		t.Logf("affinity off: %v", off)
		t.Logf("affinity on:  %v", on)
		// Off: the first three turns of each conversation reach three
		// different deployments (all misses), the fourth the first one's.
		if off.hits != convs*(turns-3) || off.switches != convs*(turns-1) {
			t.Errorf("affinity off: %v; want %d hits and a switch every turn", off, convs*(turns-3))
		}
		// On: only first turns miss; no conversation changes deployment.
		if on.hits != convs*(turns-1) || on.switches != 0 {
			t.Errorf("affinity on: %v; want %d hits and no switch", on, convs*(turns-1))
		}
		if on.cached < 2*off.cached || on.costUSD >= off.costUSD {
			t.Errorf("affinity on saved too little: cached %d vs %d, cost $%.6f vs $%.6f", on.cached, off.cached, on.costUSD, off.costUSD)
		}
		// The gateway's own accounting prices the cached tokens at the
		// cache-read price too.
		for _, want := range []struct {
			model string
			s     convStats
		}{{"aff-off", off}, {"aff-on", on}} {
			r := g.waitUsage(t, "model", want.model, func(r usageRow) bool { return r.Requests == int64(convs*turns) })
			if r.CachedTokens != want.s.cached || r.Cost < want.s.costUSD*0.99 || r.Cost > want.s.costUSD*1.01 {
				t.Errorf("%s usage: cached %d, cost %v; want %d, $%.6f", want.model, r.CachedTokens, r.Cost, want.s.cached, want.s.costUSD)
			}
		}
	})
	t.Run("replicas_redis", func(t *testing.T) {
		// A Redis of its own, so the test can count the affinity keys.
		addr := freeAddr(t)
		startPrivateRedis(t, addr)
		shared := gwOptions{DatabaseURL: freshPostgres(t), RedisURL: "redis://" + addr + "/0", AdminKey: randHex(t, 32),
			Env: []string{"SLUICE_ENCRYPTION_KEY=" + randHex(t, 32)}}
		a, b := startGateway(t, shared), startGateway(t, shared)
		setup(a)
		// A fresh upstream model name: the mocks' caches of the single
		// gateway's run do not count.
		up := "up-replicas-" + randHex(t, 4)
		a.addAffinityModel(t, "aff-on", up, nil, "mock0", "mock1", "mock2")
		k := a.addKey(t, "affinity", nil)
		a.waitKeyUsable(t, k.Key)
		b.waitKeyUsable(t, k.Key)
		b.waitModel(t, k.Key, "aff-on")
		// The write of a turn's prefix is asynchronous (off the request
		// path): each answer is followed by a wait until its new prefix key
		// (every turn has one) is in Redis, so the next turn, on the other
		// replica, finds it. Without the wait a turn may rarely miss it.
		rc := dialRedis(t, "redis://"+addr)
		count := func() int {
			r := rc.do(t, "EVAL", "return #redis.call('KEYS', ARGV[1])", "0", "sluice:aff:*")
			n, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(r, ":")))
			if err != nil {
				t.Fatalf("redis: %q", r)
			}
			return n
		}
		seen := count()
		after := func() {
			deadline := time.Now().Add(10 * time.Second)
			for n := count(); n <= seen; n = count() {
				if time.Now().After(deadline) {
					t.Fatalf("no new affinity key in Redis after an answer (%d keys)", n)
				}
				time.Sleep(5 * time.Millisecond)
			}
			seen = count()
		}
		on := runConversations(t, []*openai.Client{a.client(k.Key), b.client(k.Key)}, "aff-on", convs, turns, after)
		t.Logf("affinity on, 2 replicas + Redis: %v", on)
		if on.hits != convs*(turns-1) || on.switches != 0 {
			t.Errorf("affinity across replicas: %v; want %d hits and no switch", on, convs*(turns-1))
		}
	})
}

// waitModel polls GET /v1/models/name until the gateway knows the model.
func (g *gateway) waitModel(t testing.TB, key, name string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		req, _ := http.NewRequest(http.MethodGet, g.Proxy+"/v1/models/"+name, nil)
		req.Header.Set("Authorization", "Bearer "+key)
		code := 0
		if resp, err := http.DefaultClient.Do(req); err == nil {
			code = resp.StatusCode
			resp.Body.Close()
		}
		if code == http.StatusOK {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("model %s not on %s within 5s (status %d)", name, g.Proxy, code)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// runMessagesConversations is runConversations on POST /v1/messages with
// the Anthropic SDK: the document is the top-level system prompt.
func runMessagesConversations(t *testing.T, c *anthropic.Client, model string, convs, turns int) convStats {
	t.Helper()
	ctx := testCtx(t, 2*time.Minute)
	var s convStats
	for conv := range convs {
		doc := strings.Repeat(fmt.Sprintf("Document %d, clause: the tenant's answer is %d. ", conv, conv*7), 120)
		var msgs []anthropic.MessageParam
		prev := ""
		for turn := range turns {
			msgs = append(msgs, anthropic.NewUserMessage(anthropic.NewTextBlock(fmt.Sprintf("Question %d of conversation %d?", turn, conv))))
			var hr *http.Response
			msg, err := c.Messages.New(ctx, anthropic.MessageNewParams{Model: anthropic.Model(model), MaxTokens: 256,
				System: []anthropic.TextBlockParam{{Text: doc}}, Messages: msgs}, aoption.WithResponseInto(&hr))
			if err != nil {
				t.Fatalf("%s conversation %d turn %d: %v", model, conv, turn, err)
			}
			dep := hr.Header.Get("X-Sluice-Deployment")
			if turn > 0 && dep != prev {
				s.switches++
			}
			prev = dep
			u := msg.Usage
			s.requests++
			if u.CacheReadInputTokens > 0 {
				s.hits++
			}
			s.prompt += u.InputTokens + u.CacheReadInputTokens
			s.cached += u.CacheReadInputTokens
			s.comp += u.OutputTokens
			s.costUSD += (float64(u.InputTokens)*affInPrice + float64(u.CacheReadInputTokens)*affCachedPrice + float64(u.OutputTokens)*affOutPrice) / 1e6
			msgs = append(msgs, anthropic.NewAssistantMessage(anthropic.NewTextBlock(messageText(msg))))
		}
	}
	return s
}

// TestPromptCacheAffinityMessages is TestPromptCacheAffinity's single
// gateway run on Anthropic's Messages API (top-level system prompt,
// cache_read_input_tokens) with anthropic providers.
func TestPromptCacheAffinityMessages(t *testing.T) {
	t.Parallel()
	const convs, turns = 6, 4
	g := startGateway(t, gwOptions{})
	for i := range 3 {
		m := startMock(t, "--prompt-cache")
		g.addProvider(t, provider{Name: fmt.Sprintf("claude%d", i), Type: "anthropic", BaseURL: m.URL, APIKey: "sk-ant-" + randHex(t, 8)})
	}
	g.addAffinityModel(t, "claude-off", "claude-up-off", map[string]any{"enabled": false}, "claude0", "claude1", "claude2")
	g.addAffinityModel(t, "claude-on", "claude-up-on", nil, "claude0", "claude1", "claude2")
	k := g.addKey(t, "affinity", nil)
	c := g.anthropicClient(k.Key)
	off := runMessagesConversations(t, c, "claude-off", convs, turns)
	on := runMessagesConversations(t, c, "claude-on", convs, turns)
	t.Logf("messages, affinity off: %v", off)
	t.Logf("messages, affinity on:  %v", on)
	if off.hits != convs*(turns-3) || off.switches != convs*(turns-1) {
		t.Errorf("affinity off: %v; want %d hits and a switch every turn", off, convs*(turns-3))
	}
	if on.hits != convs*(turns-1) || on.switches != 0 {
		t.Errorf("affinity on: %v; want %d hits and no switch", on, convs*(turns-1))
	}
	if on.cached < 2*off.cached || on.costUSD >= off.costUSD {
		t.Errorf("affinity on saved too little: cached %d vs %d, cost $%.6f vs $%.6f", on.cached, off.cached, on.costUSD, off.costUSD)
	}
}

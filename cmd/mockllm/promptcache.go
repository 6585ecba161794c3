package main

import (
	"encoding/json"
	"hash/fnv"
	"sync"
	"time"
)

// promptCache imitates a provider's prompt cache (--prompt-cache): it
// remembers, for promptCacheTTL, a hash of every message-boundary prefix
// of the chat and Messages requests it served (the first message, the first two, …,
// all of them, each with the model); a request whose longest such prefix
// was seen reports that prefix's prompt tokens as
// usage.prompt_tokens_details.cached_tokens. Each mockllm process is one
// cache, as each provider deployment (credential) is. It holds at most
// promptCacheMax prefixes: when full, expired ones are dropped, and if
// none are, all are (a flood of unique prompts cannot grow it).
type promptCache struct {
	mu   sync.Mutex
	seen map[uint64]time.Time // prefix hash → expiry
}

const (
	promptCacheTTL = 5 * time.Minute
	promptCacheMax = 100_000
)

// cachedTokens records the prefixes of a chat request with raw messages
// msgs (words[i] the prompt tokens of message i; nil to share prompt out
// by bytes) and returns the prompt tokens of the longest one seen before,
// at most prompt.
func (c *promptCache) cachedTokens(now time.Time, model string, msgs []json.RawMessage, words []int, prompt int) int {
	total := 0
	for _, m := range msgs {
		total += len(m)
	}
	h := fnv.New64a()
	h.Write([]byte(model))
	hashes := make([]uint64, len(msgs))
	for i, m := range msgs {
		h.Write([]byte{0})
		h.Write(m)
		hashes[i] = h.Sum64()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.seen == nil {
		c.seen = make(map[uint64]time.Time)
	}
	hit := -1
	for i, k := range hashes {
		if until, ok := c.seen[k]; ok && now.Before(until) {
			hit = i
		}
	}
	if len(c.seen)+len(hashes) > promptCacheMax {
		for k, until := range c.seen {
			if !now.Before(until) {
				delete(c.seen, k)
			}
		}
		if len(c.seen)+len(hashes) > promptCacheMax {
			clear(c.seen)
		}
	}
	for _, k := range hashes {
		c.seen[k] = now.Add(promptCacheTTL)
	}
	if hit < 0 {
		return 0
	}
	cached, bytes := 0, 0
	for i := 0; i <= hit; i++ {
		if words != nil {
			cached += words[i]
		}
		bytes += len(msgs[i])
	}
	if words == nil && total > 0 {
		cached = int(int64(prompt) * int64(bytes) / int64(total))
	}
	return min(cached, prompt)
}

// cachedTokens is the prompt cache's answer for a chat request body:
// countWords says the prompt is counted in words (else it is fixed and
// shared out by bytes).
func (m *mock) cachedTokens(body []byte, model string, countWords bool, prompt int) int {
	var raw struct {
		Messages []json.RawMessage `json:"messages"`
	}
	if json.Unmarshal(body, &raw) != nil {
		return 0
	}
	var words []int
	if countWords {
		var req chatRequest
		if json.Unmarshal(body, &req) != nil || len(req.Messages) != len(raw.Messages) {
			return 0
		}
		words = make([]int, len(req.Messages))
		for i, msg := range req.Messages {
			words[i] = int(msg.Content)
		}
	}
	return m.cache.cachedTokens(m.now(), model, raw.Messages, words, prompt)
}

// anthropicCached is the prompt cache's answer for a Messages request: the
// system prompt counts as the first message.
func (m *mock) anthropicCached(body []byte, c anthropicCall, countWords bool, prompt int) int {
	var raw struct {
		Messages []json.RawMessage `json:"messages"`
	}
	if json.Unmarshal(body, &raw) != nil || len(raw.Messages) != len(c.req.Messages) {
		return 0
	}
	msgs := make([]json.RawMessage, 0, len(raw.Messages)+1)
	var words []int
	if countWords {
		words = make([]int, 0, len(raw.Messages)+1)
	}
	if len(c.req.System) > 0 {
		msgs = append(msgs, c.req.System)
		if countWords {
			words = append(words, contentWords(c.req.System))
		}
	}
	for i, msg := range raw.Messages {
		msgs = append(msgs, msg)
		if countWords {
			words = append(words, contentWords(c.req.Messages[i].Content))
		}
	}
	return m.cache.cachedTokens(m.now(), c.req.Model, msgs, words, prompt)
}

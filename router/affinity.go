package router

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"time"

	"github.com/sluice-ai/sluice/balancer"
	"github.com/sluice-ai/sluice/llm"
	"github.com/sluice-ai/sluice/wire/jsonspan"
)

// Prompt-cache affinity. Providers discount a prompt prefix they have
// cached (Anthropic, OpenAI, Gemini, DeepSeek), but only when the same
// prefix reaches the same deployment, that is the same credential. The
// router keys a request's prompt prefix, asks the AffinityStore which
// deployment served that prefix last, hands it to the balancer as
// balancer.Request.Affinity (which prefers it while it is available, see
// balancer/affinity.go), and after a successful answer remembers the
// prefix for the deployment that answered.
//
// The prefix is the system prompt (system, instructions,
// systemInstruction) followed by the conversation's elements (messages,
// input, contents) before its last element whose role is "user"; a
// conversation without one keeps all but its last element, and a string
// conversation (a Responses input string) is all last turn. Its key is
// SHA-256 over the model's id, the system prompt's raw JSON and each
// element's raw JSON (NUL-separated: JSON never holds a raw NUL),
// truncated to 128 bits, hex: no client value is a key verbatim, and
// models never share keys. Raw bytes, so two clients that serialize the
// same prompt differently get different keys (as they would get different
// provider cache entries for a different byte order anyway; whitespace
// aside, this is rare: one SDK is deterministic).
//
// A request is keyed only when affinity is on for the model (the default),
// the model has at least two deployments, and the estimated prefix is at
// least the model's MinTokens; the estimate is bytes ÷ 4, and a request
// whose system prompt and conversation together are shorter than that
// pays a length check and nothing else (no scan, no hash, no store call).
// Keying is one linear pass over the conversation (the body was validated
// by parseRequest; the element boundaries are found with jsonspan) and one
// SHA-256 pass over the prefix.
//
// Two keys are looked up, longest first: the prefix before the last user
// turn, and the prefix before the one ahead of it. A conversation's next
// request extends the prefix by the assistant's answer and the new user
// turn, so its longest key is new, while its second key is the previous
// request's longest key: a conversation stays on its deployment turn after
// turn. Only the longest key is remembered.

// AffinityStore remembers which deployment last served a prompt prefix.
// Implementations (quota: in memory and on Redis) must be safe for
// concurrent use; a failure is a miss, never an error: affinity is an
// optimisation.
type AffinityStore interface {
	// Lookup returns the deployment remembered for the first of keys that
	// has one.
	Lookup(ctx context.Context, keys []string) (deployment string, ok bool)
	// Remember records deployment for key for ttl. It must not block on
	// a remote store (the Redis store writes in the background).
	Remember(key, deployment string, ttl time.Duration)
}

// span is a value's extent [vs, ve) in the request body.
type span struct{ vs, ve int }

func (s span) len() int { return s.ve - s.vs }

// affinity is one request's prompt-cache affinity: its prefix keys
// (longest first; n of them) and the prefix's token estimate.
type affinity struct {
	keys   [2]string
	n      int
	tokens int
	dep    string // the deployment the store remembered, "" for none
}

// prefixTokens is the token estimate of n bytes of prompt: four bytes a
// token, the usual rule for English text in JSON.
func prefixTokens(n int) int { return n / 4 }

// prefixKeys computes the affinity keys of r's prompt for the model with
// id model when its prefix is at least minTokens; ok is false when it is
// not (or r has no prompt the router recognises).
func prefixKeys(model string, r *request, minTokens int) (a affinity, ok bool) {
	body := r.body
	if prefixTokens(r.sys.len()+r.conv.len()) < minTokens {
		return a, false
	}
	// The start of the last two user turns (lastUser, prevUser) and of the
	// last element, as offsets into body; -1 when there is none.
	lastUser, prevUser, lastElem, firstElem := -1, -1, -1, -1
	conv := r.conv
	if conv.len() > 0 && body[conv.vs] == '[' {
		for i := jsonspan.SkipWS(body, conv.vs+1); i < conv.ve && body[i] != ']'; {
			e := jsonspan.ValueEnd(body, i)
			lastElem = i
			if firstElem < 0 {
				firstElem = i
			}
			if isUser(body[i:e]) {
				prevUser, lastUser = lastUser, i
			}
			i = jsonspan.SkipWS(body, e)
			if i < conv.ve && body[i] == ',' {
				i = jsonspan.SkipWS(body, i+1)
			}
		}
	}
	end := lastUser // where the prefix's conversation part stops
	if end < 0 {
		end = lastElem
	}
	if end < 0 {
		end = conv.vs // no elements (or a string): the system prompt only
	}
	convLen := func(stop int) int {
		if stop <= conv.vs {
			return 0
		}
		return stop - conv.vs
	}
	if prefixTokens(r.sys.len()+convLen(end)) < minTokens {
		return a, false
	}
	second := lastUser >= 0 && prevUser >= 0 && prefixTokens(r.sys.len()+convLen(prevUser)) >= minTokens
	if lastUser > firstElem && prevUser < 0 && prefixTokens(r.sys.len()) >= minTokens {
		// The first user turn: the previous prefix is the system prompt
		// alone (the key a conversation's first request remembered).
		second, prevUser = true, conv.vs
	}
	h := sha256.New()
	h.Write([]byte(model))
	h.Write([]byte{0})
	if r.sys.len() > 0 {
		h.Write(body[r.sys.vs:r.sys.ve])
	}
	h.Write([]byte{0})
	var sum [sha256.Size]byte
	if second && prevUser == conv.vs {
		a.keys[1] = hex.EncodeToString(h.Sum(sum[:0])[:16])
	}
	if conv.len() > 0 && body[conv.vs] == '[' {
		for i := jsonspan.SkipWS(body, conv.vs+1); i < end; {
			if second && i == prevUser {
				a.keys[1] = hex.EncodeToString(h.Sum(sum[:0])[:16])
			}
			e := jsonspan.ValueEnd(body, i)
			h.Write(body[i:e])
			h.Write([]byte{0})
			i = jsonspan.SkipWS(body, e)
			if i < conv.ve && body[i] == ',' {
				i = jsonspan.SkipWS(body, i+1)
			}
		}
	}
	a.keys[0] = hex.EncodeToString(h.Sum(sum[:0])[:16])
	a.n = 1
	if a.keys[1] != "" {
		a.n = 2
	}
	a.tokens = prefixTokens(r.sys.len() + convLen(end))
	return a, true
}

// isUser reports whether the conversation element e (valid JSON) is an
// object whose role is "user".
func isUser(e []byte) bool {
	if len(e) == 0 || e[0] != '{' {
		return false
	}
	for i := jsonspan.SkipWS(e, 1); i < len(e) && e[i] == '"'; {
		ke := jsonspan.StringEnd(e, i)
		vs := jsonspan.SkipWS(e, ke)
		if vs >= len(e) || e[vs] != ':' {
			return false
		}
		vs = jsonspan.SkipWS(e, vs+1)
		if vs >= len(e) {
			return false
		}
		ve := jsonspan.ValueEnd(e, vs)
		if string(e[i:ke]) == `"role"` {
			return string(e[vs:ve]) == `"user"`
		}
		i = jsonspan.SkipWS(e, ve)
		if i < len(e) && e[i] == ',' {
			i = jsonspan.SkipWS(e, i+1)
		}
	}
	return false
}

// affinityFor looks up the deployment m's request last went to for its
// prompt prefix; it fills req.Affinity and req.CachedTokens, and keeps the
// keys for remember.
func (x *exchange) affinityFor(m *llm.Model, req *balancer.Request) {
	store := x.h.opts.Affinity
	if store == nil || len(m.Deployments) < 2 || x.ep == llm.EndpointEmbeddings || x.ep == llm.EndpointCompletions {
		return
	}
	pol := m.Routing.CacheAffinity
	if !pol.On() {
		return
	}
	id := m.ID
	if id == "" {
		id = m.Name
	}
	a, ok := prefixKeys(id, x.req, pol.MinTokens())
	if !ok {
		return
	}
	if dep, ok := store.Lookup(x.r.Context(), a.keys[:a.n]); ok {
		req.Affinity, req.CachedTokens = dep, a.tokens
		a.dep = dep
	}
	x.aff = a
}

// remember records that d answered the request's prompt prefix, and
// counts the outcome.
func (x *exchange) remember(m *llm.Model, d *llm.Deployment) {
	if x.aff.n == 0 {
		return
	}
	outcome := "miss"
	switch x.aff.dep {
	case "":
	case d.ID:
		outcome = "stuck"
	default:
		outcome = "moved"
	}
	x.h.opts.Metrics.affinity.WithLabelValues(m.Name, outcome).Inc()
	x.h.opts.Affinity.Remember(x.aff.keys[0], d.ID, m.Routing.CacheAffinity.TTL())
}

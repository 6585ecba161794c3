package router

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sluice-ai/sluice/llm"
)

// chatBody is an OpenAI chat body with the given messages (role, content
// pairs).
func chatBody(t testing.TB, msgs ...string) []byte {
	t.Helper()
	type msg struct {
		Role    string `json:"role"`
		Content string `json:"content"`
	}
	var ms []msg
	for i := 0; i+1 < len(msgs); i += 2 {
		ms = append(ms, msg{msgs[i], msgs[i+1]})
	}
	b, err := json.Marshal(map[string]any{"model": "m", "messages": ms})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func keysOf(t testing.TB, body []byte, d llm.Dialect, model string, min int) (affinity, bool) {
	t.Helper()
	r, e := parseRequest(body, d)
	if e != nil {
		t.Fatalf("parseRequest: %v", e)
	}
	return prefixKeys(model, r, min)
}

var longSystem = strings.Repeat("You are a careful assistant. ", 200) // ~5800 bytes

// TestPrefixKeySameSystemDifferentLastTurn: requests that differ only in
// their last user turn share a key; a different system prompt or model
// does not.
func TestPrefixKeySameSystemDifferentLastTurn(t *testing.T) {
	a, ok := keysOf(t, chatBody(t, "system", longSystem, "user", "What is 2+2?"), llm.DialectOpenAIChat, "mdl_1", 1024)
	if !ok || a.n != 1 {
		t.Fatalf("keys = %+v, %v; want one key", a, ok)
	}
	b, _ := keysOf(t, chatBody(t, "system", longSystem, "user", "Tell me a joke"), llm.DialectOpenAIChat, "mdl_1", 1024)
	if a.keys[0] != b.keys[0] {
		t.Fatal("same prefix, different last turn: different keys")
	}
	if a.tokens < 1024 || a.tokens > len(longSystem)/4+20 {
		t.Fatalf("prefix tokens = %d; want about %d", a.tokens, len(longSystem)/4)
	}
	c, _ := keysOf(t, chatBody(t, "system", longSystem+"!", "user", "What is 2+2?"), llm.DialectOpenAIChat, "mdl_1", 1024)
	if c.keys[0] == a.keys[0] {
		t.Fatal("different system prompt: same key")
	}
	d, _ := keysOf(t, chatBody(t, "system", longSystem, "user", "What is 2+2?"), llm.DialectOpenAIChat, "mdl_2", 1024)
	if d.keys[0] == a.keys[0] {
		t.Fatal("different model: same key")
	}
	if len(a.keys[0]) != 32 || strings.Contains(longSystem, a.keys[0]) {
		t.Fatalf("key %q is not 128 bits of hex", a.keys[0])
	}
}

// TestPrefixKeyFollowsConversation: a conversation's next request looks
// up, as its second key, the key its previous request remembered (its
// longest), so it stays on one deployment turn after turn.
func TestPrefixKeyFollowsConversation(t *testing.T) {
	for _, tc := range []struct {
		name    string
		dialect llm.Dialect
		turn    func(msgs ...string) []byte
	}{
		{"openai", llm.DialectOpenAIChat, func(msgs ...string) []byte {
			return chatBody(t, append([]string{"system", longSystem}, msgs...)...)
		}},
		{"anthropic", llm.DialectAnthropicMessages, func(msgs ...string) []byte {
			b := chatBody(t, msgs...)
			s, _ := json.Marshal(longSystem)
			return []byte(`{"system":` + string(s) + `,` + string(b[1:]))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t1, ok := keysOf(t, tc.turn("user", "u1"), tc.dialect, "m", 1024)
			if !ok {
				t.Fatal("turn 1 not keyed")
			}
			t2, _ := keysOf(t, tc.turn("user", "u1", "assistant", "a1", "user", "u2"), tc.dialect, "m", 1024)
			t3, _ := keysOf(t, tc.turn("user", "u1", "assistant", "a1", "user", "u2", "assistant", "a2", "user", "u3"), tc.dialect, "m", 1024)
			if t2.n != 2 || t2.keys[1] != t1.keys[0] {
				t.Fatalf("turn 2 keys %v; want its second to be turn 1's %s", t2.keys, t1.keys[0])
			}
			if t3.n != 2 || t3.keys[1] != t2.keys[0] {
				t.Fatalf("turn 3 keys %v; want its second to be turn 2's %s", t3.keys, t2.keys[0])
			}
			if t2.keys[0] == t1.keys[0] || t3.keys[0] == t2.keys[0] {
				t.Fatal("a longer prefix has the same key")
			}
		})
	}
}

// TestPrefixKeyThreshold: a prefix below MinTokens is not keyed, also when
// the whole prompt is long because of its last turn.
func TestPrefixKeyThreshold(t *testing.T) {
	if _, ok := keysOf(t, chatBody(t, "system", "short", "user", "hi"), llm.DialectOpenAIChat, "m", 1024); ok {
		t.Fatal("short prompt keyed")
	}
	if _, ok := keysOf(t, chatBody(t, "system", "short", "user", longSystem), llm.DialectOpenAIChat, "m", 1024); ok {
		t.Fatal("long last turn with a short prefix keyed")
	}
	if _, ok := keysOf(t, chatBody(t, "system", longSystem, "user", "hi"), llm.DialectOpenAIChat, "m", 100_000); ok {
		t.Fatal("prefix below a high threshold keyed")
	}
	// Responses: a string input is all last turn; instructions are the prefix.
	s, _ := json.Marshal(longSystem)
	a, ok := keysOf(t, []byte(`{"model":"m","instructions":`+string(s)+`,"input":"hi"}`), llm.DialectOpenAIResponses, "m", 1024)
	b, _ := keysOf(t, []byte(`{"model":"m","instructions":`+string(s)+`,"input":"bye"}`), llm.DialectOpenAIResponses, "m", 1024)
	if !ok || a.keys[0] != b.keys[0] {
		t.Fatal("responses: same instructions, different input string: not one key")
	}
}

// TestPrefixKeyHostile: odd conversations (no user turn, non-object
// elements, a string) are keyed or not without panicking, and a huge
// body is keyed in one linear pass (checked by allocations, not time).
func TestPrefixKeyHostile(t *testing.T) {
	s, _ := json.Marshal(longSystem)
	for _, body := range []string{
		`{"model":"m","messages":[1,2,"x",null,[],{}],"system":` + string(s) + `}`,
		`{"model":"m","messages":[{"role":"assistant","content":` + string(s) + `},{"role":"tool","content":"x"}]}`,
		`{"model":"m","messages":"` + strings.Repeat("x", 5000) + `"}`,
		`{"model":"m","messages":[{"role":{"user":1},"content":` + string(s) + `},{"role":"user"}]}`,
		`{"model":"m","messages":[]   ,"system":` + string(s) + `}`,
	} {
		keysOf(t, []byte(body), llm.DialectOpenAIChat, "m", 1024)
	}
	// 20 000 messages of 200 bytes: a few allocations whatever the size.
	var sb strings.Builder
	sb.WriteString(`{"model":"m","messages":[`)
	for i := range 20_000 {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(`{"role":"user","content":"` + strings.Repeat("y", 170) + `"}`)
	}
	sb.WriteString(`]}`)
	r, e := parseRequest([]byte(sb.String()), llm.DialectOpenAIChat)
	if e != nil {
		t.Fatal(e)
	}
	allocs := testing.AllocsPerRun(3, func() {
		if _, ok := prefixKeys("m", r, 1024); !ok {
			t.Fatal("long conversation not keyed")
		}
	})
	if allocs > 10 {
		t.Fatalf("%.0f allocations keying a 4 MB conversation; want a handful", allocs)
	}
}

// memStore is a map AffinityStore for router tests.
type memStore struct{ m map[string]string }

func (s *memStore) Lookup(_ context.Context, keys []string) (string, bool) {
	for _, k := range keys {
		if d, ok := s.m[k]; ok {
			return d, true
		}
	}
	return "", false
}

func (s *memStore) Remember(k, d string, _ time.Duration) { s.m[k] = d }

// BenchmarkAffinity is the per-request cost of affinity on a request
// above the threshold: keying a 6 KB prefix and a lookup in the memory
// store. BenchmarkAffinityBelowThreshold is a short request's (a length
// check).
func BenchmarkAffinity(b *testing.B) {
	r, _ := parseRequest(chatBody(b, "system", longSystem, "user", "u1", "assistant", "a1", "user", "u2"), llm.DialectOpenAIChat)
	st := &memStore{m: map[string]string{}}
	a, _ := prefixKeys("mdl", r, 1024)
	st.Remember(a.keys[0], "dep", time.Minute)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		a, _ := prefixKeys("mdl", r, 1024)
		st.Lookup(ctx, a.keys[:a.n])
	}
}

func BenchmarkAffinityBelowThreshold(b *testing.B) {
	r, _ := parseRequest(chatBody(b, "system", "be brief", "user", "hi"), llm.DialectOpenAIChat)
	b.ReportAllocs()
	for b.Loop() {
		prefixKeys("mdl", r, 1024)
	}
}

// TestAffinityRemembersTheAnsweringDeployment: a keyed request that fails
// on its first deployment and is answered by the next remembers the one
// that answered; later requests with the prefix go there first, and a
// request with affinity off or a short prompt neither looks up nor
// remembers.
func TestAffinityRemembersTheAnsweringDeployment(t *testing.T) {
	ok := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"id":"x","choices":[{"message":{"content":"ok"}}],"usage":{"prompt_tokens":5,"completion_tokens":2}}`)
	}
	var failA atomic.Bool
	failA.Store(true)
	a := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if failA.Load() {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		ok(w, r)
	}))
	defer a.Close()
	var failB atomic.Bool
	b := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if failB.Load() {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		ok(w, r)
	}))
	defer b.Close()
	st := &countingStore{memStore: memStore{m: map[string]string{}}}
	var model *llm.Model
	met := NewMetrics(nil)
	srv, _ := newTestProxyWith(t, func(o *Options) {
		o.Affinity = st
		o.Metrics = met
		model = o.State().Snapshot.Models["m"]
		model.Strategy = llm.StrategyWeighted
	}, time.Second, a.URL, b.URL)
	sys, _ := json.Marshal(longSystem)
	body := func(q string) string {
		return `{"model":"m","messages":[{"role":"system","content":` + string(sys) + `},{"role":"user","content":"` + q + `"}]}`
	}
	// Round-robin starts at p0, which fails: p1 answers and is remembered.
	resp := post(t, srv.URL, body("q0"))
	if got := resp.Header.Get("X-Sluice-Provider"); resp.StatusCode != 200 || got != "p1" {
		t.Fatalf("status %d provider %q; want p1 after p0 failed", resp.StatusCode, got)
	}
	if len(st.m) != 1 {
		t.Fatalf("store holds %d prefixes; want 1", len(st.m))
	}
	failA.Store(false)
	for i := range 4 {
		resp := post(t, srv.URL, body(fmt.Sprint("q", i+1)))
		if got := resp.Header.Get("X-Sluice-Provider"); got != "p1" {
			t.Fatalf("request %d went to %s; want p1, where its prefix was served", i+1, got)
		}
	}
	// The remembered deployment fails: the answer comes from p0, which the
	// prefix then follows.
	failB.Store(true)
	for i, want := range []string{"p0", "p0"} {
		resp := post(t, srv.URL, body(fmt.Sprint("r", i)))
		if got := resp.Header.Get("X-Sluice-Provider"); resp.StatusCode != 200 || got != want {
			t.Fatalf("after p1 failed: request %d status %d provider %q; want %s", i, resp.StatusCode, got, want)
		}
	}
	for outcome, want := range map[string]float64{"miss": 1, "stuck": 5, "moved": 1} {
		if got := testutil.ToFloat64(met.affinity.WithLabelValues("m", outcome)); got != want {
			t.Errorf("sluice_prompt_affinity_total{outcome=%q} = %v; want %v", outcome, got, want)
		}
	}
	lookups := st.lookups.Load()
	post(t, srv.URL, `{"model":"m","messages":[{"role":"user","content":"short"}]}`)
	off := false
	model.Routing.CacheAffinity = &llm.AffinityPolicy{Enabled: &off}
	post(t, srv.URL, body("q9"))
	if n := st.lookups.Load(); n != lookups {
		t.Fatalf("a short prompt or affinity off looked up the store (%d lookups, want %d)", n, lookups)
	}
}

// countingStore is a memStore that counts lookups.
type countingStore struct {
	memStore
	lookups atomic.Int64
}

func (s *countingStore) Lookup(ctx context.Context, keys []string) (string, bool) {
	s.lookups.Add(1)
	return s.memStore.Lookup(ctx, keys)
}

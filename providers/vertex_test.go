package providers

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-ai/sluice/llm"
)

var (
	testKeyOnce sync.Once
	testKey     *rsa.PrivateKey
)

func rsaKey(t *testing.T) *rsa.PrivateKey {
	testKeyOnce.Do(func() {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		testKey = k
	})
	return testKey
}

func serviceAccountJSON(t *testing.T, tokenURI string) string {
	der, err := x509.MarshalPKCS8PrivateKey(rsaKey(t))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(map[string]string{
		"type": "service_account", "project_id": "proj", "private_key_id": "0123456789abcdef0123456789abcdef01234567",
		"private_key":  string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		"client_email": "sluice@proj.iam.gserviceaccount.com", "token_uri": tokenURI,
	})
	return string(b)
}

// tokenServer is a local OAuth2 token endpoint that checks the JWT-bearer
// grant (signature included) and counts the exchanges.
type tokenServer struct {
	*httptest.Server
	calls atomic.Int32
	delay time.Duration
	fail  atomic.Bool
}

func newTokenServer(t *testing.T) *tokenServer {
	ts := &tokenServer{}
	ts.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := ts.calls.Add(1)
		time.Sleep(ts.delay)
		if ts.fail.Load() {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, `{"error":"invalid_grant","error_description":"Invalid JWT Signature."}`)
			return
		}
		if err := r.ParseForm(); err != nil || r.PostForm.Get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer" {
			t.Errorf("token request: %v %v", err, r.PostForm)
		}
		parts := strings.Split(r.PostForm.Get("assertion"), ".")
		if len(parts) != 3 {
			t.Fatalf("assertion %q", r.PostForm.Get("assertion"))
		}
		sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
		sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
		if err := rsa.VerifyPKCS1v15(&rsaKey(t).PublicKey, crypto.SHA256, sum[:], sig); err != nil {
			t.Errorf("signature: %v", err)
		}
		var hdr, claims map[string]any
		hb, _ := base64.RawURLEncoding.DecodeString(parts[0])
		cb, _ := base64.RawURLEncoding.DecodeString(parts[1])
		_ = json.Unmarshal(hb, &hdr)
		_ = json.Unmarshal(cb, &claims)
		if hdr["alg"] != "RS256" || hdr["kid"] == nil || claims["iss"] != "sluice@proj.iam.gserviceaccount.com" ||
			claims["scope"] != "https://www.googleapis.com/auth/cloud-platform" || claims["aud"] != ts.URL+"/token" ||
			claims["exp"].(float64)-claims["iat"].(float64) != 3600 {
			t.Errorf("JWT header %v claims %v", hdr, claims)
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"access_token":"ya29.test-token-%d","expires_in":3599,"token_type":"Bearer"}`, n)
	}))
	t.Cleanup(ts.Close)
	return ts
}

func newTestVertex(t *testing.T, ts *tokenServer, h http.HandlerFunc) *Vertex {
	t.Helper()
	up := httptest.NewServer(h)
	t.Cleanup(up.Close)
	p := buildWith(t, &llm.Provider{Name: "vx", Type: llm.ProviderVertex, BaseURL: up.URL,
		Options: json.RawMessage(`{"project":"proj","location":"us-central1"}`),
		Secrets: map[string]string{"service_account": serviceAccountJSON(t, ts.URL+"/token")}}, Options{})
	return p.(*Vertex)
}

func TestVertexTokenExchangeAndCache(t *testing.T) {
	ts := newTokenServer(t)
	var auth atomic.Value
	v := newTestVertex(t, ts, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/projects/proj/locations/us-central1/publishers/google/models/gemini-2.5-flash:generateContent" {
			t.Errorf("path %s", r.URL.Path)
		}
		auth.Store(r.Header.Get("Authorization"))
		_, _ = w.Write(geminiFixture(t, "text.json"))
	})
	clock := time.Now()
	var mu sync.Mutex
	v.tokens.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	call := func() {
		t.Helper()
		resp, err := v.Do(context.Background(), &Call{Endpoint: llm.EndpointChat, Chat: userChat("gemini-2.5-flash", "hi")})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	call()
	call()
	if ts.calls.Load() != 1 || auth.Load() != "Bearer ya29.test-token-1" {
		t.Errorf("after two calls: %d exchanges, auth %v", ts.calls.Load(), auth.Load())
	}
	// 54 minutes on: still more than 5 minutes left, cached.
	mu.Lock()
	clock = clock.Add(54 * time.Minute)
	mu.Unlock()
	call()
	if ts.calls.Load() != 1 {
		t.Errorf("refreshed too early: %d exchanges", ts.calls.Load())
	}
	// 56 minutes on: within 5 minutes of expiry, refreshed.
	mu.Lock()
	clock = clock.Add(2 * time.Minute)
	mu.Unlock()
	call()
	if ts.calls.Load() != 2 || auth.Load() != "Bearer ya29.test-token-2" {
		t.Errorf("not refreshed before expiry: %d exchanges, auth %v", ts.calls.Load(), auth.Load())
	}
}

func TestVertexConcurrentCallersShareOneRefresh(t *testing.T) {
	ts := newTokenServer(t)
	ts.delay = 200 * time.Millisecond
	v := newTestVertex(t, ts, func(w http.ResponseWriter, r *http.Request) {})
	var wg sync.WaitGroup
	toks := make([]string, 20)
	for i := range toks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tok, err := v.tokens.Token(context.Background())
			if err != nil {
				t.Error(err)
			}
			toks[i] = tok
		}()
	}
	wg.Wait()
	if n := ts.calls.Load(); n != 1 {
		t.Errorf("%d exchanges for 20 concurrent callers", n)
	}
	for _, tok := range toks {
		if tok != "ya29.test-token-1" {
			t.Errorf("token %q", tok)
		}
	}
	// A waiter whose context ends leaves without the token.
	v.tokens.mu.Lock()
	v.tokens.token = ""
	v.tokens.mu.Unlock()
	go func() { _, _ = v.tokens.Token(context.Background()) }()
	time.Sleep(50 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := v.tokens.Token(ctx); err == nil {
		t.Error("a waiter ignored its context")
	}
}

func TestVertexTokenFailure(t *testing.T) {
	ts := newTokenServer(t)
	ts.fail.Store(true)
	v := newTestVertex(t, ts, func(w http.ResponseWriter, r *http.Request) { t.Error("upstream reached without a token") })
	_, err := v.Do(context.Background(), &Call{Endpoint: llm.EndpointChat, Chat: userChat("m", "hi")})
	e := asLLMError(t, err)
	if e.Status != http.StatusBadGateway || e.Code != "upstream_auth_failed" || !strings.Contains(e.Message, "invalid_grant") {
		t.Errorf("token failure: %+v", e)
	}
	ts.fail.Store(false)
	if _, err := v.tokens.Token(context.Background()); err != nil {
		t.Errorf("a failed exchange is not retried: %v", err)
	}
}

func TestVertexUpstreamErrorRedactsToken(t *testing.T) {
	ts := newTokenServer(t)
	v := newTestVertex(t, ts, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, `{"error":{"code":400,"message":"bad request from %s","status":"INVALID_ARGUMENT"}}`, r.Header.Get("Authorization"))
	})
	_, err := v.Do(context.Background(), &Call{Endpoint: llm.EndpointChat, Chat: userChat("m", "hi")})
	e := asLLMError(t, err)
	if e.Status != 400 || strings.Contains(e.Message, "ya29.test-token") || e.Code != "INVALID_ARGUMENT" {
		t.Errorf("error: %+v", e)
	}
	if body := string(v.Redact(nil, []byte("echo "+serviceAccountJSON(t, "x")))); strings.Contains(body, "MII") {
		t.Errorf("private key not redacted: %.200s", body)
	}
}

func TestVertexValidation(t *testing.T) {
	ts := newTokenServer(t)
	sa := serviceAccountJSON(t, ts.URL+"/token")
	good := func() *llm.Provider {
		return &llm.Provider{Name: "vx", Type: llm.ProviderVertex, Options: json.RawMessage(`{"project":"proj","location":"us-central1"}`),
			Secrets: map[string]string{"service_account": sa}}
	}
	p := good()
	if err := (Options{}).Validate(p); err != nil || p.BaseURL != DefaultVertexBaseURL {
		t.Fatalf("valid config refused: %v", err)
	}
	prov := buildWith(t, good(), Options{}).(*Vertex)
	if !strings.HasPrefix(prov.prefix, "https://us-central1-aiplatform.googleapis.com/v1/projects/proj/locations/us-central1/publishers/google/models/") {
		t.Errorf("regional prefix %s", prov.prefix)
	}
	g := good()
	g.Options = json.RawMessage(`{"project":"proj","location":"global"}`)
	if prov := buildWith(t, g, Options{}).(*Vertex); !strings.HasPrefix(prov.prefix, "https://aiplatform.googleapis.com/v1/projects/proj/locations/global/") {
		t.Errorf("global prefix %s", prov.prefix)
	}
	err := (Options{DenyPrivate: true}).Validate(good())
	if ce, ok := err.(*ConfigError); !ok || ce.Field != "secrets.service_account.token_uri" {
		t.Errorf("loopback token_uri with deny-private: %v", err)
	}
	for name, mut := range map[string]func(p *llm.Provider){
		"no project":   func(p *llm.Provider) { p.Options = json.RawMessage(`{"location":"us-central1"}`) },
		"bad location": func(p *llm.Provider) { p.Options = json.RawMessage(`{"project":"p","location":"us/../x"}`) },
		"bad publisher": func(p *llm.Provider) {
			p.Options = json.RawMessage(`{"project":"p","location":"l","publisher":"meta"}`)
		},
		"no account": func(p *llm.Provider) { p.Secrets = nil },
		"not json":   func(p *llm.Provider) { p.Secrets = map[string]string{"service_account": "{"} },
		"bad key": func(p *llm.Provider) {
			p.Secrets = map[string]string{"service_account": `{"client_email":"a","private_key":"nope"}`}
		},
		"api key":      func(p *llm.Provider) { p.APIKey = "k" },
		"extra secret": func(p *llm.Provider) { p.Secrets = map[string]string{"service_account": sa, "x": "y"} },
		"token uri query": func(p *llm.Provider) {
			p.Secrets = map[string]string{"service_account": serviceAccountJSON(t, "https://x.example/token?a=b")}
		},
	} {
		p := good()
		mut(p)
		err := (Options{}).Validate(p)
		if err == nil {
			t.Errorf("%s: accepted", name)
		} else if strings.Contains(err.Error(), "MII") {
			t.Errorf("%s: key in message %v", name, err)
		}
	}
}

func TestVertexAnthropicPublisher(t *testing.T) {
	ts := newTokenServer(t)
	var bodies []map[string]any
	var paths []string
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		paths = append(paths, r.URL.Path)
		if !strings.HasPrefix(r.Header.Get("Authorization"), "Bearer ya29.") {
			t.Errorf("auth %q", r.Header.Get("Authorization"))
		}
		var m map[string]any
		b, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(b, &m); err != nil {
			t.Errorf("body %s: %v", b, err)
		}
		bodies = append(bodies, m)
		_, _ = io.WriteString(w, `{"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4","content":[{"type":"text","text":"hi"}],"stop_reason":"end_turn","usage":{"input_tokens":3,"output_tokens":1}}`)
	}))
	defer up.Close()
	p := buildWith(t, &llm.Provider{Name: "vc", Type: llm.ProviderVertex, BaseURL: up.URL,
		Options: json.RawMessage(`{"project":"proj","location":"us-east5","publisher":"anthropic"}`),
		Secrets: map[string]string{"service_account": serviceAccountJSON(t, ts.URL+"/token")}}, Options{})
	if !p.Native(llm.DialectAnthropicMessages) || p.Native(llm.DialectOpenAIChat) {
		t.Error("native dialects")
	}
	raw := []byte(`{"model":"claude-sonnet-4@20250514","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}`)
	resp, err := p.Do(context.Background(), &Call{Endpoint: llm.EndpointMessages, Dialect: llm.DialectAnthropicMessages, Model: "claude-sonnet-4@20250514", Body: raw})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	resp, err = p.Do(context.Background(), &Call{Endpoint: llm.EndpointChat, Dialect: llm.DialectOpenAIChat, Chat: userChat("claude-sonnet-4@20250514", "hi"), Stream: true})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	want := "/v1/projects/proj/locations/us-east5/publishers/anthropic/models/claude-sonnet-4@20250514:"
	if len(paths) != 2 || paths[0] != want+"rawPredict" || paths[1] != want+"streamRawPredict" {
		t.Errorf("paths %v", paths)
	}
	for i, b := range bodies {
		if b["model"] != nil || b["anthropic_version"] != "vertex-2023-10-16" || b["messages"] == nil {
			t.Errorf("body %d: %v", i, b)
		}
	}
	if bodies[1]["stream"] != true || resp.Decoder == nil {
		t.Errorf("translated stream body %v", bodies[1])
	}
}

func TestVertexEmbeddingsPredict(t *testing.T) {
	ts := newTokenServer(t)
	v := newTestVertex(t, ts, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if r.URL.Path != "/v1/projects/proj/locations/us-central1/publishers/google/models/text-embedding-005:predict" ||
			string(b) != `{"instances":[{"content":"a"},{"content":"b c"}],"parameters":{"outputDimensionality":2}}` {
			t.Errorf("%s %s", r.URL.Path, b)
		}
		_, _ = io.WriteString(w, `{"predictions":[{"embeddings":{"statistics":{"truncated":false,"token_count":1},"values":[0.1,0.2]}},{"embeddings":{"statistics":{"truncated":false,"token_count":2},"values":[0.3,0.4]}}],"metadata":{"billableCharacterCount":4}}`)
	})
	resp, err := v.Do(context.Background(), &Call{Endpoint: llm.EndpointEmbeddings, Embed: &llm.EmbedRequest{Model: "text-embedding-005", Inputs: []string{"a", "b c"}, Dimensions: 2}})
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	e, err := resp.Decoder.Embed(raw)
	if err != nil || len(e.Vectors) != 2 || e.Vectors[1][1] != 0.4 || !e.UsageKnown || e.Usage.PromptTokens != 3 || e.Model != "text-embedding-005" {
		t.Errorf("embed %+v %v", e, err)
	}
}

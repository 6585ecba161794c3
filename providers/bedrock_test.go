package providers

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/sluice-ai/sluice/llm"
	"github.com/sluice-ai/sluice/wire/bedrock"
)

const (
	awsKeyID     = "AKIAIOSFODNN7EXAMPLE"
	awsSecret    = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
	awsToken     = "FwoGZXIvYXdzEBYaDEXAMPLESESSIONTOKENexampleexampleexample"
	bedrockModel = "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-3-5-sonnet-20240620-v1:0"
)

func bedrockProvider(base string) *llm.Provider {
	return &llm.Provider{Name: "br", Type: llm.ProviderBedrock, BaseURL: base, Options: json.RawMessage(`{"region":"us-east-1"}`),
		Secrets: map[string]string{"access_key_id": awsKeyID, "secret_access_key": awsSecret, "session_token": awsToken}}
}

// newTestBedrock builds a bedrock provider against h, signing at a fixed time.
func newTestBedrock(t *testing.T, h http.HandlerFunc, edit func(p *llm.Provider)) *Bedrock {
	return newTestBedrockOpts(t, h, edit, Options{})
}

func newTestBedrockOpts(t *testing.T, h http.HandlerFunc, edit func(p *llm.Provider), o Options) *Bedrock {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	p := bedrockProvider(srv.URL)
	if edit != nil {
		edit(p)
	}
	if err := (Options{}).Validate(p); err != nil {
		t.Fatal(err)
	}
	prov, err := NewBedrock(p, NewClient(p.Timeouts, o))
	if err != nil {
		t.Fatal(err)
	}
	b := prov.(*Bedrock)
	b.now = func() time.Time { return time.Date(2026, 11, 29, 19, 0, 0, 0, time.UTC) }
	return b
}

func chatCall(stream bool) *Call {
	return &Call{Endpoint: llm.EndpointChat, Dialect: llm.DialectOpenAIChat, Model: bedrockModel, Stream: stream, RequestID: "req-1",
		Chat: &llm.ChatRequest{Model: bedrockModel, Stream: stream, MaxTokens: 100,
			Messages: []llm.Message{{Role: llm.RoleUser, Content: []llm.Part{{Type: llm.PartText, Text: "What is the most popular song on WZPZ?"}}}},
			Tools:    []llm.Tool{{Name: "top_song", Parameters: json.RawMessage(`{"type":"object","properties":{"sign":{"type":"string"}}}`)}}}}
}

func bedrockFixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/bedrock/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// framesOf frames an .events fixture as Bedrock sends it.
func framesOf(t *testing.T, text []byte) []byte {
	t.Helper()
	var out []byte
	sc := bufio.NewScanner(bytes.NewReader(text))
	for sc.Scan() {
		typ, payload, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		out = bedrock.AppendFrame(out, [][2]string{{":event-type", typ}, {":content-type", "application/json"}, {":message-type", "event"}}, []byte(payload))
	}
	return out
}

func TestBedrockValidate(t *testing.T) {
	for name, c := range map[string]struct {
		edit  func(p *llm.Provider)
		field string
	}{
		"ok":             {func(p *llm.Provider) {}, ""},
		"ok api key":     {func(p *llm.Provider) { p.Secrets = nil; p.APIKey = "ABSKQmVkcm9ja0FQSUtleS1leGFtcGxl" }, ""},
		"ok no session":  {func(p *llm.Provider) { delete(p.Secrets, "session_token") }, ""},
		"no region":      {func(p *llm.Provider) { p.Options = nil }, "options.region"},
		"bad region":     {func(p *llm.Provider) { p.Options = json.RawMessage(`{"region":"us-east-1.evil.com/"}`) }, "options.region"},
		"unknown option": {func(p *llm.Provider) { p.Options = json.RawMessage(`{"region":"us-east-1","x":1}`) }, "options"},
		"both":           {func(p *llm.Provider) { p.APIKey = "k" }, "secrets"},
		"half a pair":    {func(p *llm.Provider) { delete(p.Secrets, "secret_access_key") }, "secrets"},
		"none":           {func(p *llm.Provider) { p.Secrets = nil }, "secrets"},
		"unknown secret": {func(p *llm.Provider) { p.Secrets["password"] = "x" }, "secrets.password"},
		"bad key id":     {func(p *llm.Provider) { p.Secrets["access_key_id"] = "AKIA/../x" }, "secrets.access_key_id"},
	} {
		t.Run(name, func(t *testing.T) {
			p := bedrockProvider("")
			c.edit(p)
			err := (Options{}).Validate(p)
			var ce *ConfigError
			switch {
			case c.field == "" && err != nil:
				t.Fatal(err)
			case c.field != "" && (!errors.As(err, &ce) || ce.Field != c.field):
				t.Fatalf("err = %v, want one about %s", err, c.field)
			}
			if err != nil && (strings.Contains(err.Error(), awsSecret) || strings.Contains(err.Error(), awsKeyID)) {
				t.Fatal("error quotes a credential")
			}
		})
	}
	// No base_url: it stays empty (the region names the endpoint when built).
	p := bedrockProvider("")
	if err := (Options{}).Validate(p); err != nil || p.BaseURL != "" {
		t.Fatalf("%v %q", err, p.BaseURL)
	}
	prov, err := NewBedrock(p, NewClient(p.Timeouts, Options{}))
	if err != nil || prov.(*Bedrock).base != "https://bedrock-runtime.us-east-1.amazonaws.com" {
		t.Fatalf("%v", err)
	}
	if prov.Native(llm.DialectOpenAIChat) || prov.Native(llm.DialectAnthropicMessages) {
		t.Fatal("bedrock is native to no dialect")
	}
}

func TestBedrockSigV4(t *testing.T) {
	var got *http.Request
	var body []byte
	b := newTestBedrock(t, func(w http.ResponseWriter, r *http.Request) {
		got, body = r, must(io.ReadAll(r.Body))
		w.Header().Set("Content-Type", "application/json")
		w.Write(bedrockFixture(t, "converse_text.json"))
	}, nil)
	resp, err := b.Do(context.Background(), chatCall(false))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	// The model id is one escaped path segment, as AWS's SDKs send it.
	wantPath := "/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Ainference-profile%2Fus.anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse"
	if got.RequestURI != wantPath {
		t.Fatalf("path %q\nwant %q", got.RequestURI, wantPath)
	}
	auth := got.Header.Get("Authorization")
	if !strings.HasPrefix(auth, "AWS4-HMAC-SHA256 Credential="+awsKeyID+"/20261129/us-east-1/bedrock/aws4_request, SignedHeaders=") {
		t.Fatalf("authorization %q", auth)
	}
	for _, h := range []string{"content-type", "host", "x-amz-date", "x-amz-security-token", "x-request-id"} {
		if !strings.Contains(auth, h) {
			t.Fatalf("%s not signed: %q", h, auth)
		}
	}
	if got.Header.Get("X-Amz-Date") != "20261129T190000Z" || got.Header.Get("X-Amz-Security-Token") != awsToken {
		t.Fatalf("headers %v", got.Header)
	}
	// Deterministic: AWS's signer, given the same request, time and
	// credentials, computes the same signature.
	req := must(http.NewRequest(http.MethodPost, "http://"+got.Host+wantPath, bytes.NewReader(body)))
	for _, k := range []string{"Content-Type", "Accept", "X-Request-Id"} {
		req.Header.Set(k, got.Header.Get(k))
	}
	sum := sha256.Sum256(body)
	creds := aws.Credentials{AccessKeyID: awsKeyID, SecretAccessKey: awsSecret, SessionToken: awsToken}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), "bedrock", "us-east-1", b.now()); err != nil {
		t.Fatal(err)
	}
	if req.Header.Get("Authorization") != auth {
		t.Fatalf("signature differs:\n%s\n%s", req.Header.Get("Authorization"), auth)
	}
	// The body signed is the body sent.
	if !json.Valid(body) || !bytes.Contains(body, []byte(`"toolSpec":{"name":"top_song"`)) || bytes.Contains(body, []byte(bedrockModel)) {
		t.Fatalf("body %s", body)
	}
}

func TestBedrockBearerKey(t *testing.T) {
	const key = "ABSKQmVkcm9ja0FQSUtleS1leGFtcGxlLWtleQ=="
	var auth string
	b := newTestBedrock(t, func(w http.ResponseWriter, r *http.Request) {
		auth = r.Header.Get("Authorization")
		w.Write(bedrockFixture(t, "converse_text.json"))
	}, func(p *llm.Provider) { p.Secrets = nil; p.APIKey = key })
	resp, err := b.Do(context.Background(), chatCall(false))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if auth != "Bearer "+key {
		t.Fatalf("authorization %q", auth)
	}
}

func TestBedrockTranslatedChatAndToolUse(t *testing.T) {
	b := newTestBedrock(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(bedrockFixture(t, "converse_tool_use.json"))
	}, nil)
	resp, err := b.Do(context.Background(), chatCall(false))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	cr, err := resp.Decoder.Chat(must(io.ReadAll(resp.Body)))
	if err != nil {
		t.Fatal(err)
	}
	ch := cr.Choices[0]
	if ch.FinishReason != llm.FinishToolCalls || len(ch.Message.ToolCalls) != 1 || ch.Message.ToolCalls[0].Name != "top_song" || cr.Usage.PromptTokens != 375 {
		t.Fatalf("answer %+v", cr)
	}
}

func TestBedrockTranslatedStream(t *testing.T) {
	var path, accept string
	b := newTestBedrock(t, func(w http.ResponseWriter, r *http.Request) {
		path, accept = r.URL.Path, r.Header.Get("Accept")
		w.Header().Set("Content-Type", "application/vnd.amazon.eventstream")
		frames := framesOf(t, bedrockFixture(t, "stream_tool_use.events"))
		// Dribble the frames in small writes, as a network would.
		for len(frames) > 0 {
			n := min(len(frames), 37)
			w.Write(frames[:n])
			w.(http.Flusher).Flush()
			frames = frames[n:]
		}
	}, nil)
	resp, err := b.Do(context.Background(), chatCall(true))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if !strings.HasSuffix(path, "/converse-stream") || accept != "application/vnd.amazon.eventstream" {
		t.Fatalf("path %q accept %q", path, accept)
	}
	s := resp.Decoder.Stream(resp.Body)
	var args strings.Builder
	var kinds []llm.EventKind
	var usage llm.Usage
	for {
		ev, err := s.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		kinds = append(kinds, ev.Kind)
		switch ev.Kind {
		case llm.EventToolArgs:
			args.WriteString(ev.Text)
		case llm.EventUsage:
			usage = ev.Usage
		}
	}
	if args.String() != `{"sign": "WZPZ"}` || usage.PromptTokens != 375 || usage.CompletionTokens != 55 || kinds[0] != llm.EventStart {
		t.Fatalf("args %q usage %+v kinds %v", args.String(), usage, kinds)
	}
}

func TestBedrockStreamExceptionRedacted(t *testing.T) {
	b := newTestBedrock(t, func(w http.ResponseWriter, r *http.Request) {
		var out []byte
		out = bedrock.AppendFrame(out, [][2]string{{":event-type", "messageStart"}, {":message-type", "event"}}, []byte(`{"role":"assistant"}`))
		out = bedrock.AppendFrame(out, [][2]string{{":exception-type", "throttlingException"}, {":message-type", "exception"}},
			[]byte(`{"message":"Too many requests for key `+awsSecret+`"}`))
		w.Write(out)
	}, nil)
	resp, err := b.Do(context.Background(), chatCall(true))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	s := resp.Decoder.Stream(resp.Body)
	s.Next() // start
	ev, err := s.Next()
	if err != nil || ev.Kind != llm.EventError {
		t.Fatalf("%v %+v", err, ev)
	}
	if ev.Err.UpstreamStatus != 429 || ev.Err.Status != 429 || ev.Err.Provider != "br" || strings.Contains(ev.Err.Message, awsSecret[:12]) {
		t.Fatalf("error %+v", ev.Err)
	}
}

func TestBedrockErrorMapping(t *testing.T) {
	for _, c := range []struct {
		status      int
		typ         string
		retryAfter  string
		wantStatus  int
		wantCode    string
		wantRetry   time.Duration
		wantMessage string
	}{
		{429, "ThrottlingException:http://internal.amazon.com/coral/com.amazon.bedrock/", "7", 429, "ThrottlingException", 7 * time.Second, "Too many requests"},
		{400, "ValidationException", "", 400, "ValidationException", 0, "Too many requests"},
		{403, "AccessDeniedException", "", 502, "upstream_auth_failed", 0, "rejected the gateway's provider credentials"},
		{424, "ModelErrorException", "", 502, "ModelErrorException", 0, "Too many requests"},
		{503, "ServiceUnavailableException", "2", 503, "ServiceUnavailableException", 2 * time.Second, "Too many requests"},
	} {
		b := newTestBedrock(t, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Amzn-Errortype", c.typ)
			if c.retryAfter != "" {
				w.Header().Set("Retry-After", c.retryAfter)
			}
			w.WriteHeader(c.status)
			w.Write([]byte(`{"message":"Too many requests, please wait before trying again. Signed by ` + awsKeyID + `"}`))
		}, nil)
		_, err := b.Do(context.Background(), chatCall(false))
		var e *llm.Error
		if !errors.As(err, &e) {
			t.Fatalf("%d: %v", c.status, err)
		}
		if e.Status != c.wantStatus || e.UpstreamStatus != c.status || e.Code != c.wantCode || e.RetryAfter != c.wantRetry || !strings.Contains(e.Message, c.wantMessage) {
			t.Fatalf("%d: %+v", c.status, e)
		}
		if strings.Contains(e.Message, awsKeyID) {
			t.Fatalf("%d: access key id echoed: %q", c.status, e.Message)
		}
	}
}

func TestBedrockRefusesWhatConverseCannotSay(t *testing.T) {
	called := false
	b := newTestBedrock(t, func(w http.ResponseWriter, r *http.Request) { called = true }, nil)
	call := chatCall(false)
	call.Chat.N = 3
	_, err := b.Do(context.Background(), call)
	var e *llm.Error
	if !errors.As(err, &e) || e.Status != 400 || !strings.Contains(e.Message, "n > 1") {
		t.Fatalf("%v", err)
	}
	// An image URL the guarded fetcher refuses (loopback) is a 400.
	img := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { called = true }))
	defer img.Close()
	call = chatCall(false)
	call.Chat.Messages[0].Content = append(call.Chat.Messages[0].Content, llm.Part{Type: llm.PartImage, Image: &llm.Image{URL: img.URL + "/x.png"}})
	if _, err := b.Do(context.Background(), call); !errors.As(err, &e) || e.Status != 400 {
		t.Fatalf("%v", err)
	}
	if _, err := b.Do(context.Background(), &Call{Endpoint: llm.EndpointEmbeddings, Embed: &llm.EmbedRequest{}}); !errors.As(err, &e) || e.Status != 400 {
		t.Fatalf("%v", err)
	}
	if called {
		t.Fatal("the upstream was called")
	}
}

func TestBedrockRegistry(t *testing.T) {
	snap := llm.EmptySnapshot()
	snap.Providers["br"] = bedrockProvider("")
	r, errs := NewRegistry(nil, snap, Options{})
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	if _, ok := r.Get("br"); !ok {
		t.Fatal("not built")
	}
}

func TestBedrockFetchesImageURLs(t *testing.T) {
	png := []byte("\x89PNG\r\n\x1a\nfake")
	img := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "image/png")
		w.Write(png)
	}))
	defer img.Close()
	var body []byte
	b := newTestBedrockOpts(t, func(w http.ResponseWriter, r *http.Request) {
		body = must(io.ReadAll(r.Body))
		w.Write(bedrockFixture(t, "converse_text.json"))
	}, nil, Options{AllowPrivateImageURLs: true})
	call := chatCall(false)
	call.Chat.Messages[0].Content = append(call.Chat.Messages[0].Content, llm.Part{Type: llm.PartImage, Image: &llm.Image{URL: img.URL + "/x.png"}})
	resp, err := b.Do(context.Background(), call)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	want := `{"image":{"format":"png","source":{"bytes":"` + base64.StdEncoding.EncodeToString(png) + `"}}}`
	if !bytes.Contains(body, []byte(want)) {
		t.Fatalf("body %s", body)
	}
	if call.Chat.Messages[0].Content[1].Image.Data != "" {
		t.Fatal("the call's request was modified")
	}
}

package main

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/sluice-ai/sluice/llm"
	"github.com/sluice-ai/sluice/wire/gemini"
)

const geminiPath = "/v1beta/models/gemini-2.5-flash:"

type geminiAnswer struct {
	Candidates []struct {
		Content struct {
			Role  string `json:"role"`
			Parts []struct {
				Text         *string `json:"text"`
				Thought      bool    `json:"thought"`
				FunctionCall *struct {
					Name string          `json:"name"`
					Args json.RawMessage `json:"args"`
				} `json:"functionCall"`
			} `json:"parts"`
		} `json:"content"`
		FinishReason string `json:"finishReason"`
		Index        int    `json:"index"`
	} `json:"candidates"`
	UsageMetadata *struct {
		Prompt     int `json:"promptTokenCount"`
		Candidates int `json:"candidatesTokenCount"`
		Thoughts   int `json:"thoughtsTokenCount"`
		Total      int `json:"totalTokenCount"`
	} `json:"usageMetadata"`
	ModelVersion string `json:"modelVersion"`
	ResponseID   string `json:"responseId"`
	Error        *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
		Status  string `json:"status"`
	} `json:"error"`
}

// readGeminiEvents reads alt=sse events framed "data: …\r\n\r\n".
func readGeminiEvents(t *testing.T, r io.Reader) ([]geminiAnswer, error) {
	t.Helper()
	br := bufio.NewReader(r)
	var out []geminiAnswer
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			if err == io.EOF && line == "" {
				return out, nil
			}
			return out, err
		}
		if !strings.HasPrefix(line, "data: ") || !strings.HasSuffix(line, "\r\n") {
			t.Fatalf("event line %q", line)
		}
		if blank, err := br.ReadString('\n'); err != nil || blank != "\r\n" {
			return out, err
		}
		var a geminiAnswer
		decode(t, []byte(strings.TrimSpace(strings.TrimPrefix(line, "data: "))), &a)
		out = append(out, a)
	}
}

func TestGeminiGenerate(t *testing.T) {
	srv := newTestServer(t, testConfig())
	resp := post(t, srv, geminiPath+"generateContent", `{"systemInstruction":{"parts":[{"text":"be kind"}]},"contents":[{"role":"user","parts":[{"text":"hello there"}]}]}`, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, readAll(t, resp))
	}
	var a geminiAnswer
	decode(t, readAll(t, resp), &a)
	c := a.Candidates[0]
	if c.Content.Role != "model" || *c.Content.Parts[0].Text != "Hello from the mock LLM! " || c.FinishReason != "STOP" ||
		a.ModelVersion != "gemini-2.5-flash" || !strings.HasPrefix(a.ResponseID, "resp_") {
		t.Errorf("answer %+v", a)
	}
	if u := a.UsageMetadata; u == nil || u.Prompt != 4 || u.Candidates != 5 || u.Thoughts != 0 || u.Total != 9 {
		t.Errorf("usage %+v", a.UsageMetadata)
	}
}

func TestGeminiThinkingAndCandidates(t *testing.T) {
	srv := newTestServer(t, testConfig())
	resp := post(t, srv, geminiPath+"generateContent", `{"contents":[{"role":"user","parts":[{"text":"hi"}]}],
		"generationConfig":{"candidateCount":2,"thinkingConfig":{"thinkingBudget":1024,"includeThoughts":true}}}`, nil)
	var a geminiAnswer
	decode(t, readAll(t, resp), &a)
	if len(a.Candidates) != 2 || a.Candidates[1].Index != 1 || !a.Candidates[0].Content.Parts[0].Thought {
		t.Fatalf("answer %+v", a)
	}
	if u := a.UsageMetadata; u.Thoughts != mockThoughtTokens || u.Candidates != 10 || u.Total != u.Prompt+u.Candidates+u.Thoughts {
		t.Errorf("usage %+v", u)
	}
}

func TestGeminiToolCall(t *testing.T) {
	srv := newTestServer(t, testConfig())
	tools := `"tools":[{"functionDeclarations":[{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}]}]`
	resp := post(t, srv, geminiPath+"generateContent", `{"contents":[{"role":"user","parts":[{"text":"weather?"}]}],`+tools+`}`, nil)
	var a geminiAnswer
	decode(t, readAll(t, resp), &a)
	if fc := a.Candidates[0].Content.Parts[0].FunctionCall; fc == nil || fc.Name != "get_weather" || string(fc.Args) != "{}" || a.Candidates[0].FinishReason != "STOP" {
		t.Errorf("tool call %+v", a)
	}
	// After a functionResponse the mock answers with text.
	resp = post(t, srv, geminiPath+"generateContent", `{"contents":[{"role":"user","parts":[{"text":"weather?"}]},
		{"role":"model","parts":[{"functionCall":{"name":"get_weather","args":{}}}]},
		{"role":"user","parts":[{"functionResponse":{"name":"get_weather","response":{"result":"sunny"}}}]}],`+tools+`}`, nil)
	a = geminiAnswer{}
	decode(t, readAll(t, resp), &a)
	if a.Candidates[0].Content.Parts[0].Text == nil {
		t.Errorf("after a function response: %+v", a)
	}
	// Streamed: one event with the call, finish and usage.
	resp = post(t, srv, geminiPath+"streamGenerateContent?alt=sse", `{"contents":[{"role":"user","parts":[{"text":"weather?"}]}],`+tools+`}`, nil)
	evs, err := readGeminiEvents(t, resp.Body)
	if err != nil || len(evs) != 1 || evs[0].Candidates[0].Content.Parts[0].FunctionCall == nil || evs[0].UsageMetadata == nil {
		t.Errorf("streamed tool call: %+v %v", evs, err)
	}
}

func TestGeminiStream(t *testing.T) {
	srv := newTestServer(t, testConfig())
	resp := post(t, srv, geminiPath+"streamGenerateContent?alt=sse", `{"contents":[{"role":"user","parts":[{"text":"hi"}]}],"generationConfig":{"thinkingConfig":{"includeThoughts":true}}}`, nil)
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		t.Errorf("content type %q", ct)
	}
	evs, err := readGeminiEvents(t, resp.Body)
	if err != nil || len(evs) != 6 {
		t.Fatalf("%d events, %v", len(evs), err)
	}
	if !evs[0].Candidates[0].Content.Parts[0].Thought {
		t.Errorf("first event not a thought: %+v", evs[0])
	}
	var text strings.Builder
	for i, e := range evs[1:] {
		text.WriteString(*e.Candidates[0].Content.Parts[0].Text)
		if (e.Candidates[0].FinishReason != "") != (i == 4) || (e.UsageMetadata != nil) != (i == 4) {
			t.Errorf("event %d: %+v", i+1, e)
		}
	}
	if text.String() != "Hello from the mock LLM! " || evs[5].UsageMetadata.Thoughts != mockThoughtTokens {
		t.Errorf("text %q usage %+v", text.String(), evs[5].UsageMetadata)
	}
	// Failure controls work as for OpenAI: a cut stream.
	resp = post(t, srv, geminiPath+"streamGenerateContent?alt=sse", `{"contents":[{"role":"user","parts":[{"text":"hi"}]}]}`, map[string]string{"X-Mock-Disconnect-After": "2"})
	if evs, err := readGeminiEvents(t, resp.Body); err == nil || len(evs) != 2 {
		t.Errorf("disconnect after 2: %d events, %v", len(evs), err)
	}
}

func checkGoogleError(t *testing.T, resp *http.Response, code int, status string) string {
	t.Helper()
	if resp.StatusCode != code {
		t.Errorf("status %d, want %d", resp.StatusCode, code)
	}
	var a geminiAnswer
	decode(t, readAll(t, resp), &a)
	if a.Error == nil || a.Error.Code != code || a.Error.Status != status || a.Error.Message == "" {
		t.Errorf("error body %+v, want %d %s", a.Error, code, status)
		return ""
	}
	return a.Error.Message
}

func TestGeminiAuthAndErrors(t *testing.T) {
	cfg := testConfig()
	cfg.APIKey = "AIza-mock-key"
	srv := newTestServer(t, cfg)
	body := `{"contents":[{"role":"user","parts":[{"text":"hi"}]}]}`
	checkGoogleError(t, post(t, srv, geminiPath+"generateContent", body, nil), 403, "PERMISSION_DENIED")
	checkGoogleError(t, post(t, srv, geminiPath+"generateContent", body, map[string]string{"x-goog-api-key": "wrong"}), 400, "INVALID_ARGUMENT")
	key := map[string]string{"x-goog-api-key": "AIza-mock-key"}
	if resp := post(t, srv, geminiPath+"generateContent", body, key); resp.StatusCode != 200 {
		t.Errorf("good key: %d", resp.StatusCode)
	}
	if resp := post(t, srv, geminiPath+"generateContent?key=AIza-mock-key", body, nil); resp.StatusCode != 200 {
		t.Errorf("key in query: %d", resp.StatusCode)
	}
	withKey := func(k, v string) map[string]string { return map[string]string{"x-goog-api-key": "AIza-mock-key", k: v} }
	resp := post(t, srv, geminiPath+"generateContent", body, withKey("X-Mock-Status", "429"))
	checkGoogleError(t, resp, 429, "RESOURCE_EXHAUSTED")
	resp = post(t, srv, geminiPath+"generateContent", body, map[string]string{"x-goog-api-key": "AIza-mock-key", "X-Mock-Status": "503", "X-Mock-Retry-After": "3"})
	if resp.Header.Get("Retry-After") != "3" {
		t.Errorf("Retry-After %q", resp.Header.Get("Retry-After"))
	}
	checkGoogleError(t, resp, 503, "UNAVAILABLE")
	msg := checkGoogleError(t, post(t, srv, geminiPath+"generateContent", body, map[string]string{"x-goog-api-key": "AIza-mock-key", "X-Mock-Status": "500", "X-Mock-Echo-Key": "true"}), 500, "INTERNAL")
	if !strings.Contains(msg, "AIza-mock-key") {
		t.Errorf("echo key: %q", msg)
	}
	checkGoogleError(t, post(t, srv, geminiPath+"generateContent", `{"contents":[]}`, key), 400, "INVALID_ARGUMENT")
	checkGoogleError(t, post(t, srv, geminiPath+"generateContent", `{"contents":[{"role":"assistant","parts":[{"text":"x"}]}]}`, key), 400, "INVALID_ARGUMENT")
	checkGoogleError(t, post(t, srv, geminiPath+"generateContent", `{`, key), 400, "INVALID_ARGUMENT")
	checkGoogleError(t, post(t, srv, geminiPath+"countTokens", body, key), 404, "NOT_FOUND")
}

func TestGeminiEmbed(t *testing.T) {
	srv := newTestServer(t, testConfig())
	resp := post(t, srv, "/v1beta/models/text-embedding-004:batchEmbedContents", `{"requests":[
		{"model":"models/text-embedding-004","content":{"parts":[{"text":"a"}]}},
		{"model":"models/text-embedding-004","content":{"parts":[{"text":"b"}]},"outputDimensionality":3}]}`, nil)
	var e struct {
		Embeddings []struct {
			Values []float32 `json:"values"`
		} `json:"embeddings"`
	}
	decode(t, readAll(t, resp), &e)
	if len(e.Embeddings) != 2 || len(e.Embeddings[0].Values) != 8 || len(e.Embeddings[1].Values) != 3 {
		t.Errorf("embeddings %+v", e)
	}
	checkGoogleError(t, post(t, srv, "/v1beta/models/text-embedding-004:batchEmbedContents", `{"requests":[{"model":"models/other","content":{"parts":[{"text":"a"}]}}]}`, nil), 400, "INVALID_ARGUMENT")
}

func TestVertexTokenAndGenerate(t *testing.T) {
	cfg := testConfig()
	cfg.APIKey = "any"
	srv := newTestServer(t, cfg)
	path := "/v1/projects/proj/locations/us-central1/publishers/google/models/gemini-2.5-flash:generateContent"
	body := `{"contents":[{"role":"user","parts":[{"text":"hi"}]}]}`
	checkGoogleError(t, post(t, srv, path, body, nil), 401, "UNAUTHENTICATED")
	checkGoogleError(t, post(t, srv, path, body, map[string]string{"Authorization": "Bearer forged"}), 401, "UNAUTHENTICATED")

	form := func(v url.Values) *http.Response {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/token", strings.NewReader(v.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
	if resp := form(url.Values{"grant_type": {"client_credentials"}}); resp.StatusCode != 400 {
		t.Errorf("wrong grant: %d", resp.StatusCode)
	}
	if resp := form(url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:jwt-bearer"}, "assertion": {"nope"}}); resp.StatusCode != 400 {
		t.Errorf("bad assertion: %d", resp.StatusCode)
	}
	resp := form(url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:jwt-bearer"}, "assertion": {"aGVhZGVy.Y2xhaW1z.c2ln"}})
	var tok struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int    `json:"expires_in"`
		TokenType   string `json:"token_type"`
	}
	decode(t, readAll(t, resp), &tok)
	if !strings.HasPrefix(tok.AccessToken, "ya29.") || tok.ExpiresIn != 3599 || tok.TokenType != "Bearer" {
		t.Fatalf("token %+v", tok)
	}
	resp = post(t, srv, path, body, map[string]string{"Authorization": "Bearer " + tok.AccessToken})
	var a geminiAnswer
	decode(t, readAll(t, resp), &a)
	if resp.StatusCode != 200 || a.Candidates[0].FinishReason != "STOP" {
		t.Errorf("vertex answer %d %+v", resp.StatusCode, a)
	}
	resp = post(t, srv, strings.Replace(path, ":generateContent", ":streamGenerateContent?alt=sse", 1), body, map[string]string{"Authorization": "Bearer " + tok.AccessToken})
	if evs, err := readGeminiEvents(t, resp.Body); err != nil || len(evs) != 5 {
		t.Errorf("vertex stream: %d events %v", len(evs), err)
	}
}

// TestGeminiAgreesWithCodec decodes the mock's answers with the gateway's
// codec: the two were written apart, from the documentation.
func TestGeminiAgreesWithCodec(t *testing.T) {
	srv := newTestServer(t, testConfig())
	body := `{"contents":[{"role":"user","parts":[{"text":"hi"}]}],"tools":[{"functionDeclarations":[{"name":"f"}]}],"generationConfig":{"thinkingConfig":{"thinkingBudget":64,"includeThoughts":true}}}`
	resp := post(t, srv, geminiPath+"generateContent", body, nil)
	r, err := gemini.DecodeResponse(readAll(t, resp))
	if err != nil || r.Choices[0].FinishReason != llm.FinishToolCalls || r.Choices[0].Message.ToolCalls[0].Name != "f" ||
		r.Usage.ReasoningTokens != mockThoughtTokens || r.Usage.CompletionTokens != 5+mockThoughtTokens {
		t.Errorf("decoded %+v %v", r, err)
	}
	resp = post(t, srv, geminiPath+"streamGenerateContent?alt=sse", strings.Replace(body, `"tools":[{"functionDeclarations":[{"name":"f"}]}],`, "", 1), nil)
	s := gemini.NewStreamDecoder(resp.Body)
	var text, thought strings.Builder
	var usage llm.Usage
	for {
		ev, err := s.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		switch ev.Kind {
		case llm.EventText:
			text.WriteString(ev.Text)
		case llm.EventThinking:
			thought.WriteString(ev.Text)
		case llm.EventUsage:
			usage = ev.Usage
		}
	}
	if text.String() != "Hello from the mock LLM! " || thought.String() != mockThought || usage.CompletionTokens != 5+mockThoughtTokens {
		t.Errorf("stream: text %q thought %q usage %+v", text.String(), thought.String(), usage)
	}
	resp = post(t, srv, "/v1beta/models/e:batchEmbedContents", `{"requests":[{"model":"models/e","content":{"parts":[{"text":"a"}]}}]}`, nil)
	if e, err := gemini.DecodeEmbedResponse(readAll(t, resp)); err != nil || len(e.Vectors[0]) != 8 {
		t.Errorf("embed %+v %v", e, err)
	}
}

func TestVertexAnthropic(t *testing.T) {
	srv := newTestServer(t, testConfig())
	path := "/v1/projects/p/locations/us-east5/publishers/anthropic/models/claude-x:"
	auth := map[string]string{"Authorization": "Bearer t"}
	body := `{"anthropic_version":"vertex-2023-10-16","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}`
	resp := post(t, srv, path+"rawPredict", body, auth)
	var msg anthropicMsg
	decode(t, readAll(t, resp), &msg)
	if resp.StatusCode != 200 || msg.Model != "claude-x" || msg.Type != "message" {
		t.Errorf("rawPredict %d %+v", resp.StatusCode, msg)
	}
	resp = post(t, srv, path+"streamRawPredict", body, auth)
	if b := string(readAll(t, resp)); !strings.Contains(b, "event: message_stop") {
		t.Errorf("streamRawPredict: %.300s", b)
	}
	checkGoogleError(t, post(t, srv, path+"rawPredict", strings.Replace(body, "vertex-2023-10-16", "2023-06-01", 1), auth), 400, "INVALID_ARGUMENT")
	checkGoogleError(t, post(t, srv, path+"rawPredict", body, nil), 401, "UNAUTHENTICATED")
}

func TestVertexPredictEmbeddings(t *testing.T) {
	srv := newTestServer(t, testConfig())
	path := "/v1/projects/p/locations/us-central1/publishers/google/models/text-embedding-005:predict"
	resp := post(t, srv, path, `{"instances":[{"content":"hello there"},{"content":"b"}],"parameters":{"outputDimensionality":4}}`, map[string]string{"Authorization": "Bearer t"})
	e, err := gemini.DecodePredictEmbedResponse(readAll(t, resp))
	if err != nil || len(e.Vectors) != 2 || len(e.Vectors[0]) != 4 || !e.UsageKnown || e.Usage.PromptTokens != 3 {
		t.Errorf("predict %+v %v", e, err)
	}
	checkGoogleError(t, post(t, srv, "/v1beta/models/text-embedding-005:predict", `{}`, nil), 404, "NOT_FOUND")
}

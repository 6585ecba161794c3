package main

import (
	"bytes"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
)

// This file serves Google's Gemini wire format: the Gemini API's
// generateContent, streamGenerateContent (alt=sse) and batchEmbedContents
// under /v1beta/models/, the same for Vertex AI's Google publisher under
// /v1/projects/{p}/locations/{l}/publishers/google/models/, and an OAuth2
// token endpoint (POST /token) granting access tokens for JWT-bearer
// assertions, as Google's does for service accounts. Errors use Google's
// shape {"error":{"code","message","status"}}.

// Limits of the Gemini endpoints.
const (
	maxGeminiCandidates = 8
	maxGeminiEmbeds     = 100
	maxVertexTokens     = 10_000
	// mockThoughtTokens is the thoughtsTokenCount of an answer that thought.
	mockThoughtTokens = 4
	mockThought       = "Considering how to answer."
)

// googleState is the mock's Google-specific state: the access tokens its
// token endpoint issued.
type googleState struct {
	mu     sync.Mutex
	tokens map[string]struct{}
}

func (g *googleState) issue() string {
	var r [16]byte
	_, _ = rand.Read(r[:])
	tok := "ya29.mock-" + hex.EncodeToString(r[:])
	g.mu.Lock()
	if g.tokens == nil || len(g.tokens) >= maxVertexTokens {
		g.tokens = map[string]struct{}{}
	}
	g.tokens[tok] = struct{}{}
	g.mu.Unlock()
	return tok
}

func (g *googleState) valid(tok string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	_, ok := g.tokens[tok]
	return ok
}

// geminiRoutes registers the Gemini, Vertex and token routes.
func (m *mock) geminiRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST /v1beta/models/{action}", m.counted(m.handleGemini))
	mux.HandleFunc("POST /v1/projects/{project}/locations/{location}/publishers/google/models/{action}", m.counted(m.handleVertex))
	mux.HandleFunc("POST /v1/projects/{project}/locations/{location}/publishers/anthropic/models/{action}", m.counted(m.handleVertexAnthropic))
	mux.HandleFunc("POST /token", m.counted(m.handleToken))
}

// handleVertexAnthropic serves Claude on Vertex AI: rawPredict and
// streamRawPredict take Anthropic's Messages body without model (it is in
// the path) and with anthropic_version "vertex-2023-10-16"; the answer is
// Anthropic's. Auth is the Vertex Bearer token.
func (m *mock) handleVertexAnthropic(w http.ResponseWriter, r *http.Request) outcome {
	b, body, o, ok := m.googleBegin(w, r, m.vertexAuth(r))
	if !ok {
		return o
	}
	model, method, _ := strings.Cut(r.PathValue("action"), ":")
	if method != "rawPredict" && method != "streamRawPredict" {
		return m.googleError(w, r, &b, http.StatusNotFound, "Method "+strconv.Quote(method)+" is not found.")
	}
	var req map[string]json.RawMessage
	if err := json.Unmarshal(body, &req); err != nil || req == nil {
		return m.googleError(w, r, &b, http.StatusBadRequest, "Invalid JSON payload received.")
	}
	if string(req["anthropic_version"]) != `"vertex-2023-10-16"` {
		return m.googleError(w, r, &b, http.StatusBadRequest, "anthropic_version: must be vertex-2023-10-16")
	}
	delete(req, "anthropic_version")
	req["model"], _ = json.Marshal(model)
	if method == "streamRawPredict" {
		req["stream"] = json.RawMessage("true")
	}
	nb, _ := json.Marshal(req)
	r2 := r.Clone(r.Context())
	r2.Body = io.NopCloser(bytes.NewReader(nb))
	r2.ContentLength = int64(len(nb))
	r2.Header.Set("Anthropic-Version", "2023-06-01")
	r2.Header.Del(hdrLatency) // slept already
	if m.cfg.APIKey != "" {
		r2.Header.Set("X-Api-Key", m.cfg.APIKey)
	}
	return m.handleMessages(w, r2)
}

// Mock-side Gemini wire types (independent of wire/gemini on purpose).
type (
	geminiRequest struct {
		Contents          []geminiContent `json:"contents"`
		SystemInstruction *geminiContent  `json:"systemInstruction"`
		Tools             []struct {
			FunctionDeclarations []struct {
				Name string `json:"name"`
			} `json:"functionDeclarations"`
		} `json:"tools"`
		GenerationConfig *struct {
			CandidateCount int `json:"candidateCount"`
			ThinkingConfig *struct {
				ThinkingBudget  *int `json:"thinkingBudget"`
				IncludeThoughts bool `json:"includeThoughts"`
			} `json:"thinkingConfig"`
		} `json:"generationConfig"`
	}
	geminiContent struct {
		Role  string       `json:"role"`
		Parts []geminiPart `json:"parts"`
	}
	geminiPart struct {
		Text             *string         `json:"text"`
		InlineData       json.RawMessage `json:"inlineData"`
		FunctionCall     json.RawMessage `json:"functionCall"`
		FunctionResponse json.RawMessage `json:"functionResponse"`
	}
	geminiEmbedRequest struct {
		Requests []struct {
			Model   string        `json:"model"`
			Content geminiContent `json:"content"`
			Dims    int           `json:"outputDimensionality"`
		} `json:"requests"`
	}
)

// googleStatus returns the google.rpc status name of an HTTP status.
func googleStatus(code int) string {
	switch code {
	case 400:
		return "INVALID_ARGUMENT"
	case 401:
		return "UNAUTHENTICATED"
	case 403:
		return "PERMISSION_DENIED"
	case 404:
		return "NOT_FOUND"
	case 409:
		return "ABORTED"
	case 429:
		return "RESOURCE_EXHAUSTED"
	case 499:
		return "CANCELLED"
	case 501:
		return "UNIMPLEMENTED"
	case 503:
		return "UNAVAILABLE"
	case 504:
		return "DEADLINE_EXCEEDED"
	}
	if code >= 500 {
		return "INTERNAL"
	}
	return "FAILED_PRECONDITION"
}

// googleError writes Google's error body. With X-Mock-Echo-Key the
// received credential is appended to the message, like a careless upstream.
func (m *mock) googleError(w http.ResponseWriter, r *http.Request, b *behaviour, code int, msg string) outcome {
	return m.googleErrorStatus(w, r, b, code, googleStatus(code), msg)
}

func (m *mock) googleErrorStatus(w http.ResponseWriter, r *http.Request, b *behaviour, code int, status, msg string) outcome {
	if b.echoKey {
		msg += " (received x-goog-api-key: " + r.Header.Get("X-Goog-Api-Key") + ", Authorization: " + r.Header.Get("Authorization") + ")"
	}
	body := append([]byte(`{"error":{"code":`), strconv.Itoa(code)...)
	body = append(body, `,"message":`...)
	body = appendString(body, msg)
	body = append(body, `,"status":"`...)
	body = append(body, status...)
	body = append(body, `"}}`...)
	h := w.Header()
	h["Content-Type"] = []string{"application/json; charset=UTF-8"}
	h["Content-Length"] = []string{strconv.Itoa(len(body))}
	setRetryAfter(h, b)
	w.WriteHeader(code)
	if _, err := w.Write(body); err != nil {
		return outcomeCanceled
	}
	return outcomeCompleted
}

// googleBegin runs the steps every Gemini request shares (see openaiBegin);
// auth checks the credential and returns the error to answer, if any.
func (m *mock) googleBegin(w http.ResponseWriter, r *http.Request, auth func() (int, string, string)) (b behaviour, body []byte, o outcome, ok bool) {
	b, berr := resolve(&m.cfg, r.Header)
	body, err := readBody(r)
	m.stats.record(r.Header, body)
	if !sleep(r.Context(), b.latency) {
		return b, nil, outcomeCanceled, false
	}
	if code, status, msg := auth(); code != 0 {
		return b, nil, m.googleErrorStatus(w, r, &b, code, status, msg), false
	}
	if berr != nil {
		return b, nil, m.googleError(w, r, &b, http.StatusBadRequest, berr.Error()), false
	}
	if err != nil {
		code := http.StatusBadRequest
		if errors.Is(err, errBodyTooLarge) {
			code = http.StatusRequestEntityTooLarge
		}
		return b, nil, m.googleError(w, r, &b, code, err.Error()), false
	}
	if b.status != 0 {
		msg := fmt.Sprintf("The mock was asked to fail this request with status %d (X-Mock-Status).", b.status)
		return b, nil, m.googleError(w, r, &b, b.status, msg), false
	}
	return b, body, outcomeCompleted, true
}

// geminiAuth checks x-goog-api-key (or the key query parameter) as the
// Gemini API does: a missing key is a 403, a wrong one a 400.
func (m *mock) geminiAuth(r *http.Request) func() (int, string, string) {
	return func() (int, string, string) {
		if m.cfg.APIKey == "" {
			return 0, "", ""
		}
		key := r.Header.Values("X-Goog-Api-Key")
		if len(key) == 0 {
			if q := r.URL.Query()["key"]; len(q) > 0 {
				key = q
			}
		}
		if len(key) == 0 {
			return http.StatusForbidden, "PERMISSION_DENIED", "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API."
		}
		if len(key) != 1 || subtle.ConstantTimeCompare([]byte(key[0]), []byte(m.cfg.APIKey)) != 1 {
			return http.StatusBadRequest, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key."
		}
		return 0, "", ""
	}
}

// vertexAuth checks the Bearer token: any token when the mock has no key,
// else one its token endpoint issued.
func (m *mock) vertexAuth(r *http.Request) func() (int, string, string) {
	return func() (int, string, string) {
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || tok == "" {
			return http.StatusUnauthorized, "UNAUTHENTICATED", "Request is missing required authentication credential. Expected OAuth 2 access token, login cookie or other valid authentication credential."
		}
		if m.cfg.APIKey != "" && !m.google.valid(tok) {
			return http.StatusUnauthorized, "UNAUTHENTICATED", "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential."
		}
		return 0, "", ""
	}
}

// handleGemini serves POST /v1beta/models/{model}:{method}.
func (m *mock) handleGemini(w http.ResponseWriter, r *http.Request) outcome {
	return m.serveGemini(w, r, m.geminiAuth(r), false)
}

// handleVertex serves Vertex AI's Google publisher models.
func (m *mock) handleVertex(w http.ResponseWriter, r *http.Request) outcome {
	return m.serveGemini(w, r, m.vertexAuth(r), true)
}

func (m *mock) serveGemini(w http.ResponseWriter, r *http.Request, auth func() (int, string, string), vertex bool) outcome {
	b, body, o, ok := m.googleBegin(w, r, auth)
	if !ok {
		return o
	}
	model, method, _ := strings.Cut(r.PathValue("action"), ":")
	switch {
	case model == "":
		return m.googleError(w, r, &b, http.StatusNotFound, "models/ is not found for API version v1beta.")
	case method == "generateContent":
		return m.geminiGenerate(w, r, &b, body, model, false)
	case method == "streamGenerateContent":
		return m.geminiGenerate(w, r, &b, body, model, true)
	case method == "batchEmbedContents":
		return m.geminiEmbed(w, r, &b, body, model)
	case method == "predict" && vertex:
		return m.vertexPredict(w, r, &b, body)
	}
	return m.googleError(w, r, &b, http.StatusNotFound, "Method "+strconv.Quote(method)+" is not found.")
}

// geminiGenerate answers generateContent or streamGenerateContent.
func (m *mock) geminiGenerate(w http.ResponseWriter, r *http.Request, b *behaviour, body []byte, model string, stream bool) outcome {
	var req geminiRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return m.googleError(w, r, b, http.StatusBadRequest, "Invalid JSON payload received. "+err.Error())
	}
	if len(req.Contents) == 0 {
		return m.googleError(w, r, b, http.StatusBadRequest, "* GenerateContentRequest.contents: contents is not specified")
	}
	promptWords := 0
	if req.SystemInstruction != nil {
		for _, p := range req.SystemInstruction.Parts {
			if p.Text != nil {
				promptWords += countWords(*p.Text)
			}
		}
	}
	for i, c := range req.Contents {
		if c.Role != "user" && c.Role != "model" && c.Role != "" {
			return m.googleError(w, r, b, http.StatusBadRequest, "Please use a valid role: user, model.")
		}
		if len(c.Parts) == 0 {
			return m.googleError(w, r, b, http.StatusBadRequest, fmt.Sprintf("* GenerateContentRequest.contents[%d].parts: contents.parts must not be empty.", i))
		}
		for _, p := range c.Parts {
			if p.Text != nil {
				promptWords += countWords(*p.Text)
			}
		}
	}
	n := 1
	thinking, showThoughts := false, false
	if g := req.GenerationConfig; g != nil {
		if g.CandidateCount > maxGeminiCandidates {
			return m.googleError(w, r, b, http.StatusBadRequest, "* GenerationConfig.candidate_count: must be between 1 and 8")
		}
		if g.CandidateCount > 1 {
			n = g.CandidateCount
		}
		if t := g.ThinkingConfig; t != nil {
			thinking = (t.ThinkingBudget != nil && *t.ThinkingBudget != 0) || t.IncludeThoughts
			showThoughts = t.IncludeThoughts
		}
	}
	tool := ""
	lastParts := req.Contents[len(req.Contents)-1].Parts
	if len(req.Tools) > 0 && len(req.Tools[0].FunctionDeclarations) > 0 && len(lastParts[len(lastParts)-1].FunctionResponse) == 0 {
		tool = req.Tools[0].FunctionDeclarations[0].Name
	}
	prompt := b.promptTokens
	if prompt == 0 {
		prompt = max(promptWords, 1)
	}
	thoughts := 0
	if thinking {
		thoughts = mockThoughtTokens
	}
	seq := m.nextID()
	h := w.Header()
	h["X-Request-Id"] = []string{m.requestID(seq)}
	setRetryAfter(h, b)
	bp := m.bufs.get()
	defer m.bufs.put(bp)
	id := string(m.appendID(nil, "resp_", seq))
	usage := func(buf []byte) []byte {
		if b.noUsage {
			return buf
		}
		completion := b.completionTokens * n
		if tool != "" {
			completion = 5 * n
		}
		buf = append(buf, `,"usageMetadata":{"promptTokenCount":`...)
		buf = strconv.AppendInt(buf, int64(prompt), 10)
		buf = append(buf, `,"candidatesTokenCount":`...)
		buf = strconv.AppendInt(buf, int64(completion), 10)
		if thoughts > 0 {
			buf = append(buf, `,"thoughtsTokenCount":`...)
			buf = strconv.AppendInt(buf, int64(thoughts), 10)
		}
		buf = append(buf, `,"totalTokenCount":`...)
		buf = strconv.AppendInt(buf, int64(prompt+completion+thoughts), 10)
		return append(buf, '}')
	}
	tail := func(buf []byte) []byte {
		buf = usage(buf)
		buf = append(buf, `,"modelVersion":`...)
		buf = appendString(buf, model)
		buf = append(buf, `,"responseId":"`...)
		buf = append(buf, id...)
		return append(buf, `"}`...)
	}
	// candidates appends the candidates array of one event: parts is
	// appended by fill for each candidate.
	candidates := func(buf []byte, fill func([]byte) []byte, finish bool) []byte {
		buf = append(buf, `{"candidates":[`...)
		for c := 0; c < n; c++ {
			if c > 0 {
				buf = append(buf, ',')
			}
			buf = append(buf, `{"content":{"parts":[`...)
			buf = fill(buf)
			buf = append(buf, `],"role":"model"}`...)
			if finish {
				buf = append(buf, `,"finishReason":"STOP"`...)
			}
			buf = append(buf, `,"index":`...)
			buf = strconv.AppendInt(buf, int64(c), 10)
			buf = append(buf, '}')
		}
		return append(buf, ']')
	}
	thoughtPart := func(buf []byte) []byte {
		return append(buf, `{"text":"`+mockThought+`","thought":true}`...)
	}
	callPart := func(buf []byte) []byte {
		buf = append(buf, `{"functionCall":{"name":`...)
		buf = appendString(buf, tool)
		return append(buf, `,"args":{}}}`...)
	}
	if !stream {
		buf := candidates(*bp, func(buf []byte) []byte {
			if showThoughts {
				buf = append(thoughtPart(buf), ',')
			}
			if tool != "" {
				return callPart(buf)
			}
			buf = append(buf, `{"text":"`...)
			buf = appendContent(buf, b.chunks)
			return append(buf, `"}`...)
		}, true)
		buf = tail(buf)
		*bp = buf
		return m.respondJSON(w, r, b, buf)
	}
	if r.URL.Query().Get("alt") != "sse" {
		return m.googleError(w, r, b, http.StatusBadRequest, "The mock streams only with alt=sse.")
	}
	// Events: [thought], text chunks (the last with finishReason and
	// usage), or one function call.
	first := 0
	if showThoughts {
		first = 1
	}
	chunks := max(b.chunks, 1)
	if tool != "" {
		chunks = 1
	}
	events := first + chunks
	appendEvent := func(buf []byte, i int) []byte {
		buf = append(buf, "data: "...)
		last := i == events-1
		buf = candidates(buf, func(buf []byte) []byte {
			switch {
			case i < first:
				return thoughtPart(buf)
			case tool != "":
				return callPart(buf)
			case b.chunks == 0:
				return append(buf, `{"text":""}`...)
			}
			buf = append(buf, `{"text":"`...)
			buf = append(buf, words[(i-first)%len(words)]...)
			return append(buf, `"}`...)
		}, last)
		if last {
			buf = tail(buf)
		} else {
			buf = append(buf, `,"modelVersion":`...)
			buf = appendString(buf, model)
			buf = append(buf, `,"responseId":"`...)
			buf = append(buf, id...)
			buf = append(buf, `"}`...)
		}
		return append(buf, "\r\n\r\n"...)
	}
	return m.streamEvents(w, r, b, eventPlan{n: events, delayFrom: 1, delayTo: events - 1, appendEvent: appendEvent})
}

// geminiEmbed answers batchEmbedContents.
func (m *mock) geminiEmbed(w http.ResponseWriter, r *http.Request, b *behaviour, body []byte, model string) outcome {
	var req geminiEmbedRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return m.googleError(w, r, b, http.StatusBadRequest, "Invalid JSON payload received. "+err.Error())
	}
	if len(req.Requests) == 0 || len(req.Requests) > maxGeminiEmbeds {
		return m.googleError(w, r, b, http.StatusBadRequest, fmt.Sprintf("* BatchEmbedContentsRequest.requests: must hold between 1 and %d requests", maxGeminiEmbeds))
	}
	bp := m.bufs.get()
	defer m.bufs.put(bp)
	buf := append((*bp)[:0], `{"embeddings":[`...)
	vec := []float32(nil)
	for i, q := range req.Requests {
		if q.Model != "models/"+model {
			return m.googleError(w, r, b, http.StatusBadRequest, fmt.Sprintf("* BatchEmbedContentsRequest.requests[%d].model: unexpected model name format (want models/%s)", i, model))
		}
		dims := m.cfg.EmbeddingDims
		if q.Dims != 0 {
			dims = q.Dims
		}
		if dims < 1 || dims > maxEmbeddingDims {
			return m.googleError(w, r, b, http.StatusBadRequest, "* outputDimensionality: out of range")
		}
		hsh := fnv.New64a()
		for _, p := range q.Content.Parts {
			if p.Text != nil {
				_, _ = hsh.Write([]byte(*p.Text))
			}
		}
		if cap(vec) < dims {
			vec = make([]float32, dims)
		}
		vec = vec[:dims]
		fillEmbedding(hsh.Sum64(), vec)
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, `{"values":[`...)
		for j, f := range vec {
			if j > 0 {
				buf = append(buf, ',')
			}
			buf = strconv.AppendFloat(buf, float64(f), 'g', -1, 32)
		}
		buf = append(buf, "]}"...)
	}
	buf = append(buf, "]}"...)
	*bp = buf
	h := w.Header()
	h["X-Request-Id"] = []string{m.requestID(m.nextID())}
	setRetryAfter(h, b)
	return m.respondJSON(w, r, b, buf)
}

// handleToken serves POST /token: Google's OAuth2 token endpoint for the
// JWT-bearer grant. The assertion's signature is not verified; its shape
// (three base64url parts) and the grant type are.
func (m *mock) handleToken(w http.ResponseWriter, r *http.Request) outcome {
	b, berr := resolve(&m.cfg, r.Header)
	if !sleep(r.Context(), b.latency) {
		return outcomeCanceled
	}
	tokenError := func(code int, kind, desc string) outcome {
		body, _ := json.Marshal(map[string]string{"error": kind, "error_description": desc})
		h := w.Header()
		h["Content-Type"] = ctJSON
		setRetryAfter(h, &b)
		w.WriteHeader(code)
		if _, err := w.Write(body); err != nil {
			return outcomeCanceled
		}
		return outcomeCompleted
	}
	if berr != nil {
		return tokenError(http.StatusBadRequest, "invalid_request", berr.Error())
	}
	if b.status != 0 {
		return tokenError(b.status, "server_error", fmt.Sprintf("The mock was asked to fail this request with status %d (X-Mock-Status).", b.status))
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		return tokenError(http.StatusBadRequest, "invalid_request", "The request body is not a form.")
	}
	m.stats.record(r.Header, []byte(r.PostForm.Encode()))
	if gt := r.PostForm.Get("grant_type"); gt != "urn:ietf:params:oauth:grant-type:jwt-bearer" {
		return tokenError(http.StatusBadRequest, "unsupported_grant_type", "Invalid grant_type: "+gt)
	}
	parts := strings.Split(r.PostForm.Get("assertion"), ".")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
		return tokenError(http.StatusBadRequest, "invalid_grant", "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe.")
	}
	body, _ := json.Marshal(map[string]any{"access_token": m.google.issue(), "expires_in": 3599, "token_type": "Bearer"})
	h := w.Header()
	h["Content-Type"] = ctJSON
	h["Cache-Control"] = []string{"no-cache, no-store, max-age=0, must-revalidate"}
	if _, err := w.Write(body); err != nil {
		return outcomeCanceled
	}
	return outcomeCompleted
}

// vertexPredict answers Vertex AI's text-embedding :predict.
func (m *mock) vertexPredict(w http.ResponseWriter, r *http.Request, b *behaviour, body []byte) outcome {
	var req struct {
		Instances []struct {
			Content string `json:"content"`
		} `json:"instances"`
		Parameters *struct {
			Dims int `json:"outputDimensionality"`
		} `json:"parameters"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return m.googleError(w, r, b, http.StatusBadRequest, "Invalid JSON payload received. "+err.Error())
	}
	if len(req.Instances) == 0 || len(req.Instances) > maxGeminiEmbeds {
		return m.googleError(w, r, b, http.StatusBadRequest, fmt.Sprintf("instances: must hold between 1 and %d instances", maxGeminiEmbeds))
	}
	dims := m.cfg.EmbeddingDims
	if req.Parameters != nil && req.Parameters.Dims != 0 {
		dims = req.Parameters.Dims
	}
	if dims < 1 || dims > maxEmbeddingDims {
		return m.googleError(w, r, b, http.StatusBadRequest, "outputDimensionality: out of range")
	}
	bp := m.bufs.get()
	defer m.bufs.put(bp)
	buf := append((*bp)[:0], `{"predictions":[`...)
	vec := make([]float32, dims)
	chars := 0
	for i, in := range req.Instances {
		hsh := fnv.New64a()
		_, _ = hsh.Write([]byte(in.Content))
		fillEmbedding(hsh.Sum64(), vec)
		chars += len(in.Content)
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, `{"embeddings":{"statistics":{"truncated":false,"token_count":`...)
		buf = strconv.AppendInt(buf, int64(max(countWords(in.Content), 1)), 10)
		buf = append(buf, `},"values":[`...)
		for j, f := range vec {
			if j > 0 {
				buf = append(buf, ',')
			}
			buf = strconv.AppendFloat(buf, float64(f), 'g', -1, 32)
		}
		buf = append(buf, "]}}"...)
	}
	buf = append(buf, `],"metadata":{"billableCharacterCount":`...)
	buf = strconv.AppendInt(buf, int64(chars), 10)
	buf = append(buf, "}}"...)
	*bp = buf
	h := w.Header()
	h["X-Request-Id"] = []string{m.requestID(m.nextID())}
	setRetryAfter(h, b)
	return m.respondJSON(w, r, b, buf)
}

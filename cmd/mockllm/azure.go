package main

import (
	"crypto/subtle"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
)

// This file serves Azure OpenAI's paths. The answers are OpenAI's (the
// handlers in openai.go and openai_embeddings.go serve both, told apart by
// behaviour.azure); what differs is here:
//
//   - paths: /openai/deployments/{deployment}/chat/completions,
//     /completions and /embeddings, where the deployment names the model
//     (the body's model is ignored) and the api-version query is required
//     (missing: 404 Resource not found; not a version: 400), and the v1
//     surface /openai/v1/…, where the model is the body's and api-version
//     is optional (v1, latest or preview);
//   - authentication: api-key: <key>, or Authorization: Bearer <key>
//     standing in for an Entra ID token, when the mock has a key;
//   - chat answers carry Azure's prompt_filter_results; a chat stream
//     opens with the chunk Azure sends first (empty id, model and choices,
//     the prompt's filter results), as documented for its content
//     streaming;
//   - errors: {"error":{"code":"…","message":"…"}}, the code being the
//     status for errors Azure itself raises; X-Mock-Content-Filter: true
//     answers the documented content-filter refusal (400 content_filter
//     with its innererror).

// azureRoutes registers the Azure OpenAI paths on mux.
func (m *mock) azureRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST /openai/deployments/{deployment}/chat/completions", m.counted(m.handleChat))
	mux.HandleFunc("POST /openai/deployments/{deployment}/completions", m.counted(m.handleCompletion))
	mux.HandleFunc("POST /openai/deployments/{deployment}/embeddings", m.counted(m.handleEmbeddings))
	mux.HandleFunc("POST /openai/v1/chat/completions", m.counted(m.handleChat))
	mux.HandleFunc("POST /openai/v1/completions", m.counted(m.handleCompletion))
	mux.HandleFunc("POST /openai/v1/embeddings", m.counted(m.handleEmbeddings))
	mux.HandleFunc("GET /openai/v1/models", m.counted(m.handleModels))
}

// validAzureAPIVersion reports whether v is YYYY-MM-DD or
// YYYY-MM-DD-preview.
func validAzureAPIVersion(v string) bool {
	if len(v) == len("2006-01-02-preview") && v[10:] == "-preview" {
		v = v[:10]
	}
	if len(v) != len("2006-01-02") || v[4] != '-' || v[7] != '-' {
		return false
	}
	for i := 0; i < len(v); i++ {
		if i != 4 && i != 7 && (v[i] < '0' || v[i] > '9') {
			return false
		}
	}
	return true
}

// azureCheck checks what Azure checks before the request reaches a model:
// the api-version, then the key. When done is true the response was
// written and o is its outcome.
func (m *mock) azureCheck(w http.ResponseWriter, r *http.Request, b *behaviour) (o outcome, done bool) {
	q := r.URL.Query()
	v, has := q["api-version"]
	switch {
	case b.deployment != "" && !has:
		return m.azureError(w, r, b, http.StatusNotFound, "Resource not found", "", ""), true
	case b.deployment != "" && (len(v) != 1 || !validAzureAPIVersion(v[0])):
		return m.azureError(w, r, b, http.StatusBadRequest, "API version not supported", "", "BadRequest"), true
	case strings.HasPrefix(r.URL.Path, "/openai/v1/") && has && (len(v) != 1 || (v[0] != "v1" && v[0] != "latest" && v[0] != "preview")):
		return m.azureError(w, r, b, http.StatusBadRequest, "API version not supported", "", "BadRequest"), true
	}
	if m.cfg.APIKey == "" {
		return outcomeCompleted, false
	}
	key, bearer := r.Header["Api-Key"], r.Header["Authorization"]
	switch {
	case len(key) == 1 && subtle.ConstantTimeCompare([]byte(key[0]), []byte(m.cfg.APIKey)) == 1:
	case len(key) == 0 && len(bearer) == 1 && subtle.ConstantTimeCompare([]byte(bearer[0]), m.wantAuth) == 1:
	case len(key) == 0 && len(bearer) == 0:
		return m.azureError(w, r, b, http.StatusUnauthorized,
			"Access denied due to missing subscription key. Make sure to include subscription key when making requests to an API.", "", ""), true
	default:
		return m.azureError(w, r, b, http.StatusUnauthorized,
			"Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource.", "", ""), true
	}
	return outcomeCompleted, false
}

// azureErrorBody is Azure OpenAI's error envelope.
type azureErrorBody struct {
	Error azureErrorDetail `json:"error"`
}

// azureErrorDetail is the inner object of Azure's error envelope. Errors
// the model service raises carry OpenAI's type and param; those of
// Azure's own gateway (auth, routing, throttling) only code and message.
type azureErrorDetail struct {
	Code       string          `json:"code"`
	Message    string          `json:"message"`
	Type       *string         `json:"type,omitempty"`
	Param      *string         `json:"param,omitempty"`
	Status     int             `json:"status,omitempty"`
	InnerError json.RawMessage `json:"innererror,omitempty"`
}

// azureError writes an Azure error body. With X-Mock-Echo-Key the received
// api-key (or Authorization) is appended to the message, like a careless
// upstream would do.
func (m *mock) azureError(w http.ResponseWriter, r *http.Request, b *behaviour, status int, msg, param, code string) outcome {
	if b.echoKey {
		if k := r.Header.Get("Api-Key"); k != "" {
			msg += " (received api-key: " + k + ")"
		} else {
			msg += " (received Authorization: " + r.Header.Get("Authorization") + ")"
		}
	}
	d := azureErrorDetail{Code: code, Message: msg}
	if code == "" {
		d.Code = strconv.Itoa(status)
	}
	if status == http.StatusBadRequest || status == http.StatusRequestEntityTooLarge {
		typ := "invalid_request_error"
		d.Type = &typ
	}
	if param != "" {
		d.Param = &param
	}
	return m.writeAzureError(w, b, status, d)
}

// contentFilterInner is the innererror of Azure's documented content-filter
// refusal (learn.microsoft.com, Azure OpenAI content filtering).
const contentFilterInner = `{"code":"ResponsibleAIPolicyViolation","content_filter_result":{"hate":{"filtered":true,"severity":"high"},"self_harm":{"filtered":false,"severity":"safe"},"sexual":{"filtered":false,"severity":"safe"},"violence":{"filtered":false,"severity":"safe"}}}`

// azureContentFilter answers a prompt refused by the content filter.
func (m *mock) azureContentFilter(w http.ResponseWriter, _ *http.Request, b *behaviour) outcome {
	param := "prompt"
	d := azureErrorDetail{Code: "content_filter", Param: &param, Status: http.StatusBadRequest,
		Message: "The response was filtered due to the prompt triggering Azure OpenAI's content management policy. " +
			"Please modify your prompt and retry. To learn more about our content filtering policies please read our documentation: https://go.microsoft.com/fwlink/?linkid=2198766",
		InnerError: json.RawMessage(contentFilterInner)}
	return m.writeAzureError(w, b, http.StatusBadRequest, d)
}

func (m *mock) writeAzureError(w http.ResponseWriter, b *behaviour, status int, d azureErrorDetail) outcome {
	body, _ := json.Marshal(azureErrorBody{Error: d})
	h := w.Header()
	h["Content-Type"] = ctJSON
	h["Content-Length"] = []string{strconv.Itoa(len(body))}
	h["Apim-Request-Id"] = []string{m.requestID(m.nextID())}
	setRetryAfter(h, b)
	w.WriteHeader(status)
	if _, err := w.Write(body); err != nil {
		return outcomeCanceled
	}
	return outcomeCompleted
}

// azurePromptFilterResults is the prompt annotation Azure adds to chat
// answers: every category safe.
const azurePromptFilterResults = `[{"prompt_index":0,"content_filter_results":{"hate":{"filtered":false,"severity":"safe"},"self_harm":{"filtered":false,"severity":"safe"},"sexual":{"filtered":false,"severity":"safe"},"violence":{"filtered":false,"severity":"safe"}}}]`

// azurePlan returns p with, on Azure paths, the prompt-annotation chunk
// Azure streams first (learn.microsoft.com, Azure OpenAI content
// streaming): {"id":"","object":"","created":0,"model":"",
// "prompt_filter_results":[…],"choices":[],"usage":null}. Event indexes
// (and so X-Mock-Disconnect-After and X-Mock-Stall-After) count it.
func azurePlan(b *behaviour, p eventPlan) eventPlan {
	if !b.azure {
		return p
	}
	inner := p.appendEvent
	p.appendEvent = func(buf []byte, i int) []byte {
		if i == 0 {
			buf = append(buf, `data: {"id":"","object":"","created":0,"model":"","prompt_filter_results":`+azurePromptFilterResults+`,"choices":[],"usage":null}`+"\n\n"...)
			return buf
		}
		return inner(buf, i-1)
	}
	p.n++
	p.delayFrom++
	p.delayTo++
	return p
}

package providers

import (
	"encoding/json"
	"sort"
	"strings"

	"github.com/sluice-ai/sluice/llm"
	"github.com/sluice-ai/sluice/wire/jsonspan"
)

// quirks are the ways an OpenAI-compatible upstream departs from OpenAI's
// request format. The zero value is OpenAI's own behaviour.
type quirks struct {
	// noStreamOptions: the upstream takes no stream_options, so a stream
	// is sent as the client wrote it (Call.PlainBody); usage is then
	// estimated when the upstream reports none.
	noStreamOptions bool
	// renameMaxCompletionTokens: the upstream knows max_tokens only, so a
	// top-level max_completion_tokens is renamed (or dropped when the body
	// has max_tokens too).
	renameMaxCompletionTokens bool
}

// preset is one well-known OpenAI-compatible vendor: where it lives and
// what it does not take. Presets are data, not packages: they configure
// the one OpenAI provider.
type preset struct {
	baseURL string
	quirks  quirks
	// responses: the vendor serves POST {base}/responses, so Responses
	// requests go through as they are.
	responses bool
	// reasoningField names the assistant-message member that carries the
	// model's reasoning ("reasoning_content" or "reasoning"). Documentation
	// for operators: wire/openai's decoder reads either as thinking, so no
	// preset needs to choose.
	reasoningField string
}

// presets is the table of OpenAI-compatible presets (options.preset of
// type openai-compatible). Each quirk names its source: the vendor's API
// reference for the chat completions request, as of 2026.
func presets() map[string]preset {
	return map[string]preset{
		// api-docs.deepseek.com/api/create-chat-completion: max_tokens only
		// (no max_completion_tokens); stream_options.include_usage is
		// documented; deepseek-reasoner answers in reasoning_content.
		"deepseek": {baseURL: "https://api.deepseek.com/v1", quirks: quirks{renameMaxCompletionTokens: true},
			reasoningField: "reasoning_content"},
		// help.aliyun.com/zh/model-studio/compatibility-of-openai-with-dashscope:
		// max_tokens only; stream_options.include_usage is documented;
		// thinking models (qwen3, QwQ) stream reasoning_content.
		"qwen": {baseURL: "https://dashscope.aliyuncs.com/compatible-mode/v1", quirks: quirks{renameMaxCompletionTokens: true},
			reasoningField: "reasoning_content"},
		// console.groq.com/docs/api-reference: max_completion_tokens is the
		// documented name (max_tokens deprecated), stream_options is
		// accepted, /openai/v1/responses is served; reasoning_format=parsed
		// puts the reasoning in message.reasoning.
		"groq": {baseURL: "https://api.groq.com/openai/v1", responses: true, reasoningField: "reasoning"},
		// docs.mistral.ai/api (chat completion): max_tokens only, and no
		// stream_options (the last chunk carries usage unasked); unknown
		// members are refused with 422.
		"mistral": {baseURL: "https://api.mistral.ai/v1", quirks: quirks{noStreamOptions: true, renameMaxCompletionTokens: true}},
		// docs.together.ai/reference/chat-completions: max_tokens only;
		// usage arrives in the last chunk, stream_options is accepted;
		// reasoning models (DeepSeek-R1) stream reasoning.
		"together": {baseURL: "https://api.together.xyz/v1", quirks: quirks{renameMaxCompletionTokens: true}, reasoningField: "reasoning"},
		// docs.fireworks.ai/api-reference/post-chatcompletions: max_tokens
		// (max_completion_tokens documented as an alias), stream_options
		// accepted; reasoning_content for reasoning models.
		"fireworks": {baseURL: "https://api.fireworks.ai/inference/v1", reasoningField: "reasoning_content"},
		// openrouter.ai/docs/api-reference/parameters: max_tokens is the
		// documented name; stream_options.include_usage is accepted (usage
		// in the final chunk); a Responses API (beta) at /api/v1/responses;
		// message.reasoning carries reasoning.
		"openrouter": {baseURL: "https://openrouter.ai/api/v1", quirks: quirks{renameMaxCompletionTokens: true}, responses: true,
			reasoningField: "reasoning"},
		// docs.x.ai/docs/api-reference: OpenAI's chat request incl.
		// max_completion_tokens and stream_options; POST /v1/responses;
		// grok-3-mini answers with reasoning_content.
		"xai": {baseURL: "https://api.x.ai/v1", responses: true, reasoningField: "reasoning_content"},
		// docs.ollama.com/api/openai-compatibility: "Supported request
		// fields" list max_tokens (not max_completion_tokens) and
		// stream_options.include_usage; /v1/responses is served
		// (stateless); thinking models send reasoning.
		"ollama": {baseURL: "http://localhost:11434/v1", quirks: quirks{renameMaxCompletionTokens: true}, responses: true,
			reasoningField: "reasoning"},
		// docs.vllm.ai (OpenAI-compatible server): the whole OpenAI chat
		// request incl. max_completion_tokens and stream_options; serves
		// /v1/responses; reasoning parsers fill reasoning_content.
		"vllm": {baseURL: "http://localhost:8000/v1", responses: true, reasoningField: "reasoning_content"},
		// lmstudio.ai/docs/api/openai-api: /v1/responses, /v1/chat/completions,
		// /v1/completions, /v1/embeddings (Responses since 0.3.29, per
		// lmstudio.ai/docs/developer/api-changelog); the chat request
		// documents max_tokens, not max_completion_tokens; reasoning models
		// send reasoning_content.
		"lmstudio": {baseURL: "http://localhost:1234/v1", quirks: quirks{renameMaxCompletionTokens: true}, responses: true,
			reasoningField: "reasoning_content"},
	}
}

// PresetNames lists the OpenAI-compatible presets, sorted.
func PresetNames() []string {
	ps := presets()
	out := make([]string, 0, len(ps))
	for k := range ps {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// compatOptions are the options of the openai-compatible family.
type compatOptions struct {
	// Preset names a vendor of presets(): its base_url is the default and
	// its quirks apply.
	Preset string `json:"preset,omitempty"`
	// Quirks override the preset's (or OpenAI's) behaviour; unset members
	// keep it.
	Quirks *compatQuirks `json:"quirks,omitempty"`
}

// compatQuirks are the operator's explicit quirks; each says whether the
// upstream supports the feature.
type compatQuirks struct {
	// StreamOptions false: never send stream_options.
	StreamOptions *bool `json:"stream_options,omitempty"`
	// MaxCompletionTokens false: rename max_completion_tokens to max_tokens.
	MaxCompletionTokens *bool `json:"max_completion_tokens,omitempty"`
	// Responses true: the upstream serves POST /responses.
	Responses *bool `json:"responses,omitempty"`
}

// resolve returns the preset with the explicit quirks applied (ok is false
// for an unknown preset name).
func (o *compatOptions) resolve() (preset, bool) {
	var p preset
	if o.Preset != "" {
		var ok bool
		if p, ok = presets()[o.Preset]; !ok {
			return p, false
		}
	}
	if q := o.Quirks; q != nil {
		if q.StreamOptions != nil {
			p.quirks.noStreamOptions = !*q.StreamOptions
		}
		if q.MaxCompletionTokens != nil {
			p.quirks.renameMaxCompletionTokens = !*q.MaxCompletionTokens
		}
		if q.Responses != nil {
			p.responses = *q.Responses
		}
	}
	return p, true
}

// readCompatOptions reads p's options leniently (validation is strict).
func readCompatOptions(p *llm.Provider) compatOptions {
	var o compatOptions
	if len(p.Options) > 0 && string(p.Options) != "null" {
		_ = json.Unmarshal(p.Options, &o)
	}
	return o
}

// compatDefaultBaseURL is the openai-compatible family's default base URL:
// the preset's, "" without one.
func compatDefaultBaseURL(p *llm.Provider) string {
	o := readCompatOptions(p)
	ps, _ := presets()[o.Preset]
	return ps.baseURL
}

// validateOpenAICompatible checks an openai-compatible provider: options
// preset (one of PresetNames) and quirks, no secrets beyond api_key
// (custom credentials go in headers).
func validateOpenAICompatible(p *llm.Provider) error {
	var o compatOptions
	if err := decodeOptions(p, &o); err != nil {
		return err
	}
	if _, ok := o.resolve(); !ok {
		return invalid("options.preset", "unknown preset %q (known: %s)", clip(o.Preset, 64), strings.Join(PresetNames(), ", "))
	}
	return noSecrets(p)
}

// apply returns body as the upstream takes it: unchanged (the same slice)
// unless a quirk rewrites it, into a new slice (the caller's body is never
// modified). Rewrites are linear and touch only the top level of the
// object; a body that is not one is left alone.
func (q quirks) apply(body []byte) []byte {
	if q.noStreamOptions {
		// The raw lane sends Call.PlainBody, which has none the gateway
		// injected, but the client's own or the translated lane's would
		// still be refused.
		body = removeMember(body, "stream_options")
	}
	if q.renameMaxCompletionTokens {
		body = renameMaxCompletionTokens(body)
	}
	return body
}

// member is the span of one top-level member: from the opening quote of
// its key to the end of its value.
type member struct{ start, end int }

// findMembers finds the first top-level members named a and b (raw keys,
// compared as written); a span's start is -1 when there is none. ok is
// false when body is not a JSON object.
func findMembers(body []byte, a, b string) (ma, mb member, ok bool) {
	ma, mb = member{-1, -1}, member{-1, -1}
	_, err := jsonspan.EachMember(body, func(key []byte, vs, ve int) error {
		switch {
		case string(key) == a && ma.start < 0:
			ma = member{keyStart(body, len(key), vs), ve}
		case string(key) == b && mb.start < 0:
			mb = member{keyStart(body, len(key), vs), ve}
		}
		return nil
	})
	return ma, mb, err == nil
}

// removeMember returns body without its first top-level member name (and
// one comma beside it), or body itself when it has none.
func removeMember(body []byte, name string) []byte {
	m, _, ok := findMembers(body, name, "")
	if !ok || m.start < 0 {
		return body
	}
	return cutMember(body, m)
}

// cutMember returns a copy of body without member m and one comma beside it.
func cutMember(body []byte, m member) []byte {
	start, end := m.start, jsonspan.SkipWS(body, m.end)
	if end < len(body) && body[end] == ',' {
		end = jsonspan.SkipWS(body, end+1)
	} else {
		for start > 0 && isSpace(body[start-1]) {
			start--
		}
		if start > 0 && body[start-1] == ',' {
			start--
		}
	}
	out := make([]byte, 0, len(body)-(end-start))
	out = append(out, body[:start]...)
	return append(out, body[end:]...)
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// renameMaxCompletionTokens renames the first top-level
// "max_completion_tokens" member to "max_tokens", or removes it when
// "max_tokens" is also there (the client's max_tokens wins).
func renameMaxCompletionTokens(body []byte) []byte {
	mct, mt, ok := findMembers(body, "max_completion_tokens", "max_tokens")
	if !ok || mct.start < 0 {
		return body
	}
	if mt.start >= 0 {
		return cutMember(body, mct)
	}
	const from = len(`"max_completion_tokens"`)
	out := make([]byte, 0, len(body))
	out = append(out, body[:mct.start]...)
	out = append(out, `"max_tokens"`...)
	return append(out, body[mct.start+from:]...)
}

// keyStart returns the index of the opening quote of the member key of
// raw length n whose value starts at vs (between the key and its value
// there is only whitespace and the colon).
func keyStart(body []byte, n, vs int) int {
	i := vs - 1
	for i > 0 && body[i] != ':' {
		i--
	}
	i--
	for i > 0 && body[i] != '"' {
		i--
	}
	return i - n - 1
}

package providers

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"

	"github.com/sluice-ai/sluice/llm"
)

// Limits on what a probe reads of an upstream's answer.
const (
	// maxProbeModelsBody bounds how much of a model list is read (and
	// discarded): only the status matters, the rest is drained so the
	// connection can be reused, and a longer list is simply cut.
	maxProbeModelsBody = 256 << 10
	// maxProbeAnswer bounds a one-token completion's answer; a longer
	// one fails the probe.
	maxProbeAnswer = 256 << 10
)

// ModelsProber is implemented by providers whose API lists its models: a
// GET of that list, with the provider's own credentials, client and
// timeouts, is their "models" probe. Providers without one (Bedrock, whose
// model list is on another service; Vertex AI) are probed with completions.
type ModelsProber interface {
	// ProbeModels GETs the provider's model list. It returns nil on a 2xx
	// answer and otherwise a *llm.Error like Do's (redacted, bounded).
	ProbeModels(ctx context.Context) error
}

// ErrProbeUnsupported is returned by Probe for a models probe of a
// provider that has no model list: probe it with completions instead.
var ErrProbeUnsupported = errors.New("provider has no model list to probe; use completion probes")

// Probe runs one active health probe of p: kind llm.ProbeModels GETs the
// provider's model list (ErrProbeUnsupported when it has none); kind
// llm.ProbeCompletion asks model for one token (max_tokens 1, "ping",
// not streamed) through the provider's translated lane, which every
// provider serves, and checks that the answer decodes. ctx bounds the
// whole probe, the answer's body included. Every error but
// ErrProbeUnsupported is a *llm.Error holding nothing of the provider's
// credentials. A probe goes straight to the provider: no quota, no usage
// record.
func Probe(ctx context.Context, p Provider, kind, model string) error {
	switch kind {
	case llm.ProbeModels:
		mp, ok := p.(ModelsProber)
		if !ok {
			return ErrProbeUnsupported
		}
		return mp.ProbeModels(ctx)
	case llm.ProbeCompletion:
		return probeCompletion(ctx, p, model)
	}
	return llm.Errorf(llm.KindInvalidRequest, "unknown probe kind")
}

// probeChat is the one-token request of a completion probe.
func probeChat(model string) *llm.ChatRequest {
	return &llm.ChatRequest{
		Model:     model,
		Messages:  []llm.Message{{Role: llm.RoleUser, Content: []llm.Part{{Type: llm.PartText, Text: "ping"}}}},
		MaxTokens: 1,
	}
}

func probeCompletion(ctx context.Context, p Provider, model string) error {
	if model == "" {
		return llm.Errorf(llm.KindInvalidRequest, "a completion probe needs the deployment's model")
	}
	resp, err := p.Do(ctx, &Call{Endpoint: llm.EndpointChat, Dialect: llm.DialectOpenAIChat, Model: model, Chat: probeChat(model), RequestID: "sluice-probe"})
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, rerr := io.ReadAll(io.LimitReader(resp.Body, maxProbeAnswer+1))
	switch {
	case rerr != nil && ctx.Err() != nil:
		return llm.Errorf(llm.KindTimeout, "probe answer not received in time")
	case rerr != nil:
		return llm.Errorf(llm.KindUpstream, "probe answer broken off")
	case len(body) > maxProbeAnswer:
		return llm.Errorf(llm.KindUpstream, "probe answer larger than %d bytes", maxProbeAnswer)
	case resp.Decoder == nil:
		return nil
	}
	_, err = resp.Decoder.Chat(body)
	return err
}

// probeGET GETs url (with sign, when set, adding per-call credentials) and
// drains at most maxProbeModelsBody of a 2xx answer.
func (u *upstream) probeGET(ctx context.Context, url string, sign func(ctx context.Context, req *http.Request, body []byte) (string, error)) error {
	resp, e := u.do(ctx, request{method: http.MethodGet, url: url, accept: acceptJSON, requestID: "sluice-probe", sign: sign})
	if e != nil {
		return e
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, io.LimitReader(resp.Body, maxProbeModelsBody)); err != nil && ctx.Err() != nil {
		return llm.Errorf(llm.KindTimeout, "probe answer not received in time")
	}
	return nil
}

// ProbeModels implements ModelsProber: GET {base}/models.
func (o *OpenAI) ProbeModels(ctx context.Context) error {
	return o.probeGET(ctx, o.base+"/models", nil)
}

// ProbeModels implements ModelsProber: GET {base}/openai/v1/models with
// use_v1, else {base}/openai/models?api-version=….
func (a *Azure) ProbeModels(ctx context.Context) error {
	if a.v1 {
		return a.probeGET(ctx, a.base+"/openai/v1/models", nil)
	}
	return a.probeGET(ctx, a.base+"/openai/models?api-version="+a.apiVersion, nil)
}

// ProbeModels implements ModelsProber: GET {base}/v1/models?limit=1.
func (a *Anthropic) ProbeModels(ctx context.Context) error {
	return a.probeGET(ctx, strings.TrimSuffix(a.messages, "/messages")+"/models?limit=1", nil)
}

// ProbeModels implements ModelsProber: GET {base}/{api_version}/models?pageSize=1.
func (g *Gemini) ProbeModels(ctx context.Context) error {
	return g.g.probeGET(ctx, strings.TrimSuffix(g.prefix, "/")+"?pageSize=1", nil)
}

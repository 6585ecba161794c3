package router

import (
	"github.com/sluice-ai/sluice/llm"
	"github.com/sluice-ai/sluice/wire/anthropic"
	"github.com/sluice-ai/sluice/wire/openai"
	"github.com/sluice-ai/sluice/wire/responses"
)

// inbound is what the router needs of one client dialect: its error
// shape, how to watch its answers on the raw lane, and the wire codecs of
// the translated lane (decode the client's request into neutral form,
// render neutral answers back). The codecs live in wire/<family>; the
// router only picks them by endpoint and loops.
type inbound struct {
	dialect llm.Dialect
	// appendError renders an error body in the dialect's shape.
	appendError func(dst []byte, e *llm.Error) []byte
	// sniffer watches a raw-lane stream; nil for OpenAI chat and
	// completions, whose relay reads chunks itself.
	sniffer func() rawSniffer
	// bodyUsage reads usage from a raw-lane JSON answer; nil for the
	// OpenAI dialects the relay reads itself.
	bodyUsage func(body []byte) (llm.Usage, bool)
	// deltaText and bodyText extract the generated text of a raw-lane
	// stream event and JSON answer, to estimate tokens when the upstream
	// reported no usage (set with sniffer and bodyUsage).
	deltaText func(dst, data []byte) []byte
	bodyText  func(body []byte) string

	// The translated lane. decode is nil for dialects only the raw lane
	// serves (legacy completions).
	decode   func(raw []byte) (*llm.ChatRequest, *llm.Error)
	response func(dst []byte, r *llm.ChatResponse) []byte
	encoder  func(id, model string, created int64, includeUsage bool) llm.StreamEncoder

	// decodeEmbed and embedResponse translate embeddings.
	decodeEmbed   func(raw []byte) (*llm.EmbedRequest, *llm.Error)
	embedResponse func(dst []byte, r *llm.EmbedResponse, base64 bool) []byte
}

// rawSniffer watches the events of a raw-lane stream that the router
// relays as they are: usage, errors and the end of the answer.
type rawSniffer interface {
	// Event inspects one event. errV is the error object of an error
	// event (nil otherwise) and status the HTTP status it implies (0 when
	// it says none); final is true on the event that completes the answer.
	Event(name, data []byte) (errV []byte, status int, final bool)
	// Usage is the usage the stream reported, ok false when none.
	Usage() (u llm.Usage, ok bool)
}

// translates reports whether the dialect has a translated lane for chat.
func (in *inbound) translates() bool { return in.decode != nil }

// inbounds returns the dialect of every relayed endpoint.
func inbounds() map[llm.Endpoint]*inbound {
	embed := func(dst []byte, r *llm.EmbedResponse, b64 bool) []byte {
		if b64 {
			return openai.AppendEmbedResponseBase64(dst, r)
		}
		return openai.AppendEmbedResponse(dst, r)
	}
	return map[llm.Endpoint]*inbound{
		llm.EndpointChat: {
			dialect:     llm.DialectOpenAIChat,
			appendError: openai.AppendError,
			decode:      openai.DecodeChatRequest,
			response:    openai.AppendChatResponse,
			encoder:     openai.NewStreamEncoder,
		},
		llm.EndpointCompletions: {dialect: llm.DialectOpenAICompletions, appendError: openai.AppendError},
		llm.EndpointEmbeddings: {
			dialect:       llm.DialectOpenAIEmbeddings,
			appendError:   openai.AppendError,
			decodeEmbed:   openai.DecodeEmbedRequest,
			embedResponse: embed,
		},
		llm.EndpointResponses: {
			dialect:     llm.DialectOpenAIResponses,
			appendError: responses.AppendError,
			sniffer:     func() rawSniffer { return &responses.Sniffer{} },
			bodyUsage:   responses.ResponseUsage,
			deltaText:   responses.DeltaText,
			bodyText:    responses.ResponseText,
			decode:      responses.DecodeRequest,
			response:    responses.AppendResponse,
			encoder: func(id, model string, created int64, _ bool) llm.StreamEncoder {
				return responses.NewStreamEncoder(id, model, created)
			},
		},
		llm.EndpointMessages: {
			dialect:     llm.DialectAnthropicMessages,
			appendError: anthropic.AppendError,
			sniffer:     func() rawSniffer { return &anthropic.Sniffer{} },
			bodyUsage:   anthropic.ResponseUsage,
			deltaText:   anthropic.DeltaText,
			bodyText:    anthropic.ResponseText,
			decode:      anthropic.DecodeRequest,
			response:    anthropic.AppendResponse,
			encoder: func(id, model string, _ int64, _ bool) llm.StreamEncoder {
				return anthropic.NewStreamEncoder(id, model)
			},
		},
	}
}

// Package openai is the OpenAI Chat Completions (and Embeddings) wire
// codec: pure functions between OpenAI's JSON and server-sent events and
// the neutral form of package llm.
//
// Inbound (a client speaks OpenAI to the gateway, the provider does not):
// DecodeChatRequest, AppendChatResponse, NewStreamEncoder,
// DecodeEmbedRequest, AppendEmbedResponse and AppendError.
// Outbound (the provider speaks OpenAI, the client does not):
// AppendChatRequest, DecodeChatResponse, NewStreamDecoder,
// AppendEmbedRequest and DecodeEmbedResponse.
//
// Everything read from outside is bounded: at most MaxChoices choices,
// MaxToolCalls tool calls per choice and MaxParts content parts per
// message; indexes an upstream sends are checked against those bounds
// before anything is allocated for them. No function panics on hostile
// input (the Fuzz targets check it).
package openai

// Bounds on what an answer or a request may hold.
const (
	// MaxChoices bounds the choices of an answer (and their indexes).
	MaxChoices = 128
	// MaxToolCalls bounds the tool calls of one choice (and their indexes).
	MaxToolCalls = 128
	// MaxParts bounds the content parts of one message.
	MaxParts = 4096
)

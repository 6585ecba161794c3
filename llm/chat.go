package llm

import (
	"encoding/json"
	"strings"
)

// Dialect names the wire format a request arrives in (inbound) or an
// upstream speaks (outbound). The router reads the client's dialect from
// the path; a provider takes the dialects it speaks natively as they are
// (the raw lane: the client's bytes, the model spliced in) and every other
// one through the neutral ChatRequest (the translated lane).
type Dialect uint8

// Dialects.
const (
	DialectNone Dialect = iota
	// DialectOpenAIChat is POST /v1/chat/completions.
	DialectOpenAIChat
	// DialectOpenAICompletions is POST /v1/completions (legacy text).
	DialectOpenAICompletions
	// DialectOpenAIEmbeddings is POST /v1/embeddings.
	DialectOpenAIEmbeddings
	// DialectOpenAIResponses is POST /v1/responses.
	DialectOpenAIResponses
	// DialectAnthropicMessages is POST /v1/messages.
	DialectAnthropicMessages
)

// String returns the dialect's name, as used in logs.
func (d Dialect) String() string {
	switch d {
	case DialectOpenAIChat:
		return "openai.chat"
	case DialectOpenAICompletions:
		return "openai.completions"
	case DialectOpenAIEmbeddings:
		return "openai.embeddings"
	case DialectOpenAIResponses:
		return "openai.responses"
	case DialectAnthropicMessages:
		return "anthropic.messages"
	}
	return "none"
}

// Role is the author of a message in the neutral form.
type Role string

// Roles. A tool result is a message of its own (RoleTool with ToolCallID)
// whatever the dialect: Anthropic's tool_result blocks inside a user
// message and Gemini's functionResponse parts are split out on decode and
// merged back on encode.
const (
	RoleSystem    Role = "system"
	RoleUser      Role = "user"
	RoleAssistant Role = "assistant"
	RoleTool      Role = "tool"
)

// PartType is the kind of one piece of message content.
type PartType uint8

// Part types.
const (
	PartText PartType = iota + 1
	PartImage
	// PartThinking is a model's reasoning (Anthropic thinking blocks,
	// OpenAI-compatible reasoning_content). Signature, when set, must be
	// sent back unchanged to the provider that made it.
	PartThinking
)

// Part is one piece of message content.
type Part struct {
	Type PartType
	// Text of a text or thinking part.
	Text string
	// Signature of a thinking part (Anthropic), opaque.
	Signature string
	// Image of an image part.
	Image *Image
	// CacheControl marks a prompt-cache breakpoint after this part
	// (Anthropic "cache_control": {"type":"ephemeral"}); providers without
	// explicit caching ignore it.
	CacheControl bool
}

// Image is an image given by URL or inline. Exactly one of URL and Data is
// set. A provider that needs bytes for a URL fetches it through the
// gateway's guarded fetcher (providers.ImageFetcher), never directly.
type Image struct {
	// URL is an http(s) URL. data: URLs are decoded into Data on input.
	URL string
	// MediaType is the MIME type of Data ("image/png"); may be empty for a URL.
	MediaType string
	// Data is the image, base64-encoded (as every wire format carries it).
	Data string
	// Detail is OpenAI's image detail hint ("low", "high", "auto").
	Detail string
}

// ToolCall is a function call the model made.
type ToolCall struct {
	ID   string
	Name string
	// Arguments is the JSON text of the arguments, as the model wrote it.
	Arguments string
}

// Message is one turn of a conversation.
type Message struct {
	Role    Role
	Content []Part
	// ToolCalls are the calls an assistant message makes.
	ToolCalls []ToolCall
	// ToolCallID is the call a RoleTool message answers.
	ToolCallID string
	// IsError marks a tool result that reports a failure (Anthropic is_error).
	IsError bool
	// Name is OpenAI's optional participant name.
	Name string
}

// Tool is a function the model may call.
type Tool struct {
	Name        string
	Description string
	// Parameters is the JSON Schema of the arguments (an object schema);
	// nil means no parameters.
	Parameters json.RawMessage
	// Strict asks for exact schema adherence where supported.
	Strict bool
}

// ToolChoice says whether and which tools the model must call.
type ToolChoice struct {
	// Mode is "" (unset: the provider's default), "auto", "none",
	// "required" (any tool) or "tool" (the tool named Name).
	Mode string
	Name string
}

// ResponseFormat constrains the answer's format.
type ResponseFormat struct {
	// Type is "text", "json_object" or "json_schema".
	Type string
	// Name, Schema and Strict describe a json_schema format.
	Name   string
	Schema json.RawMessage
	Strict bool
}

// ChatRequest is a chat request in neutral form: what every dialect's
// request decoder produces and every outbound encoder consumes. Only the
// translated lane builds one. Pointers and zero values mean "not set": an
// encoder sends only what the client set.
type ChatRequest struct {
	// Model is the upstream model (the router sets it to the deployment's).
	Model string
	// System is the system prompt (OpenAI system/developer messages at the
	// head of the conversation, Anthropic system, Gemini
	// systemInstruction). System messages later in an OpenAI conversation
	// stay in Messages with RoleSystem.
	System   []Part
	Messages []Message
	Tools    []Tool
	// ToolChoice is the client's tool choice.
	ToolChoice ToolChoice
	// ParallelToolCalls is false when the client forbade parallel calls.
	ParallelToolCalls *bool
	// MaxTokens bounds the completion; 0 is unset (Anthropic requires
	// one: its encoder fills a default).
	MaxTokens   int
	Temperature *float64
	TopP        *float64
	TopK        *int
	Stop        []string
	// N is the number of choices; 0 and 1 mean one.
	N    int
	Seed *int64
	// Stream asks for server-sent events.
	Stream bool
	// ResponseFormat is nil when unset.
	ResponseFormat *ResponseFormat
	// ReasoningEffort is OpenAI's "low"/"medium"/"high" ("" when unset).
	ReasoningEffort string
	// ThinkingBudget is Anthropic's thinking.budget_tokens (0 when off).
	ThinkingBudget int
	// User identifies the end user to the provider (OpenAI user,
	// Anthropic metadata.user_id).
	User string
	// PresencePenalty and FrequencyPenalty are OpenAI's; dropped where a
	// provider lacks them.
	PresencePenalty  *float64
	FrequencyPenalty *float64
}

// EmbedRequest is an embeddings request in neutral form.
type EmbedRequest struct {
	Model  string
	Inputs []string
	// Dimensions asks for shorter vectors; 0 is unset.
	Dimensions int
	// Base64 asks for base64-encoded float32 vectors in the answer.
	Base64 bool
	User   string
}

// EmbedResponse is an embeddings answer in neutral form.
type EmbedResponse struct {
	Model   string
	Vectors [][]float32
	Usage   Usage
	// UsageKnown is false when the upstream reported no usage.
	UsageKnown bool
}

// Finish reasons of the neutral form (OpenAI's names).
const (
	FinishStop          = "stop"
	FinishLength        = "length"
	FinishToolCalls     = "tool_calls"
	FinishContentFilter = "content_filter"
)

// Choice is one alternative of an answer.
type Choice struct {
	Index int
	// Message is the assistant's message: text and thinking parts, tool calls.
	Message      Message
	FinishReason string
}

// ChatResponse is a complete (non-streamed) chat answer in neutral form.
type ChatResponse struct {
	ID      string
	Model   string
	Created int64 // Unix seconds; 0 when the upstream sent none
	Choices []Choice
	Usage   Usage
	// UsageKnown is false when the upstream reported no usage; the router
	// then estimates it.
	UsageKnown bool
}

// EventKind is the kind of a neutral stream event.
type EventKind uint8

// Event kinds. A translated stream is: one EventStart, then text,
// thinking and tool-call events (of one or more choices, interleaved),
// an EventFinish per choice, an EventUsage when the upstream reports
// usage, and the end of the stream (io.EOF) — or an EventError, after
// which the stream ends.
const (
	// EventStart opens the answer: ID, Model (and Usage.PromptTokens when
	// the upstream says so up front, as Anthropic's message_start does).
	EventStart EventKind = iota + 1
	// EventText is a text fragment of choice Index.
	EventText
	// EventThinking is a reasoning fragment (Text), or a thinking
	// block's Signature.
	EventThinking
	// EventToolStart opens tool call Tool of choice Index: ID, Name.
	EventToolStart
	// EventToolArgs is a fragment (Text) of tool call Tool's arguments.
	EventToolArgs
	// EventToolEnd closes tool call Tool.
	EventToolEnd
	// EventFinish ends choice Index with FinishReason.
	EventFinish
	// EventUsage carries usage so far; the last one counts.
	EventUsage
	// EventError is an error the upstream reported mid-stream (Err);
	// nothing follows it.
	EventError
)

// Event is one neutral stream event. Decoders reuse one Event: it (and
// its strings' backing) is valid until the next call to Next. The text of
// a delta is backed by a buffer the decoder reuses, so a consumer that
// keeps it copies it (append to a []byte, a strings.Builder, Clone):
// s += ev.Text, from an empty s, would keep the buffer itself.
type Event struct {
	Kind  EventKind
	Index int // choice index
	Tool  int // tool-call index within the choice
	ID    string
	Name  string
	Model string
	Text  string
	// Signature of a thinking block (EventThinking).
	Signature    string
	FinishReason string
	Usage        Usage
	Err          *Error
}

// Clone returns a copy of e whose strings own their bytes, for keeping
// an event past the next call to Next (a decoder may back them with a
// buffer it reuses).
func (e *Event) Clone() Event {
	c := *e
	c.ID, c.Name, c.Model = strings.Clone(e.ID), strings.Clone(e.Name), strings.Clone(e.Model)
	c.Text, c.Signature, c.FinishReason = strings.Clone(e.Text), strings.Clone(e.Signature), strings.Clone(e.FinishReason)
	return c
}

// EventStream is a pulled stream of neutral events decoded from an
// upstream body. It holds no goroutine: each Next reads from the body as
// needed. Close releases the body (dropping the upstream connection when
// the stream is not finished).
type EventStream interface {
	// Next returns the next event, or io.EOF after the last one. A stream
	// that ends without a proper end (a cut connection, a malformed event)
	// returns another error. The event is valid until the next call.
	Next() (*Event, error)
	Close() error
}

// StreamEncoder renders neutral events as a client dialect's stream
// bytes (server-sent events). It keeps the state the dialect needs
// (open content blocks, tool-call indexes, accumulated usage).
type StreamEncoder interface {
	// Encode appends the bytes for ev to dst (possibly none).
	Encode(dst []byte, ev *Event) []byte
	// Finish appends the end of a complete stream (OpenAI's [DONE],
	// Anthropic's message_delta and message_stop…) with the final usage.
	Finish(dst []byte, u Usage) []byte
	// Fail appends an error event that ends a broken stream.
	Fail(dst []byte, e *Error) []byte
}

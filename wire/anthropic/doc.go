// Package anthropic is the codec of Anthropic's Messages API
// (POST /v1/messages): pure functions over bytes and readers, no HTTP.
//
// Inbound (a client speaks Messages, the provider does not): DecodeRequest,
// AppendResponse, NewStreamEncoder, AppendError. Outbound (the provider is
// Anthropic, the client speaks another dialect): AppendRequest,
// DecodeResponse, NewStreamDecoder. On the raw lane (Messages in, Anthropic
// out) the bytes are relayed untouched and Sniffer and ResponseUsage read
// the usage and in-band errors from them.
//
// Usage is normalised as llm.Usage wants it: Anthropic's input_tokens
// excludes cache reads and writes, so PromptTokens = input_tokens +
// cache_read_input_tokens + cache_creation_input_tokens, and the encoders
// subtract them again.
//
// Choices made where the two forms do not meet:
//   - System messages in the middle of a neutral conversation are appended
//     to the system prompt (Messages has no system role in messages).
//   - A neutral thinking part with a signature but no text is a
//     redacted_thinking block (its data is the signature), and back.
//   - response_format json_object/json_schema is refused (400), not
//     emulated with a forced tool: the client would get a tool call where
//     it expects text.
//   - reasoning_effort maps to a thinking budget when no budget is set
//     (low 1024, medium 2048, high 4096 tokens, as LiteLLM does);
//     presence/frequency penalties and seed are dropped.
//   - Messages whose content ends up empty are left out (Anthropic refuses
//     empty text blocks).
//
// Every parser is linear in its input and bounded: at most MaxBlocks
// content blocks per message or answer, MaxToolCalls tool calls, stream
// block indexes below MaxBlockIndex.
package anthropic

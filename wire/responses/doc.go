// Package responses is the inbound codec of OpenAI's Responses API
// (POST /v1/responses) for the gateway's translated lane, and the usage and
// error sniffer of its raw lane.
//
// On the translated lane DecodeRequest turns a Responses request into the
// neutral llm.ChatRequest, AppendResponse renders a neutral answer as a
// Response object, and NewStreamEncoder renders neutral stream events as
// Responses streaming events (response.created … response.completed). On
// the raw lane (OpenAI and Azure upstreams, which speak the dialect
// natively) the router relays the upstream's bytes untouched and watches
// them with a Sniffer (streams) or ResponseUsage (whole bodies).
//
// The gateway keeps no conversation state: requests that lean on OpenAI's
// stored responses (previous_response_id, conversation, store, background,
// item references) and OpenAI's hosted tools (web_search, file_search,
// computer use…) are refused with a 400 on the translated lane.
//
// Thinking blocks (Anthropic's signed thinking, redacted thinking) leave as
// reasoning items whose encrypted_content carries the signature after
// ThinkingPrefix; clients send reasoning items back in the next turn's
// input as they do OpenAI's, and DecodeRequest restores the thinking parts
// of the assistant turn they belong to. OpenAI's own encrypted reasoning is
// dropped on the translated lane: only OpenAI can read it.
//
// The package imports llm, wire/jsonspan and the standard library only;
// every function is linear in its input and bounded in what it keeps.
package responses

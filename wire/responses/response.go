package responses

import (
	"crypto/rand"
	"encoding/hex"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-ai/sluice/llm"
)

// maxIDBytes bounds the part of an upstream id kept in the ids the
// gateway makes from it.
const maxIDBytes = 64

// ResponseID returns the Responses id ("resp_…") for an answer whose
// upstream id is id: the id itself when it already is one, else the id's
// letters, digits, '-' and '_' (its chat prefix cut, at most 64 bytes)
// after "resp_"; random when nothing is left.
func ResponseID(id string) string {
	if strings.HasPrefix(id, "resp_") {
		id = id[len("resp_"):]
	} else {
		for _, p := range []string{"chatcmpl-", "chatcmpl_", "msg_"} {
			if strings.HasPrefix(id, p) {
				id = id[len(p):]
				break
			}
		}
	}
	var b strings.Builder
	b.Grow(len("resp_") + min(len(id), maxIDBytes))
	b.WriteString("resp_")
	for i := 0; i < len(id) && b.Len() < len("resp_")+maxIDBytes; i++ {
		c := id[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' {
			b.WriteByte(c)
		}
	}
	if b.Len() == len("resp_") {
		var r [16]byte
		_, _ = rand.Read(r[:])
		b.WriteString(hex.EncodeToString(r[:]))
	}
	return b.String()
}

// itemID returns the id of output item n of kind prefix ("msg", "rs",
// "fc") in the response whose id is respID.
func itemID(prefix, respID string, n int) string {
	base := strings.TrimPrefix(respID, "resp_")
	return prefix + "_" + base + "_" + strconv.Itoa(n)
}

// object is what varies between the Response objects the codec writes.
type object struct {
	id      string
	model   string
	created int64
	// status is completed, incomplete, in_progress or failed.
	status string
	// completed is completed_at, written for a completed response.
	completed int64
	// incomplete is incomplete_details.reason for an incomplete response.
	incomplete string
	// output is the output items, comma-separated, without brackets.
	output []byte
	// usage is written when set (null otherwise).
	usage *llm.Usage
	// err is the error of a failed response.
	err *llm.Error
}

// appendObject appends a Response object with every member OpenAI
// documents as always present, the request-echo members (instructions,
// tools, sampling…) at their defaults: the neutral answer does not carry
// the request.
func appendObject(b []byte, o *object) []byte {
	b = append(b, `{"id":`...)
	b = appendString(b, o.id)
	b = append(b, `,"object":"response","created_at":`...)
	b = appendInt(b, o.created)
	b = append(b, `,"status":"`...)
	b = append(b, o.status...)
	b = append(b, `","background":false,"completed_at":`...)
	if o.status == "completed" && o.completed != 0 {
		b = appendInt(b, o.completed)
	} else {
		b = append(b, "null"...)
	}
	b = append(b, `,"error":`...)
	if o.err != nil {
		b = append(b, `{"code":"`...)
		b = append(b, failedCode(o.err)...)
		b = append(b, `","message":`...)
		b = appendString(b, o.err.Message)
		b = append(b, '}')
	} else {
		b = append(b, "null"...)
	}
	b = append(b, `,"incomplete_details":`...)
	if o.incomplete != "" {
		b = append(b, `{"reason":"`...)
		b = append(b, o.incomplete...)
		b = append(b, `"}`...)
	} else {
		b = append(b, "null"...)
	}
	b = append(b, `,"instructions":null,"max_output_tokens":null,"model":`...)
	b = appendString(b, o.model)
	b = append(b, `,"output":[`...)
	b = append(b, o.output...)
	b = append(b, `],"parallel_tool_calls":true,"previous_response_id":null,"reasoning":{"effort":null,"summary":null},"store":false,"temperature":1,"text":{"format":{"type":"text"}},"tool_choice":"auto","tools":[],"top_p":1,"truncation":"disabled","usage":`...)
	if o.usage != nil {
		b = appendUsage(b, o.usage)
	} else {
		b = append(b, "null"...)
	}
	return append(b, `,"user":null,"metadata":{}}`...)
}

// failedCode is the code of a failed response's error: one of the codes
// OpenAI's SDKs know (response.error.code is an enumeration).
func failedCode(e *llm.Error) string {
	switch e.Kind {
	case llm.KindRateLimited:
		return "rate_limit_exceeded"
	case llm.KindInvalidRequest, llm.KindTooLarge:
		return "invalid_prompt"
	}
	return "server_error"
}

// appendUsage appends u as a Responses usage object.
func appendUsage(b []byte, u *llm.Usage) []byte {
	b = append(b, `{"input_tokens":`...)
	b = appendInt(b, int64(u.PromptTokens))
	b = append(b, `,"input_tokens_details":{"cached_tokens":`...)
	b = appendInt(b, int64(u.CacheReadTokens))
	b = append(b, `},"output_tokens":`...)
	b = appendInt(b, int64(u.CompletionTokens))
	b = append(b, `,"output_tokens_details":{"reasoning_tokens":`...)
	b = appendInt(b, int64(u.ReasoningTokens))
	b = append(b, `},"total_tokens":`...)
	b = appendInt(b, int64(u.PromptTokens)+int64(u.CompletionTokens))
	return append(b, '}')
}

// appendMessageItem appends an output message item with one output_text
// part.
func appendMessageItem(b []byte, id, status, text string) []byte {
	b = append(b, `{"id":`...)
	b = appendString(b, id)
	b = append(b, `,"type":"message","status":"`...)
	b = append(b, status...)
	b = append(b, `","content":[`...)
	b = appendTextPart(b, text)
	return append(b, `],"role":"assistant"}`...)
}

// appendTextPart appends an output_text content part.
func appendTextPart(b []byte, text string) []byte {
	b = append(b, `{"type":"output_text","annotations":[],"logprobs":[],"text":`...)
	b = appendString(b, text)
	return append(b, '}')
}

// appendSummaryPart appends a reasoning summary_text part.
func appendSummaryPart(b []byte, text string) []byte {
	b = append(b, `{"type":"summary_text","text":`...)
	b = appendString(b, text)
	return append(b, '}')
}

// ThinkingPrefix starts the encrypted_content of a reasoning item that
// carries a thinking block's signature (Anthropic's, Gemini's thought
// signature): a client sends the item back in the next turn's input, as
// it does OpenAI's encrypted reasoning, and DecodeRequest turns it into
// the thinking part the provider needs again (Anthropic refuses a tool
// result turn without the thinking block that led to the call). An item
// without text is a redacted thinking block.
const ThinkingPrefix = "sluice.thinking.v1:"

// appendReasoningItem appends a reasoning item with one summary part
// (none when text is empty) and the signature, if any, in
// encrypted_content.
func appendReasoningItem(b []byte, id, text, sig string) []byte {
	b = append(b, `{"id":`...)
	b = appendString(b, id)
	b = append(b, `,"type":"reasoning","summary":[`...)
	if text != "" {
		b = appendSummaryPart(b, text)
	}
	b = append(b, ']')
	if sig != "" {
		b = append(b, `,"encrypted_content":`...)
		b = appendString(b, ThinkingPrefix+sig)
	}
	return append(b, '}')
}

// appendFunctionCallItem appends a function_call output item.
func appendFunctionCallItem(b []byte, id, status, callID, name, args string) []byte {
	b = append(b, `{"id":`...)
	b = appendString(b, id)
	b = append(b, `,"type":"function_call","status":"`...)
	b = append(b, status...)
	b = append(b, `","arguments":`...)
	b = appendString(b, args)
	b = append(b, `,"call_id":`...)
	b = appendString(b, callID)
	b = append(b, `,"name":`...)
	b = appendString(b, name)
	return append(b, '}')
}

// incompleteReason maps a neutral finish reason to the reason of an
// incomplete response ("" for a complete one).
func incompleteReason(finish string) string {
	switch finish {
	case llm.FinishLength:
		return "max_output_tokens"
	case llm.FinishContentFilter:
		return "content_filter"
	}
	return ""
}

// AppendResponse appends r as a Response object (choice 0): a reasoning
// item per thinking part (its signature in encrypted_content, see
// ThinkingPrefix), a message item for its text, a function_call
// item per tool call, and usage. A length or content_filter finish makes
// it an incomplete response, as OpenAI reports one.
func AppendResponse(dst []byte, r *llm.ChatResponse) []byte {
	id := ResponseID(r.ID)
	created := r.Created
	if created == 0 {
		created = time.Now().Unix()
	}
	o := object{id: id, model: r.Model, created: created, status: "completed", completed: time.Now().Unix(), usage: &r.Usage}
	var msg llm.Message
	if len(r.Choices) > 0 {
		msg = r.Choices[0].Message
		o.incomplete = incompleteReason(r.Choices[0].FinishReason)
	}
	itemStatus := "completed"
	if o.incomplete != "" {
		o.status, itemStatus = "incomplete", "incomplete"
	}
	var out []byte
	n := 0
	for _, p := range msg.Content {
		if p.Type != llm.PartThinking || p.Text == "" && p.Signature == "" {
			continue
		}
		if n > 0 {
			out = append(out, ',')
		}
		out = appendReasoningItem(out, itemID("rs", id, n), p.Text, p.Signature)
		n++
	}
	var text strings.Builder
	for _, p := range msg.Content {
		if p.Type == llm.PartText {
			text.WriteString(p.Text)
		}
	}
	if text.Len() > 0 || len(msg.ToolCalls) == 0 {
		if n > 0 {
			out = append(out, ',')
		}
		out = appendMessageItem(out, itemID("msg", id, n), itemStatus, text.String())
		n++
	}
	for i, tc := range msg.ToolCalls {
		if n > 0 {
			out = append(out, ',')
		}
		callID := tc.ID
		if callID == "" {
			callID = itemID("call", id, i)
		}
		out = appendFunctionCallItem(out, itemID("fc", id, n), "completed", callID, tc.Name, tc.Arguments)
		n++
	}
	o.output = out
	return appendObject(dst, &o)
}

// AppendError appends e in OpenAI's error shape,
// {"error":{"message","type","param","code"}}, as the Responses API
// answers errors.
func AppendError(dst []byte, e *llm.Error) []byte {
	dst = append(dst, `{"error":{"message":`...)
	dst = appendString(dst, e.Message)
	dst = append(dst, `,"type":`...)
	dst = appendString(dst, e.Type)
	dst = append(dst, `,"param":`...)
	dst = appendNullable(dst, e.Param)
	dst = append(dst, `,"code":`...)
	dst = appendNullable(dst, e.Code)
	return append(dst, "}}"...)
}

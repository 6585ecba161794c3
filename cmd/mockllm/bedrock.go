package main

import (
	"crypto/subtle"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"net/http"
	"strconv"
	"strings"
)

// This file serves Amazon Bedrock's Converse API: POST
// /model/{modelId}/converse (JSON) and /model/{modelId}/converse-stream
// (application/vnd.amazon.eventstream frames), with Bedrock's error shape
// ({"message"} and an x-amzn-ErrorType header). When an API key is
// configured, requests must carry a SigV4 Authorization header (its
// signature is not verified) or "Bearer <key>" (a Bedrock API key).

// converseRequest is the part of a Converse body the mock reads.
type converseRequest struct {
	Messages []struct {
		Role    string `json:"role"`
		Content []struct {
			Text       *string         `json:"text"`
			ToolResult json.RawMessage `json:"toolResult"`
		} `json:"content"`
	} `json:"messages"`
	System []struct {
		Text string `json:"text"`
	} `json:"system"`
	ToolConfig *struct {
		Tools []struct {
			ToolSpec struct {
				Name string `json:"name"`
			} `json:"toolSpec"`
		} `json:"tools"`
	} `json:"toolConfig"`
}

// hdrStreamException asks a ConverseStream answer to fail mid-stream:
// after messageStart and one delta comes an exception frame of this type
// (throttlingException, serviceUnavailableException,
// modelStreamErrorException, validationException, internalServerException).
const hdrStreamException = "X-Mock-Stream-Exception"

// bedrockExceptions are the exception types a ConverseStream may send.
func bedrockException(typ string) bool {
	switch typ {
	case "throttlingException", "serviceUnavailableException", "modelStreamErrorException", "validationException", "internalServerException":
		return true
	}
	return false
}

// bedrockPadding mimics the "p" member Bedrock pads stream events with.
const bedrockPadding = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123"

// bedrockAuthorized checks the Authorization header when a key is set.
func (m *mock) bedrockAuthorized(r *http.Request) bool {
	if m.wantAuth == nil {
		return true
	}
	got := r.Header["Authorization"]
	if len(got) != 1 {
		return false
	}
	if strings.HasPrefix(got[0], "AWS4-HMAC-SHA256 Credential=") {
		return strings.Contains(got[0], "SignedHeaders=") && strings.Contains(got[0], "Signature=")
	}
	return subtle.ConstantTimeCompare([]byte(got[0]), m.wantAuth) == 1
}

// bedrockErrorType returns the AWS error type Bedrock sends for status.
func bedrockErrorType(status int) string {
	switch status {
	case http.StatusBadRequest:
		return "ValidationException"
	case http.StatusUnauthorized, http.StatusForbidden:
		return "AccessDeniedException"
	case http.StatusNotFound:
		return "ResourceNotFoundException"
	case http.StatusRequestTimeout:
		return "ModelTimeoutException"
	case http.StatusFailedDependency:
		return "ModelErrorException"
	case http.StatusTooManyRequests:
		return "ThrottlingException"
	case http.StatusServiceUnavailable:
		return "ServiceUnavailableException"
	}
	if status >= 500 {
		return "InternalServerException"
	}
	return "ValidationException"
}

// bedrockError writes a Bedrock error answer.
func (m *mock) bedrockError(w http.ResponseWriter, r *http.Request, b *behaviour, status int, msg string) outcome {
	if b.echoKey {
		msg += " (received Authorization: " + r.Header.Get("Authorization") + ")"
	}
	body, _ := json.Marshal(struct {
		Message string `json:"message"`
	}{msg})
	h := w.Header()
	h["Content-Type"] = ctJSON
	h["Content-Length"] = []string{strconv.Itoa(len(body))}
	h["X-Amzn-Requestid"] = []string{m.requestID(m.nextID())}
	h["X-Amzn-Errortype"] = []string{bedrockErrorType(status) + ":http://internal.amazon.com/coral/com.amazon.bedrock/"}
	setRetryAfter(h, b)
	w.WriteHeader(status)
	if _, err := w.Write(body); err != nil {
		return outcomeCanceled
	}
	return outcomeCompleted
}

// handleConverse serves POST /model/{modelId}/converse and /converse-stream.
func (m *mock) handleConverse(stream bool) func(http.ResponseWriter, *http.Request) outcome {
	return func(w http.ResponseWriter, r *http.Request) outcome {
		b, berr := resolve(&m.cfg, r.Header)
		body, err := readBody(r)
		m.stats.record(r.Header, body)
		if !sleep(r.Context(), b.latency) {
			return outcomeCanceled
		}
		if !m.bedrockAuthorized(r) {
			msg := "The security token included in the request is invalid."
			if len(r.Header["Authorization"]) == 0 {
				msg = "Missing Authentication Token"
			}
			return m.bedrockError(w, r, &b, http.StatusForbidden, msg)
		}
		exc, _ := header(r.Header, hdrStreamException)
		if berr == nil && exc != "" && !bedrockException(exc) {
			berr = fmt.Errorf("invalid %s header: want one of ConverseStream's exception types", hdrStreamException)
		}
		if berr != nil {
			return m.bedrockError(w, r, &b, http.StatusBadRequest, berr.Error())
		}
		if err != nil {
			status := http.StatusBadRequest
			if errors.Is(err, errBodyTooLarge) {
				status = http.StatusRequestEntityTooLarge
			}
			return m.bedrockError(w, r, &b, status, err.Error())
		}
		if b.status != 0 {
			msg := fmt.Sprintf("The mock was asked to fail this request with status %d (X-Mock-Status).", b.status)
			if b.status == http.StatusTooManyRequests {
				msg = "Too many requests, please wait before trying again. (X-Mock-Status)"
			}
			return m.bedrockError(w, r, &b, b.status, msg)
		}
		var req converseRequest
		if err := json.Unmarshal(body, &req); err != nil {
			return m.bedrockError(w, r, &b, http.StatusBadRequest, "Malformed input request: "+err.Error())
		}
		if len(req.Messages) == 0 {
			return m.bedrockError(w, r, &b, http.StatusBadRequest, "A conversation must start with a user message. Try again with a conversation that starts with a user message.")
		}
		prompt := b.promptTokens
		if prompt == 0 {
			for _, s := range req.System {
				prompt += countWords(s.Text)
			}
			for _, msg := range req.Messages {
				for _, c := range msg.Content {
					if c.Text != nil {
						prompt += countWords(*c.Text)
					}
				}
			}
			prompt = max(prompt, 1)
		}
		// A tool call when tools are offered, unless the conversation's
		// last block is a tool result.
		tool := ""
		if req.ToolConfig != nil && len(req.ToolConfig.Tools) > 0 {
			tool = req.ToolConfig.Tools[0].ToolSpec.Name
			last := req.Messages[len(req.Messages)-1].Content
			if len(last) > 0 && len(last[len(last)-1].ToolResult) > 0 {
				tool = ""
			}
		}
		seq := m.nextID()
		h := w.Header()
		h["X-Amzn-Requestid"] = []string{m.requestID(seq)}
		setRetryAfter(h, &b)
		if stream {
			if exc != "" {
				return m.streamException(w, r, &b, exc)
			}
			return m.streamConverse(w, r, &b, seq, prompt, tool)
		}
		bp := m.bufs.get()
		defer m.bufs.put(bp)
		buf := append((*bp)[:0], `{"output":{"message":{"role":"assistant","content":[`...)
		stop := "end_turn"
		if tool != "" {
			buf = append(buf, `{"toolUse":{"toolUseId":"`...)
			buf = m.appendID(buf, "tooluse_", seq)
			buf = append(buf, `","name":`...)
			buf = appendString(buf, tool)
			buf = append(buf, `,"input":{}}}`...)
			stop = "tool_use"
		} else {
			buf = append(buf, `{"text":"`...)
			if b.chunks == m.cfg.Chunks {
				buf = append(buf, m.defaultContent...)
			} else {
				buf = appendContent(buf, b.chunks)
			}
			buf = append(buf, `"}`...)
		}
		buf = append(buf, `]}},"stopReason":"`...)
		buf = append(buf, stop...)
		buf = append(buf, '"')
		if !b.noUsage {
			buf = append(buf, `,"usage":`...)
			buf = appendBedrockUsage(buf, prompt, b.completionTokens)
		}
		buf = append(buf, `,"metrics":{"latencyMs":`...)
		buf = strconv.AppendInt(buf, b.latency.Milliseconds(), 10)
		buf = append(buf, `}}`...)
		*bp = buf
		return m.respondJSON(w, r, &b, buf)
	}
}

// appendBedrockUsage appends Converse's TokenUsage.
func appendBedrockUsage(b []byte, prompt, completion int) []byte {
	b = append(b, `{"inputTokens":`...)
	b = strconv.AppendInt(b, int64(prompt), 10)
	b = append(b, `,"outputTokens":`...)
	b = strconv.AppendInt(b, int64(completion), 10)
	b = append(b, `,"totalTokens":`...)
	b = strconv.AppendInt(b, int64(prompt+completion), 10)
	return append(b, '}')
}

// ctAmzEventStream is the Content-Type of a ConverseStream answer.
var ctAmzEventStream = []string{"application/vnd.amazon.eventstream"}

// streamConverse streams a ConverseStream answer: messageStart, then the
// text deltas (or one tool-use block), contentBlockStop, messageStop and
// the metadata event with usage (unless X-Mock-No-Usage).
func (m *mock) streamConverse(w http.ResponseWriter, r *http.Request, b *behaviour, seq uint64, prompt int, tool string) outcome {
	n := b.chunks
	// messageStart, [contentBlockStart], deltas, contentBlockStop, messageStop, [metadata]
	events := 1 + n + 2
	if tool != "" {
		events = 1 + 1 + 1 + 2
		n = 1
	}
	if !b.noUsage {
		events++
	}
	var payload []byte
	appendEvent := func(buf []byte, i int) []byte {
		payload = payload[:0]
		var typ string
		k := i
		if tool != "" && k == 1 {
			typ = "contentBlockStart"
			payload = append(payload, `{"contentBlockIndex":0,"start":{"toolUse":{"toolUseId":"`...)
			payload = m.appendID(payload, "tooluse_", seq)
			payload = append(payload, `","name":`...)
			payload = appendString(payload, tool)
			payload = append(payload, `}}`...)
			k = -1
		} else if tool != "" && k > 1 {
			k-- // the tool block's start shifts the rest by one
		}
		switch {
		case k < 0:
		case k == 0:
			typ = "messageStart"
			payload = append(payload, `{"role":"assistant"`...)
		case k <= n:
			typ = "contentBlockDelta"
			if tool != "" {
				payload = append(payload, `{"contentBlockIndex":0,"delta":{"toolUse":{"input":"{}"}}`...)
			} else {
				payload = append(payload, `{"contentBlockIndex":0,"delta":{"text":"`...)
				payload = append(payload, words[(k-1)%len(words)]...)
				payload = append(payload, `"}`...)
			}
		case k == n+1:
			typ = "contentBlockStop"
			payload = append(payload, `{"contentBlockIndex":0`...)
		case k == n+2:
			typ = "messageStop"
			if tool != "" {
				payload = append(payload, `{"stopReason":"tool_use"`...)
			} else {
				payload = append(payload, `{"stopReason":"end_turn"`...)
			}
		default:
			typ = "metadata"
			payload = append(payload, `{"usage":`...)
			payload = appendBedrockUsage(payload, prompt, b.completionTokens)
			payload = append(payload, `,"metrics":{"latencyMs":`...)
			payload = strconv.AppendInt(payload, b.ttft.Milliseconds(), 10)
			payload = append(payload, '}')
		}
		payload = append(payload, `,"p":"`+bedrockPadding[:len(bedrockPadding)-int(seq%8)]+`"}`...)
		return m.appendBedrockEvent(buf, typ, payload)
	}
	return m.streamEvents(w, r, b, eventPlan{n: events, delayFrom: 2, delayTo: events - 2, appendEvent: appendEvent, contentType: ctAmzEventStream})
}

// appendBedrockEvent appends one event frame.
func (m *mock) appendBedrockEvent(buf []byte, typ string, payload []byte) []byte {
	return appendFrame(buf, [][2]string{{":event-type", typ}, {":content-type", "application/json"}, {":message-type", "event"}}, payload)
}

// streamException streams messageStart, one text delta and an exception
// frame of type typ, then ends the answer.
func (m *mock) streamException(w http.ResponseWriter, r *http.Request, b *behaviour, typ string) outcome {
	appendEvent := func(buf []byte, i int) []byte {
		switch i {
		case 0:
			return m.appendBedrockEvent(buf, "messageStart", []byte(`{"role":"assistant","p":"abcd"}`))
		case 1:
			return m.appendBedrockEvent(buf, "contentBlockDelta", []byte(`{"contentBlockIndex":0,"delta":{"text":"Hello "},"p":"abcd"}`))
		}
		msg := "The mock was asked to fail this stream with " + typ + " (" + hdrStreamException + ")."
		if b.echoKey {
			msg += " (received Authorization: " + r.Header.Get("Authorization") + ")"
		}
		p, _ := json.Marshal(struct {
			Message string `json:"message"`
		}{msg})
		return appendFrame(buf, [][2]string{{":exception-type", typ}, {":content-type", "application/json"}, {":message-type", "exception"}}, p)
	}
	return m.streamEvents(w, r, b, eventPlan{n: 3, delayFrom: 1, delayTo: 1, appendEvent: appendEvent, contentType: ctAmzEventStream})
}

// appendFrame appends one application/vnd.amazon.eventstream message with
// string headers: total length, headers length, the CRC-32 of those 8
// bytes, the headers (name length, name, type 7, value length, value), the
// payload, and the CRC-32 of everything before it. The mock writes its own
// frames so that it shares no framing code with the gateway it tests.
func appendFrame(dst []byte, headers [][2]string, payload []byte) []byte {
	hlen := 0
	for _, kv := range headers {
		hlen += 1 + len(kv[0]) + 3 + len(kv[1])
	}
	start := len(dst)
	dst = binary.BigEndian.AppendUint32(dst, uint32(12+hlen+len(payload)+4))
	dst = binary.BigEndian.AppendUint32(dst, uint32(hlen))
	dst = binary.BigEndian.AppendUint32(dst, crc32.ChecksumIEEE(dst[start:]))
	for _, kv := range headers {
		dst = append(dst, byte(len(kv[0])))
		dst = append(dst, kv[0]...)
		dst = append(dst, 7)
		dst = binary.BigEndian.AppendUint16(dst, uint16(len(kv[1])))
		dst = append(dst, kv[1]...)
	}
	dst = append(dst, payload...)
	return binary.BigEndian.AppendUint32(dst, crc32.ChecksumIEEE(dst[start:]))
}

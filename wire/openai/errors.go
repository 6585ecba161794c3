package openai

import (
	"encoding/json"
	"net/http"

	"github.com/sluice-ai/sluice/llm"
)

// AppendError appends e in OpenAI's error shape,
// {"error":{"message","type","param","code"}}, with param and code null
// when empty.
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

// isErrorValue reports whether the value of an error member says an error
// happened: an object or a non-empty string. null, false, "" and the
// like, which some servers send beside a good answer, do not.
func isErrorValue(v []byte) bool {
	return len(v) > 0 && (v[0] == '{' || (v[0] == '"' && len(v) > 2))
}

// InbandError maps the value of an error member an upstream sent in a
// 2xx answer (or the data of an error event) to an error — the one reading
// of OpenAI-style in-band errors, which the providers' raw relays share: its numeric
// code or status, when a plausible HTTP status (400-599), is the status
// the upstream meant (UpstreamStatus, and the client's status); otherwise
// the client gets a 502 and UpstreamStatus is left 0 (the caller knows
// the 2xx that carried it). Fields are taken as sent: the provider's
// decoder wrapper redacts and clips them.
func InbandError(v []byte) *llm.Error {
	var f struct {
		Message json.RawMessage `json:"message"`
		Type    json.RawMessage `json:"type"`
		Param   json.RawMessage `json:"param"`
		Code    json.RawMessage `json:"code"`
		Status  json.RawMessage `json:"status"`
		// Error is a nested error object ({"error":{...}} as an event's data).
		Error json.RawMessage `json:"error"`
	}
	var msg string
	if len(v) > 0 && v[0] == '"' {
		_ = json.Unmarshal(v, &msg)
	} else if json.Unmarshal(v, &f) == nil {
		if isErrorValue(f.Error) && len(f.Message) == 0 {
			return InbandError(f.Error)
		}
		msg = rawString(f.Message)
	}
	e := &llm.Error{Kind: llm.KindUpstream, Message: msg, Type: rawString(f.Type), Param: rawString(f.Param), Code: rawString(f.Code)}
	code := rawStatus(f.Code)
	if code == 0 {
		code = rawStatus(f.Status)
	}
	if code != 0 {
		e.Status, e.UpstreamStatus = code, code
	} else {
		e.Status = http.StatusBadGateway
	}
	if e.Type == "" {
		if e.Status >= 500 {
			e.Type = "upstream_error"
		} else {
			e.Type = "invalid_request_error"
		}
	}
	return e
}

// rawString is a JSON string value, or "" for anything else; a number
// (OpenAI-compatible servers send numeric codes) is kept as written.
func rawString(raw json.RawMessage) string {
	if len(raw) == 0 {
		return ""
	}
	var s string
	if raw[0] == '"' {
		if json.Unmarshal(raw, &s) == nil {
			return s
		}
		return ""
	}
	if (raw[0] >= '0' && raw[0] <= '9') || raw[0] == '-' {
		if len(raw) <= 32 {
			return string(raw)
		}
	}
	return ""
}

// rawStatus is a JSON integer between 400 and 599, or 0.
func rawStatus(raw json.RawMessage) int {
	var n int
	if len(raw) > 0 && raw[0] == '"' {
		// "429" as a string, as some gateways send it.
		var s string
		if json.Unmarshal(raw, &s) != nil || len(s) != 3 {
			return 0
		}
		raw = json.RawMessage(s)
	}
	if len(raw) == 0 || raw[0] < '0' || raw[0] > '9' || json.Unmarshal(raw, &n) != nil || n < 400 || n > 599 {
		return 0
	}
	return n
}

// invalid is a KindInvalidRequest error naming param.
func invalid(param, format string, args ...any) *llm.Error {
	e := llm.Errorf(llm.KindInvalidRequest, format, args...)
	e.Param = param
	return e
}

// malformed is the error for an upstream answer the codec cannot read.
func malformed(format string, args ...any) *llm.Error {
	return llm.Errorf(llm.KindUpstream, format, args...)
}

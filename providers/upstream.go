package providers

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/sluice-ai/sluice/llm"
)

// Limits on what an upstream error may make the gateway read and keep.
const (
	// maxErrorBody bounds how much of an upstream error body is read.
	maxErrorBody = 64 << 10
	// errorBodyTimeout bounds the time spent reading an upstream error
	// body (or the provider's idle timeout, when shorter).
	errorBodyTimeout = 10 * time.Second
	// maxErrorMessage and maxErrorField bound the upstream error message
	// and its type, param and code, which are shown to the client and
	// stored in usage rows and logs.
	maxErrorMessage = 2048
	maxErrorField   = 128
	// MaxRetryAfter caps an upstream's Retry-After hint: the longest a
	// deployment cools down on one (the balancer caps it again) and never
	// an overflowing duration. Clients see at most MaxClientRetryAfter.
	MaxRetryAfter = 5 * time.Minute
	// MaxClientRetryAfter caps the Retry-After the gateway passes on to a
	// client: after a minute another deployment, or this one, may serve.
	MaxClientRetryAfter = time.Minute
	// maxRetryAfterLen bounds the Retry-After header value that is parsed.
	maxRetryAfterLen = 64
	// statusOverloaded is Anthropic's "overloaded" status.
	statusOverloaded = 529
)

// upstreamError maps an upstream error response (any status outside 2xx)
// to a gateway error. Every field of the upstream error is redacted with
// red and bounded in length, UpstreamStatus is the status the upstream
// sent, and Status is what the client gets:
//   - 4xx keep their status, except 401, 403 and 407, which mean the
//     provider rejected the gateway's credentials: the client's own were
//     fine, so that is a 502 upstream_auth_failed;
//   - 5xx keep their status, except Anthropic's 529 (overloaded), which
//     is no standard status: the client gets 503 (UpstreamStatus stays 529);
//   - 429 and 5xx keep their Retry-After (see parseRetryAfter);
//   - 1xx, 3xx and statuses outside 100-599 are a 502 upstream_error: the
//     upstream broke the protocol, the client is not to blame.
//
// The body is not read for 101 (it is the raw connection); otherwise at
// most maxErrorBody bytes within errorBodyTimeout.
func upstreamError(name string, resp *http.Response, red *redactor, readTimeout time.Duration, now time.Time) *llm.Error {
	code := resp.StatusCode
	e := &llm.Error{Kind: llm.KindUpstream, Status: code, UpstreamStatus: code, Provider: name}
	var f errorFields
	if code != http.StatusSwitchingProtocols {
		f = parseErrorBody(readErrorBody(resp.Body, readTimeout))
	}
	e.Message = clip(red.str(f.message), maxErrorMessage)
	e.Type = clip(red.str(f.typ), maxErrorField)
	e.Param = clip(red.str(f.param), maxErrorField)
	e.Code = clip(red.str(f.code), maxErrorField)
	switch {
	case code == http.StatusUnauthorized || code == http.StatusForbidden || code == http.StatusProxyAuthRequired:
		e.Status = http.StatusBadGateway
		e.Type, e.Code, e.Param = "upstream_error", "upstream_auth_failed", ""
		// The upstream's message usually describes the key; it is not
		// the client's business (and may quote it in ways not redacted).
		e.Message = fmt.Sprintf("upstream %s rejected the gateway's provider credentials (HTTP %d)", name, code)
		return e
	case code < 400 || code > 599:
		e.Status = http.StatusBadGateway
		e.Type, e.Code, e.Param = "upstream_error", "invalid_upstream_response", ""
		e.Message = fmt.Sprintf("upstream %s answered with unexpected HTTP status %d", name, code)
		return e
	case code == http.StatusTooManyRequests:
		if e.Type == "" {
			e.Type = "rate_limit_error"
		}
	}
	if code == http.StatusTooManyRequests || code >= 500 {
		e.RetryAfter = parseRetryAfter(resp.Header, now)
	}
	if code == statusOverloaded {
		e.Status = http.StatusServiceUnavailable
		if e.Type == "" {
			e.Type = "overloaded_error"
		}
	}
	if e.Message == "" {
		e.Message = fmt.Sprintf("upstream %s returned HTTP %d", name, code)
	}
	if e.Type == "" {
		if code >= 500 {
			e.Type = "upstream_error"
		} else {
			e.Type = "invalid_request_error"
		}
	}
	markContextLength(e)
	return e
}

// readErrorBody reads at most maxErrorBody bytes of body, giving up after d.
func readErrorBody(body io.ReadCloser, d time.Duration) []byte {
	t := time.AfterFunc(d, func() { body.Close() })
	defer t.Stop()
	b, _ := io.ReadAll(io.LimitReader(body, maxErrorBody))
	return b
}

// errorFields are the parts of an upstream error body the gateway keeps.
type errorFields struct{ message, typ, param, code string }

// parseErrorBody extracts an error from the shapes upstreams send:
// OpenAI's {"error":{"message","type","param","code"}} (Google's
// {"error":{"code","message","status"}} keeps its status as the code), {"error":"…"},
// {"message":"…"}, {"detail":"…"} and FastAPI's {"detail":[{"msg":"…"}]},
// and a top-level array of any of these (the first element counts).
// Fields of the wrong type are ignored; numbers and booleans in param and
// code are kept as written. Anything else yields no fields.
func parseErrorBody(b []byte) errorFields {
	var f errorFields
	b = bytes.TrimSpace(bytes.TrimPrefix(b, []byte("\xef\xbb\xbf"))) // a UTF-8 byte order mark
	if len(b) > 0 && b[0] == '[' {
		var arr []json.RawMessage
		if json.Unmarshal(b, &arr) != nil || len(arr) == 0 {
			return f
		}
		b = bytes.TrimSpace(arr[0])
	}
	if len(b) == 0 || b[0] != '{' {
		return f
	}
	var env struct {
		Error   json.RawMessage `json:"error"`
		Message json.RawMessage `json:"message"`
		Detail  json.RawMessage `json:"detail"`
	}
	if json.Unmarshal(b, &env) != nil {
		return f
	}
	if obj := bytes.TrimSpace(env.Error); len(obj) > 0 && obj[0] == '{' {
		var fields struct {
			Message json.RawMessage `json:"message"`
			Type    json.RawMessage `json:"type"`
			Param   json.RawMessage `json:"param"`
			Code    json.RawMessage `json:"code"`
			Status  json.RawMessage `json:"status"`
		}
		if json.Unmarshal(obj, &fields) == nil {
			f.message = jsonString(fields.Message)
			f.typ = jsonString(fields.Type)
			f.param = jsonScalar(fields.Param)
			f.code = jsonScalar(fields.Code)
			if s := jsonString(fields.Status); s != "" && f.typ == "" {
				// Google's {"code": 400, "message", "status":
				// "INVALID_ARGUMENT"}: the status names the error, the
				// numeric code only repeats the HTTP status.
				f.code = s
			}
		}
		return f
	}
	if f.message = jsonString(env.Error); f.message != "" {
		return f
	}
	if f.message = jsonString(env.Message); f.message != "" {
		return f
	}
	if f.message = jsonString(env.Detail); f.message != "" {
		return f
	}
	var details []struct {
		Msg json.RawMessage `json:"msg"`
	}
	if d := bytes.TrimSpace(env.Detail); len(d) > 0 && d[0] == '[' && json.Unmarshal(d, &details) == nil && len(details) > 0 {
		f.message = jsonString(details[0].Msg)
	}
	return f
}

// jsonString returns raw when it is a JSON string, else "".
func jsonString(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '"' {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return ""
	}
	return s
}

// jsonScalar returns a JSON string's value, or a number's or boolean's
// text as written; "" for null, objects and arrays.
func jsonScalar(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return ""
	}
	switch c := raw[0]; {
	case c == '"':
		return jsonString(raw)
	case c == '-' || (c >= '0' && c <= '9') || string(raw) == "true" || string(raw) == "false":
		return string(raw)
	}
	return ""
}

// clip bounds s to n bytes, cut at a rune boundary and marked with "…",
// and replaces control characters other than tab with spaces, so an
// upstream's text cannot forge log lines or carry terminal escapes.
func clip(s string, n int) string {
	clean := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < 0x20 && c != '\t') || c == 0x7f {
			clean = false
			break
		}
	}
	if !clean {
		s = strings.Map(func(r rune) rune {
			if (r < 0x20 && r != '\t') || r == 0x7f {
				return ' '
			}
			return r
		}, s)
	}
	if len(s) <= n {
		return s
	}
	cut := n - len("…")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// parseRetryAfter reads Retry-After-Ms (milliseconds) or Retry-After
// (delta-seconds or an HTTP-date) and returns the wait, capped at
// MaxRetryAfter. Decimal fractions are accepted; a number too large to
// represent, "inf" or a date far in the future mean "a long time" and give
// the cap; zero, negative values, dates in the past, NaN and anything else
// give 0 (no hint).
func parseRetryAfter(h http.Header, now time.Time) time.Duration {
	if v := h.Get("Retry-After-Ms"); v != "" {
		if d, ok := parseDelta(v, time.Millisecond); ok && d > 0 {
			return d
		}
	}
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" || len(v) > maxRetryAfterLen {
		return 0
	}
	if d, ok := parseDelta(v, time.Second); ok {
		return d
	}
	t, err := http.ParseTime(v)
	if err != nil || !t.After(now) {
		return 0
	}
	return min(t.Sub(now), MaxRetryAfter) // Sub saturates; never overflows
}

// parseDelta parses a non-negative decimal count of unit. ok is false when
// v is not a number at all (an HTTP-date, say).
func parseDelta(v string, unit time.Duration) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" || len(v) > maxRetryAfterLen {
		return 0, false
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		if ne, ok := err.(*strconv.NumError); !ok || ne.Err != strconv.ErrRange {
			return 0, false
		}
		// Out of range: ±Inf for huge magnitudes, 0 for tiny ones.
	}
	switch {
	case math.IsNaN(f) || f <= 0:
		return 0, true
	case f >= float64(MaxRetryAfter/unit):
		return MaxRetryAfter, true
	}
	return min(time.Duration(math.Ceil(f*float64(unit))), MaxRetryAfter), true
}

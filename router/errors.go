package router

import (
	"math"
	"net/http"
	"strconv"
	"unicode/utf8"

	"github.com/sluice-ai/sluice/llm"
	"github.com/sluice-ai/sluice/providers"
	"github.com/sluice-ai/sluice/wire/openai"
)

// writeError renders e as the HTTP response. It must be called before any
// byte of the body is written.
func writeError(w http.ResponseWriter, e *llm.Error) {
	writeErrorIn(w, e, openai.AppendError)
}

// writeErrorIn is writeError with the body in the shape render gives it
// (the client's dialect).
func writeErrorIn(w http.ResponseWriter, e *llm.Error, render func([]byte, *llm.Error) []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	if e.RetryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(int(math.Ceil(min(e.RetryAfter, providers.MaxClientRetryAfter).Seconds()))))
	}
	status := e.Status
	if status < 400 || status > 599 {
		status = http.StatusInternalServerError
		if e.Status == 499 { // client is gone; nobody reads this
			status = 499
		}
	}
	w.WriteHeader(status)
	_, _ = w.Write(render(make([]byte, 0, 160), e))
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string literal.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= utf8.RuneSelf {
			// Invalid UTF-8 (a decoded URL path, a truncated name) becomes
			// U+FFFD, as encoding/json does: the answer stays valid JSON.
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				b = append(append(b, s[start:i]...), `\ufffd`...)
				start = i + 1
			} else {
				i += size - 1
			}
			continue
		}
		if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		start = i + 1
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

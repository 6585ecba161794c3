package providers

import (
	"github.com/sluice-ai/sluice/llm"
	"github.com/sluice-ai/sluice/wire/openai"
)

// InbandError maps an error an upstream sent inside a 2xx answer (the
// error member of a JSON body, or an error event of a stream) to the
// attempt's error: wire/openai.InbandError reads it (its numeric code or
// status, when a plausible HTTP status, is the status the upstream meant,
// so a 4xx stays neutral for health and vLLM's client-caused 400 events are
// not held against the deployment; anything else is a 502 failure of the
// 2xx sent), and it is then scrubbed as every codec error is (see
// scrubError): redacted with red (when the provider has one), clipped and
// cleaned, attributed, credential rejections named.
func InbandError(provider string, errV []byte, status int, red Redactor) *llm.Error {
	redact := func(s string) string {
		if red == nil || s == "" {
			return s
		}
		return string(red.Redact(nil, []byte(s)))
	}
	return scrubError(openai.InbandError(errV), provider, status, redact)
}

// IsErrorValue reports whether the value of an error member says an error
// happened: an object or a non-empty string. null, false, "" and the like,
// which some servers send beside a good answer, do not.
func IsErrorValue(v []byte) bool {
	return len(v) > 0 && (v[0] == '{' || (v[0] == '"' && len(v) > 2))
}

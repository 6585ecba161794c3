package providers

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sluice-ai/sluice/llm"
)

// TestContextLengthNormalised: the wordings of OpenAI, vLLM, Anthropic,
// Gemini and Bedrock for a request over the context window all become
// code context_length_exceeded, whatever code they came with; other 4xx,
// 5xx and rate limits do not.
func TestContextLengthNormalised(t *testing.T) {
	for _, c := range []struct {
		status int
		body   string
		want   bool
	}{
		{400, `{"error":{"message":"This model's maximum context length is 128000 tokens.","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}`, true},
		{400, `{"object":"error","message":"This model's maximum context length is 4096 tokens. However, you requested 9000 tokens.","type":"BadRequestError","code":400}`, true},
		{400, `{"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long: 208183 tokens > 200000 maximum"}}`, true},
		{400, `{"type":"error","error":{"type":"invalid_request_error","message":"input length and ` + "`max_tokens`" + ` exceed context limit: 197000 + 8192 > 200000"}}`, true},
		{400, `{"error":{"code":400,"message":"The input token count (1200000) exceeds the maximum number of tokens allowed (1048576).","status":"INVALID_ARGUMENT"}}`, true},
		{400, `{"message":"Input is too long for requested model."}`, true},
		{413, `{"error":{"message":"Request too large: too many input tokens"}}`, true},
		{400, `{"error":{"message":"Invalid value for temperature","type":"invalid_request_error"}}`, false},
		{500, `{"error":{"message":"maximum context length exceeded somewhere inside","type":"server_error"}}`, false},
		{429, `{"error":{"message":"context window of the rate limiter","type":"rate_limit_error"}}`, false},
	} {
		resp := &http.Response{StatusCode: c.status, Header: http.Header{}, Body: nopBody(c.body)}
		e := upstreamError("p", resp, nil, time.Second, time.Now())
		if got := e.ContextLength(); got != c.want {
			t.Errorf("%d %s: context length %v (code %q)", c.status, c.body, got, e.Code)
		}
		// The same error in band (a 2xx body's error member).
		if c.status != 429 && c.status < 500 {
			ie := scrubError(&llm.Error{Kind: llm.KindUpstream, Message: e.Message, UpstreamStatus: c.status}, "p", 200, func(s string) string { return s })
			if ie.ContextLength() != c.want {
				t.Errorf("in band %s: code %q", c.body, ie.Code)
			}
		}
	}
}

type stringBody struct{ *strings.Reader }

func (stringBody) Close() error { return nil }

func nopBody(s string) stringBody { return stringBody{strings.NewReader(s)} }

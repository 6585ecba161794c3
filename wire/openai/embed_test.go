package openai

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/sluice-ai/sluice/llm"
)

func TestEmbeddings(t *testing.T) {
	req, e := DecodeEmbedRequest(fixture(t, "embeddings.request.json"))
	if e != nil || req.Model != "text-embedding-ada-002" || len(req.Inputs) != 1 || req.Base64 {
		t.Fatalf("%+v %v", req, e)
	}
	out, e := AppendEmbedRequest(nil, req)
	if e != nil || string(out) != `{"model":"text-embedding-ada-002","input":["The food was delicious and the waiter..."],"encoding_format":"float"}` {
		t.Fatalf("%s %v", out, e)
	}
	resp, e := DecodeEmbedResponse(fixture(t, "embeddings.response.json"))
	if e != nil || len(resp.Vectors) != 1 || len(resp.Vectors[0]) != 3 || resp.Vectors[0][1] != -0.009327292 || !resp.UsageKnown || resp.Usage.PromptTokens != 8 {
		t.Fatalf("%+v %v", resp, e)
	}
	for _, b64 := range []bool{false, true} {
		var out []byte
		if b64 {
			out = AppendEmbedResponseBase64(nil, resp)
		} else {
			out = AppendEmbedResponse(nil, resp)
		}
		back, e := DecodeEmbedResponse(out)
		if e != nil || !reflect.DeepEqual(back, resp) || !json.Valid(out) {
			t.Fatalf("%s: %+v %v", out, back, e)
		}
	}
	// OpenAI's base64 of [1, -2] as little-endian float32.
	if got := string(AppendEmbedResponseBase64(nil, &llm.EmbedResponse{Vectors: [][]float32{{1, -2}}})); !strings.Contains(got, `"embedding":"AACAPwAAAMA="`) {
		t.Fatal(got)
	}
	// Items come back in index order.
	resp, e = DecodeEmbedResponse([]byte(`{"data":[{"index":1,"embedding":[2]},{"index":0,"embedding":[1]}]}`))
	if e != nil || resp.Vectors[0][0] != 1 || resp.Vectors[1][0] != 2 || resp.UsageKnown {
		t.Fatalf("%+v %v", resp, e)
	}
}

func TestEmbeddingErrors(t *testing.T) {
	for _, c := range []struct{ body, param, msg string }{
		{`{"input":[1,2,3]}`, "input", "token inputs are only supported by OpenAI-compatible providers"},
		{`{"input":[[1,2],[3]]}`, "input", "token inputs are only supported by OpenAI-compatible providers"},
		{`{"input":[]}`, "input", ""},
		{`{}`, "input", ""},
		{`{"input":{"a":1}}`, "input", ""},
		{`{"input":["a",null]}`, "input[1]", ""},
		{`{"input":"a","encoding_format":"int8"}`, "encoding_format", ""},
		{`{"input":"a","dimensions":-1}`, "dimensions", ""},
	} {
		_, e := DecodeEmbedRequest([]byte(c.body))
		if e == nil || e.Status != 400 || e.Param != c.param || (c.msg != "" && e.Message != c.msg) {
			t.Errorf("%s: %+v", c.body, e)
		}
	}
	for _, body := range []string{`{"data":[{"index":5,"embedding":[1]}]}`, `{"data":[{"index":0,"embedding":[1]},{"index":0,"embedding":[1]}]}`,
		`{"data":[{"embedding":"!!"}]}`, `{"data":[{"embedding":"AAA="}]}`, `{"data":{}}`, `{"error":{"message":"no","code":404}}`} {
		if _, e := DecodeEmbedResponse([]byte(body)); e == nil || e.Kind != llm.KindUpstream {
			t.Errorf("%s: %v", body, e)
		}
	}
}

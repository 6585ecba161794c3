package responses

import (
	"bytes"
	"io"
	"testing"

	"github.com/sluice-ai/sluice/llm"
	"github.com/sluice-ai/sluice/wire/sse"
)

// sniff runs a whole stream through a Sniffer, with or without the
// event names.
func sniff(t testing.TB, body []byte, names bool) (s *Sniffer, errV []byte, status int, finals int) {
	t.Helper()
	s = &Sniffer{}
	r := sse.NewReader(bytes.NewReader(body))
	for {
		data, name, _, err := r.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		if !names {
			name = nil
		}
		e, st, final := s.Event(name, data)
		if e != nil {
			errV, status = bytes.Clone(e), st
		}
		if final {
			finals++
		}
	}
}

func TestSnifferDocumentedStreams(t *testing.T) {
	for _, names := range []bool{true, false} {
		s, errV, _, finals := sniff(t, fixture(t, "stream_text.sse"), names)
		u, ok := s.Usage()
		if !ok || u.PromptTokens != 37 || u.CompletionTokens != 11 || errV != nil || finals != 1 {
			t.Errorf("names %v: usage %+v %v err %s finals %d", names, u, ok, errV, finals)
		}

		s, errV, status, finals := sniff(t, fixture(t, "stream_failed.sse"), names)
		if string(errV) != `{"code":"server_error","message":"The model failed to generate a response."}` || status != 500 || finals != 1 {
			t.Errorf("failed: %s %d %d", errV, status, finals)
		}
		if _, ok := s.Usage(); ok {
			t.Error("usage null read as usage")
		}

		_, errV, _, finals = sniff(t, fixture(t, "stream_incomplete.sse"), names)
		if errV != nil || finals != 1 {
			t.Errorf("incomplete: %s %d", errV, finals)
		}
		s, _, _, finals = sniff(t, fixture(t, "stream_completed_event.sse"), names)
		if _, ok := s.Usage(); !ok || finals != 1 {
			t.Errorf("completed example: %d", finals)
		}
	}
}

func TestSnifferErrors(t *testing.T) {
	cases := []struct {
		name, data string
		status     int
		final      bool
	}{
		{"error", `{"type":"error","code":"ERR_SOMETHING","message":"Something went wrong","param":null,"sequence_number":1}`, 500, false},
		{"error", `{"type":"error","code":"rate_limit_exceeded","message":"slow","param":null,"sequence_number":1}`, 429, false},
		{"", `{"type":"error","error":{"type":"invalid_request_error","code":"context_length_exceeded","message":"long"}}`, 400, false},
		{"", `{"type":"error","error":{"type":"server_error","code":null,"message":"x"}}`, 500, false},
		{"response.failed", `{"type":"response.failed","response":{"status":"failed","error":{"code":"rate_limit_exceeded","message":"m"}}}`, 429, true},
		{"response.failed", `{"type":"response.failed","response":{"status":"failed","error":{"code":"invalid_image_url","message":"m"}}}`, 400, true},
		{"response.failed", `{"type":"response.failed","response":{"status":"failed","error":null}}`, 500, true},
		{"response.failed", `{"type":"response.failed"}`, 500, true},
	}
	for _, c := range cases {
		var s Sniffer
		errV, status, final := s.Event([]byte(c.name), []byte(c.data))
		if errV == nil || status != c.status || final != c.final {
			t.Errorf("%s %s: err %s status %d final %v", c.name, c.data, errV, status, final)
		}
	}
	var s Sniffer
	for _, data := range []string{``, `{`, `[]`, `{"type":1}`, `{"type":"response.output_text.delta","delta":"error"}`, `{"type":"response.completed","response":{"usage":{"input_tokens":"x"}}}`} {
		if errV, _, _ := s.Event(nil, []byte(data)); errV != nil {
			t.Errorf("%s: error %s", data, errV)
		}
	}
	if _, ok := s.Usage(); ok {
		t.Error("bad usage read")
	}
}

func TestResponseUsage(t *testing.T) {
	u, ok := ResponseUsage(fixture(t, "response_reasoning.json"))
	if !ok || u != (llm.Usage{PromptTokens: 81, CompletionTokens: 1035, ReasoningTokens: 832}) {
		t.Errorf("reasoning: %+v %v", u, ok)
	}
	u, ok = ResponseUsage(fixture(t, "response_functions.json"))
	if !ok || u.PromptTokens != 291 || u.CompletionTokens != 23 {
		t.Errorf("functions: %+v %v", u, ok)
	}
	for _, body := range []string{`{}`, `{"usage":null}`, `{"usage":{"input_tokens":true}}`, `{"usage":{"input_tokens_details":5}}`, `nope`} {
		if u, ok := ResponseUsage([]byte(body)); ok {
			t.Errorf("%s: %+v", body, u)
		}
	}
	u, ok = ResponseUsage([]byte(`{"usage":{"input_tokens":1e30,"output_tokens":12.7,"input_tokens_details":{"cached_tokens":null}}}`))
	if !ok || u.PromptTokens <= 0 || u.CompletionTokens != 12 {
		t.Errorf("saturating: %+v %v", u, ok)
	}
}

func FuzzSniffer(f *testing.F) {
	r := sse.NewReader(bytes.NewReader(append(fixture(f, "stream_text.sse"), fixture(f, "stream_failed.sse")...)))
	for {
		data, name, _, err := r.Next()
		if err != nil {
			break
		}
		f.Add(bytes.Clone(name), bytes.Clone(data))
	}
	f.Add([]byte(nil), []byte(`{"type":"response.completed","response":{"usage":{"input_tokens":-5,"output_tokens":99999999999999999999999}}}`))
	f.Fuzz(func(t *testing.T, name, data []byte) {
		var s Sniffer
		errV, status, _ := s.Event(name, data)
		if errV != nil && (status < 400 || status > 599) {
			t.Fatalf("status %d", status)
		}
		if errV != nil && !bytes.Contains(data, errV) {
			t.Fatal("errV does not alias data")
		}
		s.Usage()
		ResponseUsage(data)
	})
}

// BenchmarkSnifferEvent is the cost of watching one text delta (with and
// without an event: line) and of the final event.
func BenchmarkSnifferEvent(b *testing.B) {
	delta := []byte(`{"type":"response.output_text.delta","sequence_number":12,"item_id":"msg_67c9fdcf37fc8190ba82116e33fb28c507b8b0ad4e5eb654","output_index":0,"content_index":0,"delta":" the quick brown fox","logprobs":[]}`)
	name := []byte("response.output_text.delta")
	_, datas := events(b, fixture(b, "stream_text.sse"))
	completed := datas[len(datas)-1]
	b.Run("delta-named", func(b *testing.B) {
		var s Sniffer
		b.ReportAllocs()
		for b.Loop() {
			s.Event(name, delta)
		}
	})
	b.Run("delta-unnamed", func(b *testing.B) {
		var s Sniffer
		b.ReportAllocs()
		for b.Loop() {
			s.Event(nil, delta)
		}
	})
	b.Run("completed", func(b *testing.B) {
		var s Sniffer
		b.ReportAllocs()
		for b.Loop() {
			s.Event([]byte("response.completed"), completed)
		}
	})
}

package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3/packages/ssestream"
	"github.com/openai/openai-go/v3/responses"
)

// The mock's Responses answers, read with the openai-go SDK's own types.

func TestResponsesText(t *testing.T) {
	srv := newTestServer(t, testConfig())
	resp := post(t, srv, "/v1/responses", `{"model":"gpt-4o","input":"Tell me a story."}`, nil)
	if resp.StatusCode != 200 || resp.Header.Get("X-Request-Id") == "" {
		t.Fatalf("status %d", resp.StatusCode)
	}
	var r responses.Response
	decode(t, readAll(t, resp), &r)
	if !strings.HasPrefix(r.ID, "resp_") || r.Object != "response" || r.Status != "completed" || r.Model != "gpt-4o" ||
		r.OutputText() != "Hello from the mock LLM! " || r.Usage.TotalTokens != r.Usage.InputTokens+r.Usage.OutputTokens || r.Usage.InputTokens < 1 {
		t.Errorf("response %+v", r)
	}
}

func TestResponsesToolCallThenText(t *testing.T) {
	srv := newTestServer(t, testConfig())
	tools := `"tools":[{"type":"function","name":"get_weather","parameters":{"type":"object"}}]`
	var r responses.Response
	decode(t, readAll(t, post(t, srv, "/v1/responses", `{"model":"m","input":"weather?",`+tools+`}`, nil)), &r)
	fc := r.Output[0].AsFunctionCall()
	if r.Output[0].Type != "function_call" || fc.Name != "get_weather" || fc.Arguments != "{}" || fc.CallID == "" {
		t.Fatalf("call %+v", r.Output)
	}
	in := `{"model":"m",` + tools + `,"input":[{"role":"user","content":"weather?"},{"type":"function_call","call_id":"` + fc.CallID +
		`","name":"get_weather","arguments":"{}"},{"type":"function_call_output","call_id":"` + fc.CallID + `","output":"sunny"}]}`
	decode(t, readAll(t, post(t, srv, "/v1/responses", in, nil)), &r)
	if r.OutputText() == "" {
		t.Errorf("no text after the tool result: %+v", r.Output)
	}
	decode(t, readAll(t, post(t, srv, "/v1/responses", `{"model":"m","input":"x","tool_choice":"none",`+tools+`}`, nil)), &r)
	if r.OutputText() == "" {
		t.Errorf("tool_choice none: %+v", r.Output)
	}
}

func streamSDK(t *testing.T, body string) []responses.ResponseStreamEventUnion {
	t.Helper()
	srv := newTestServer(t, testConfig())
	resp := post(t, srv, "/v1/responses", body, nil)
	st := ssestream.NewStream[responses.ResponseStreamEventUnion](ssestream.NewDecoder(resp), nil)
	var evs []responses.ResponseStreamEventUnion
	for st.Next() {
		evs = append(evs, st.Current())
	}
	if err := st.Err(); err != nil {
		t.Fatal(err)
	}
	for i, ev := range evs {
		if ev.SequenceNumber != int64(i) || ev.AsAny() == nil {
			t.Fatalf("event %d: %s", i, ev.RawJSON())
		}
	}
	return evs
}

func TestResponsesStream(t *testing.T) {
	evs := streamSDK(t, `{"model":"m","input":"hi","stream":true}`)
	var text strings.Builder
	var types []string
	for _, ev := range evs {
		types = append(types, ev.Type)
		if ev.Type == "response.output_text.delta" {
			text.WriteString(ev.Delta)
		}
	}
	want := "response.created response.in_progress response.output_item.added response.content_part.added " +
		strings.Repeat("response.output_text.delta ", 5) +
		"response.output_text.done response.content_part.done response.output_item.done response.completed"
	if strings.Join(types, " ") != want {
		t.Errorf("events %v", types)
	}
	final := evs[len(evs)-1].AsResponseCompleted().Response
	if text.String() != final.OutputText() || final.Usage.OutputTokens == 0 {
		t.Errorf("deltas %q final %q usage %+v", text.String(), final.OutputText(), final.Usage)
	}

	evs = streamSDK(t, `{"model":"m","input":"hi","stream":true,"tools":[{"type":"function","name":"f"}]}`)
	var args string
	for _, ev := range evs {
		if ev.Type == "response.function_call_arguments.delta" {
			args += ev.Delta
		}
	}
	final = evs[len(evs)-1].AsResponseCompleted().Response
	if args != "{}" || final.Output[0].AsFunctionCall().Name != "f" {
		t.Errorf("args %q final %s", args, final.RawJSON())
	}
}

func TestResponsesErrors(t *testing.T) {
	srv := newTestServer(t, testConfig())
	for _, c := range []struct {
		body   string
		hdr    map[string]string
		status int
	}{
		{`{"input":"x"}`, nil, 400},
		{`{"model":"m"}`, nil, 400},
		{`{"model":`, nil, 400},
		{`{"model":"m","input":"x"}`, map[string]string{"X-Mock-Status": "429"}, 429},
	} {
		resp := post(t, srv, "/v1/responses", c.body, c.hdr)
		var e struct {
			Error struct{ Message, Type string }
		}
		if err := json.Unmarshal(readAll(t, resp), &e); err != nil || resp.StatusCode != c.status || e.Error.Message == "" {
			t.Errorf("%s: status %d %+v %v", c.body, resp.StatusCode, e, err)
		}
	}
}

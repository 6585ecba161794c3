package responses

import (
	"encoding/json"
	"testing"

	"github.com/openai/openai-go/v3/responses"

	"github.com/sluice-ai/sluice/llm"
)

func TestStreamEncoderSDKAccumulator(t *testing.T) {
	body := encodeAll([]llm.Event{
		{Kind: llm.EventStart},
		{Kind: llm.EventThinking, Text: "hmm"},
		{Kind: llm.EventText, Text: "Hel"},
		{Kind: llm.EventText, Text: "lo"},
		{Kind: llm.EventToolStart, ID: "call_1", Name: "f"},
		{Kind: llm.EventToolArgs, Text: `{"a":`},
		{Kind: llm.EventToolArgs, Text: `1}`},
		{Kind: llm.EventFinish, FinishReason: "tool_calls"},
	}, llm.Usage{PromptTokens: 3, CompletionTokens: 4}, nil)
	_, datas := events(t, body)
	var acc responses.ResponseAccumulator
	for _, d := range datas {
		var ev responses.ResponsesServerEventUnion
		if err := json.Unmarshal(d, &ev); err != nil {
			t.Fatal(err)
		}
		if err := acc.AddEvent(ev); err != nil {
			t.Fatalf("%s: %v", d, err)
		}
	}
	snap := acc.Snapshot()
	if snap.TerminalEvent != "response.completed" || snap.OutputText() != "Hello" {
		t.Errorf("snapshot %+v", snap)
	}
	r, err := acc.ReconstructedResponse()
	if err != nil || len(r.Output) != 3 || r.Output[2].AsFunctionCall().Arguments != `{"a":1}` {
		t.Errorf("reconstructed %v %+v", err, r)
	}
}

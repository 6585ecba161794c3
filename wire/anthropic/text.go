package anthropic

import "encoding/json"

// DeltaText appends to dst the generated text an event of a Messages
// stream carries (a text, thinking or tool-input delta), for estimating
// tokens when the stream reports no usage. Other events add nothing.
// It decodes the event: the router calls it only on that rare path.
func DeltaText(dst, data []byte) []byte {
	var ev struct {
		Type  string `json:"type"`
		Delta struct {
			Text        string `json:"text"`
			Thinking    string `json:"thinking"`
			PartialJSON string `json:"partial_json"`
		} `json:"delta"`
	}
	if json.Unmarshal(data, &ev) != nil || ev.Type != "content_block_delta" {
		return dst
	}
	dst = append(dst, ev.Delta.Text...)
	dst = append(dst, ev.Delta.Thinking...)
	return append(dst, ev.Delta.PartialJSON...)
}

// ResponseText is the generated text of a whole Messages answer (text,
// thinking and tool inputs), for estimating tokens when it reports no
// usage.
func ResponseText(body []byte) string {
	var m struct {
		Content []struct {
			Text     string          `json:"text"`
			Thinking string          `json:"thinking"`
			Input    json.RawMessage `json:"input"`
		} `json:"content"`
	}
	if json.Unmarshal(body, &m) != nil {
		return ""
	}
	var b []byte
	for _, c := range m.Content {
		b = append(b, c.Text...)
		b = append(b, c.Thinking...)
		b = append(b, c.Input...)
	}
	return string(b)
}

package responses

import "encoding/json"

// DeltaText appends to dst the generated text an event of a Responses
// stream carries (an output text, reasoning or function-call argument
// delta), for estimating tokens when the stream reports no usage. Other
// events add nothing. It decodes the event: the router calls it only on
// that rare path.
func DeltaText(dst, data []byte) []byte {
	var ev struct {
		Type  string `json:"type"`
		Delta string `json:"delta"`
	}
	if json.Unmarshal(data, &ev) != nil {
		return dst
	}
	switch ev.Type {
	case "response.output_text.delta", "response.function_call_arguments.delta",
		"response.reasoning_summary_text.delta", "response.reasoning_text.delta", "response.refusal.delta":
		return append(dst, ev.Delta...)
	}
	return dst
}

// ResponseText is the generated text of a whole Response object (output
// text, refusals, function-call arguments, reasoning summaries), for
// estimating tokens when it reports no usage.
func ResponseText(body []byte) string {
	var r struct {
		Output []struct {
			Arguments string `json:"arguments"`
			Content   []struct {
				Text    string `json:"text"`
				Refusal string `json:"refusal"`
			} `json:"content"`
			Summary []struct {
				Text string `json:"text"`
			} `json:"summary"`
		} `json:"output"`
	}
	if json.Unmarshal(body, &r) != nil {
		return ""
	}
	var b []byte
	for _, o := range r.Output {
		b = append(b, o.Arguments...)
		for _, c := range o.Content {
			b = append(b, c.Text...)
			b = append(b, c.Refusal...)
		}
		for _, s := range o.Summary {
			b = append(b, s.Text...)
		}
	}
	return string(b)
}

package bedrock

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"unicode/utf8"

	"github.com/sluice-ai/sluice/llm"
	"github.com/sluice-ai/sluice/wire/jsonspan"
)

// StreamDecoder decodes a ConverseStream answer into neutral events.
type StreamDecoder struct {
	fr      *FrameReader
	ev      llm.Event
	started bool
	stopped bool // messageStop came: a clean end may follow
	done    bool // an error event was returned: the stream is over
	// tools maps content block indexes of open and closed tool-use blocks
	// to tool-call indexes; it holds at most MaxToolCalls entries.
	tools map[int]int
	// jsonBlock is the content block of the emulated response format's
	// tool (JSONResponseTool), -1 when none: its input is the answer's text.
	jsonBlock int
	// pending is an event to return before reading on (EventStart is
	// synthesised in front of the first event when messageStart is missing).
	pending bool
	next    llm.Event

	delta deltaEvent
	start startEvent
	stop  struct {
		StopReason string `json:"stopReason"`
	}
	meta struct {
		Usage *tokenUsage `json:"usage"`
	}
}

type deltaEvent struct {
	ContentBlockIndex int `json:"contentBlockIndex"`
	Delta             struct {
		Text    *string `json:"text"`
		ToolUse *struct {
			Input string `json:"input"`
		} `json:"toolUse"`
		ReasoningContent *struct {
			Text      *string `json:"text"`
			Signature *string `json:"signature"`
		} `json:"reasoningContent"`
	} `json:"delta"`
}

type startEvent struct {
	ContentBlockIndex int `json:"contentBlockIndex"`
	Start             struct {
		ToolUse *struct {
			ToolUseID string `json:"toolUseId"`
			Name      string `json:"name"`
		} `json:"toolUse"`
	} `json:"start"`
}

// NewStreamDecoder returns the neutral event stream of the ConverseStream
// answer read from r. The stream is: messageStart (EventStart),
// contentBlockStart for tool-use blocks (EventToolStart), contentBlockDelta
// (EventText, EventThinking, EventToolArgs), contentBlockStop
// (EventToolEnd for tool blocks), messageStop (EventFinish) and metadata
// (EventUsage); exception frames become an EventError with the status the
// exception stands for. After messageStop, the end of the input is io.EOF;
// before it, an error. Close does not close r.
func NewStreamDecoder(r io.Reader) llm.EventStream {
	return &StreamDecoder{fr: NewFrameReader(r), jsonBlock: -1}
}

// Close implements llm.EventStream; the caller closes the body.
func (d *StreamDecoder) Close() error { return nil }

// Next implements llm.EventStream.
func (d *StreamDecoder) Next() (*llm.Event, error) {
	if d.done {
		return nil, io.EOF
	}
	if d.pending {
		d.pending = false
		d.ev = d.next
		return &d.ev, nil
	}
	for {
		f, err := d.fr.Next()
		if err != nil {
			if err == io.EOF && d.stopped {
				return nil, io.EOF
			}
			return nil, streamError(err)
		}
		ok, err := d.frame(f)
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		if d.ev.Kind == llm.EventError {
			d.done = true
		}
		if !d.started && d.ev.Kind != llm.EventError {
			d.started = true
			if d.ev.Kind != llm.EventStart {
				d.next, d.pending = d.ev, true
				d.ev = llm.Event{Kind: llm.EventStart}
			}
		}
		return &d.ev, nil
	}
}

// frame turns f into d.ev; ok is false for frames that make no event.
func (d *StreamDecoder) frame(f *Frame) (ok bool, err error) {
	switch f.MessageType {
	case "exception":
		d.ev = llm.Event{Kind: llm.EventError, Err: exceptionError(f.ExceptionType, errorMessage(f.Payload))}
		return true, nil
	case "error":
		e := llm.Errorf(llm.KindUpstream, "%s", f.ErrorMessage)
		e.Code = f.ErrorCode
		e.UpstreamStatus = http.StatusInternalServerError
		d.ev = llm.Event{Kind: llm.EventError, Err: e}
		return true, nil
	case "event", "":
	default:
		return false, nil
	}
	switch f.EventType {
	case "messageStart":
		if d.started {
			return false, nil
		}
		d.ev = llm.Event{Kind: llm.EventStart}
		return true, nil
	case "contentBlockStart":
		d.start = startEvent{}
		if json.Unmarshal(f.Payload, &d.start) != nil {
			return false, badEvent("contentBlockStart")
		}
		tu := d.start.Start.ToolUse
		if tu == nil {
			return false, nil
		}
		if tu.Name == JSONResponseTool && d.jsonBlock < 0 && d.start.ContentBlockIndex >= 0 {
			d.jsonBlock = d.start.ContentBlockIndex
			return false, nil
		}
		if _, dup := d.tools[d.start.ContentBlockIndex]; dup {
			return false, badEvent("contentBlockStart (a block started twice)")
		}
		if len(d.tools) == MaxToolCalls {
			return false, badEvent("contentBlockStart (too many tool calls)")
		}
		if d.tools == nil {
			d.tools = make(map[int]int, 4)
		}
		t := len(d.tools)
		d.tools[d.start.ContentBlockIndex] = t
		d.ev = llm.Event{Kind: llm.EventToolStart, Tool: t, ID: tu.ToolUseID, Name: tu.Name}
		return true, nil
	case "contentBlockDelta":
		if ok, handled := d.fastDelta(f.Payload); handled {
			return ok, nil
		}
		return d.slowDelta(f.Payload)
	case "contentBlockStop":
		var stop struct {
			ContentBlockIndex int `json:"contentBlockIndex"`
		}
		if json.Unmarshal(f.Payload, &stop) != nil {
			return false, badEvent("contentBlockStop")
		}
		t, ok := d.tools[stop.ContentBlockIndex]
		if !ok {
			return false, nil
		}
		d.ev = llm.Event{Kind: llm.EventToolEnd, Tool: t}
		return true, nil
	case "messageStop":
		d.stop.StopReason = ""
		if json.Unmarshal(f.Payload, &d.stop) != nil {
			return false, badEvent("messageStop")
		}
		d.stopped = true
		d.ev = llm.Event{Kind: llm.EventFinish, FinishReason: FinishReason(d.stop.StopReason)}
		if d.jsonBlock >= 0 && len(d.tools) == 0 && d.ev.FinishReason == llm.FinishToolCalls {
			d.ev.FinishReason = llm.FinishStop // the emulated response format's answer
		}
		return true, nil
	case "metadata":
		d.meta.Usage = nil
		if json.Unmarshal(f.Payload, &d.meta) != nil {
			return false, badEvent("metadata")
		}
		if d.meta.Usage == nil {
			return false, nil
		}
		d.ev = llm.Event{Kind: llm.EventUsage, Usage: d.meta.Usage.usage()}
		return true, nil
	}
	return false, nil
}

// slowDelta decodes any contentBlockDelta payload with encoding/json.
func (d *StreamDecoder) slowDelta(p []byte) (bool, error) {
	d.delta = deltaEvent{}
	if json.Unmarshal(p, &d.delta) != nil {
		return false, badEvent("contentBlockDelta")
	}
	dl := &d.delta.Delta
	switch {
	case dl.Text != nil:
		d.ev = llm.Event{Kind: llm.EventText, Text: *dl.Text}
	case dl.ToolUse != nil && d.jsonBlock >= 0 && d.delta.ContentBlockIndex == d.jsonBlock:
		d.ev = llm.Event{Kind: llm.EventText, Text: dl.ToolUse.Input}
	case dl.ToolUse != nil:
		t, ok := d.tools[d.delta.ContentBlockIndex]
		if !ok {
			return false, badEvent("contentBlockDelta (tool input for a block that never started)")
		}
		d.ev = llm.Event{Kind: llm.EventToolArgs, Tool: t, Text: dl.ToolUse.Input}
	case dl.ReasoningContent != nil:
		rc := dl.ReasoningContent
		d.ev = llm.Event{Kind: llm.EventThinking}
		if rc.Text != nil {
			d.ev.Text = *rc.Text
		}
		if rc.Signature != nil {
			d.ev.Signature = *rc.Signature
		}
		if rc.Text == nil && rc.Signature == nil {
			return false, nil // redacted reasoning: nothing to show
		}
	default:
		return false, nil
	}
	return true, nil
}

// ExceptionStatus returns the HTTP status an event-stream exception (or a
// Bedrock error type such as "ThrottlingException", matched without regard
// to the case of its first letter) stands for, 0 when unknown.
func ExceptionStatus(typ string) int {
	if typ != "" && typ[0] >= 'A' && typ[0] <= 'Z' {
		b := []byte(typ)
		b[0] += 'a' - 'A'
		typ = string(b)
	}
	switch typ {
	case "throttlingException":
		return http.StatusTooManyRequests
	case "serviceUnavailableException":
		return http.StatusServiceUnavailable
	case "modelStreamErrorException", "modelErrorException":
		return http.StatusFailedDependency
	case "validationException":
		return http.StatusBadRequest
	case "internalServerException":
		return http.StatusInternalServerError
	case "modelTimeoutException":
		return http.StatusRequestTimeout
	case "modelNotReadyException":
		return http.StatusTooManyRequests
	case "accessDeniedException":
		return http.StatusForbidden
	case "resourceNotFoundException":
		return http.StatusNotFound
	}
	return 0
}

// exceptionError is the error of an exception frame: the upstream status
// it stands for, and the status the client gets (statuses that blame the
// upstream's model, 424 and 408, are a 502 and a 504).
func exceptionError(typ, msg string) *llm.Error {
	status := ExceptionStatus(typ)
	var e *llm.Error
	switch status {
	case http.StatusTooManyRequests:
		e = llm.Errorf(llm.KindRateLimited, "%s", msg)
	case http.StatusBadRequest:
		e = llm.Errorf(llm.KindInvalidRequest, "%s", msg)
	case http.StatusRequestTimeout:
		e = llm.Errorf(llm.KindTimeout, "%s", msg)
	case http.StatusServiceUnavailable, http.StatusInternalServerError:
		e = llm.Errorf(llm.KindUpstream, "%s", msg)
		e.Status = status
	case 0:
		status = http.StatusInternalServerError
		e = llm.Errorf(llm.KindUpstream, "%s", msg)
	default:
		e = llm.Errorf(llm.KindUpstream, "%s", msg)
	}
	e.UpstreamStatus = status
	if typ != "" {
		e.Code = typ
	}
	return e
}

// streamError reports a broken event stream.
func streamError(err error) *llm.Error {
	msg := "upstream event stream broken"
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		msg = "upstream event stream ended before the message stopped"
	case errors.Is(err, ErrPreludeCRC), errors.Is(err, ErrMessageCRC):
		msg = "upstream event stream failed its checksum"
	case errors.Is(err, ErrFrameTooLarge):
		msg = "upstream event stream frame too large"
	case errors.Is(err, ErrMalformedFrame):
		msg = "upstream event stream frame malformed"
	}
	e := llm.Errorf(llm.KindUpstream, "%s", msg)
	e.Code = "invalid_upstream_response"
	e.Err = err
	return e
}

func badEvent(what string) *llm.Error {
	e := llm.Errorf(llm.KindUpstream, "upstream sent a malformed %s event", what)
	e.Code = "invalid_upstream_response"
	return e
}

// fastDelta decodes the common contentBlockDelta payloads, a text or a
// tool-input fragment ({"contentBlockIndex":N,"delta":{"text":"…"},"p":"…"}),
// without encoding/json: one linear walk and one string allocation. handled
// is false for anything else (escapes, other deltas, odd shapes), which the
// full decoder then reads; the two agree where both apply (fuzzed).
func (d *StreamDecoder) fastDelta(p []byte) (ok, handled bool) {
	if !jsonspan.Valid(p) {
		return false, false
	}
	index, kind := -1, 0 // kind 1: text, 2: tool input
	var text []byte
	_, err := jsonspan.EachMember(p, func(key []byte, vs, ve int) error {
		switch string(key) {
		case "p":
		case "contentBlockIndex":
			n, good := smallInt(p[vs:ve])
			if !good || index >= 0 {
				return errSlow
			}
			index = n
		case "delta":
			if kind != 0 {
				return errSlow
			}
			dv := p[vs:ve]
			_, err := jsonspan.EachMember(dv, func(k []byte, s, e int) error {
				if kind != 0 {
					return errSlow
				}
				switch string(k) {
				case "text":
					kind, text = 1, dv[s:e]
				case "toolUse":
					tv := dv[s:e]
					_, err := jsonspan.EachMember(tv, func(k []byte, s, e int) error {
						if string(k) != "input" || kind != 0 {
							return errSlow
						}
						kind, text = 2, tv[s:e]
						return nil
					})
					if err != nil || kind != 2 {
						return errSlow
					}
				default:
					return errSlow
				}
				return nil
			})
			if err != nil || kind == 0 {
				return errSlow
			}
		default:
			// Other members, and keys encoding/json would match without
			// regard to case: the full decoder decides.
			return errSlow
		}
		return nil
	})
	if err != nil || kind == 0 {
		return false, false
	}
	str, good := plainString(text)
	if !good {
		return false, false
	}
	if index < 0 {
		index = 0
	}
	if kind == 1 {
		d.ev = llm.Event{Kind: llm.EventText, Text: str}
		return true, true
	}
	if d.jsonBlock >= 0 && index == d.jsonBlock {
		d.ev = llm.Event{Kind: llm.EventText, Text: str}
		return true, true
	}
	t, found := d.tools[index]
	if !found {
		return false, false // the full decoder reports it
	}
	d.ev = llm.Event{Kind: llm.EventToolArgs, Tool: t, Text: str}
	return true, true
}

// errSlow stops a fast walk: the full decoder takes over.
var errSlow = errors.New("bedrock: not a plain delta")

// smallInt parses a non-negative JSON integer of at most 9 digits.
func smallInt(b []byte) (int, bool) {
	if len(b) == 0 || len(b) > 9 || (len(b) > 1 && b[0] == '0') {
		return 0, false
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

// plainString returns the value of a JSON string without escapes, control
// characters or invalid UTF-8 (what encoding/json would decode unchanged).
func plainString(b []byte) (string, bool) {
	if len(b) < 2 || b[0] != '"' || b[len(b)-1] != '"' {
		return "", false
	}
	b = b[1 : len(b)-1]
	ascii := true
	for _, c := range b {
		if c < 0x20 || c == '\\' || c == '"' {
			return "", false
		}
		if c >= utf8.RuneSelf {
			ascii = false
		}
	}
	if !ascii && !utf8.Valid(b) {
		return "", false
	}
	return string(b), true
}

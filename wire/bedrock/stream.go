package bedrock

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"

	"github.com/sluice-ai/sluice/llm"
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
	return &StreamDecoder{fr: NewFrameReader(r)}
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
		d.delta = deltaEvent{}
		if json.Unmarshal(f.Payload, &d.delta) != nil {
			return false, badEvent("contentBlockDelta")
		}
		dl := &d.delta.Delta
		switch {
		case dl.Text != nil:
			d.ev = llm.Event{Kind: llm.EventText, Text: *dl.Text}
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

package providers

import (
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/sluice-ai/sluice/llm"
)

// codec is a wire family's outbound decoding, as the wire/<family>
// package provides it. A nil function means the family has no such
// answer (a provider without embeddings, say).
type codec struct {
	chat   func(body []byte) (*llm.ChatResponse, *llm.Error)
	embed  func(body []byte) (*llm.EmbedResponse, *llm.Error)
	stream func(r io.Reader) llm.EventStream
}

// decoder implements Decoder over a codec for one provider and one
// answer: every error the codec reports (an error object in a 2xx body,
// an error event mid-stream, an answer it cannot read) is attributed to
// the provider, redacted of its credentials, bounded in length and
// classified as an upstream error status would be.
type decoder struct {
	codec
	name   string
	red    *redactor
	status int // the 2xx the upstream answered with
}

func newDecoder(c codec, name string, red *redactor, status int) *decoder {
	return &decoder{codec: c, name: name, red: red, status: status}
}

// Chat implements Decoder.
func (d *decoder) Chat(body []byte) (*llm.ChatResponse, error) {
	if d.chat == nil {
		return nil, d.scrub(llm.Errorf(llm.KindUpstream, "upstream %s sent a chat answer the gateway cannot read", d.name))
	}
	r, e := d.chat(body)
	if e != nil {
		return nil, d.scrub(e)
	}
	return r, nil
}

// Embed implements Decoder.
func (d *decoder) Embed(body []byte) (*llm.EmbedResponse, error) {
	if d.embed == nil {
		return nil, d.scrub(llm.Errorf(llm.KindUpstream, "upstream %s sent an embeddings answer the gateway cannot read", d.name))
	}
	r, e := d.embed(body)
	if e != nil {
		return nil, d.scrub(e)
	}
	return r, nil
}

// Stream implements Decoder.
func (d *decoder) Stream(r io.Reader) llm.EventStream {
	return &scrubbedStream{s: d.stream(r), d: d}
}

// scrubbedStream passes events through, scrubbing error events.
type scrubbedStream struct {
	s llm.EventStream
	d *decoder
}

func (s *scrubbedStream) Next() (*llm.Event, error) {
	ev, err := s.s.Next()
	if err != nil && err != io.EOF {
		// A stream the codec could not read: its verdict may quote what
		// the upstream sent.
		var e *llm.Error
		if errors.As(err, &e) {
			return nil, s.d.scrub(e)
		}
		return nil, s.d.red.redactErr(err)
	}
	if ev != nil && ev.Kind == llm.EventError {
		if ev.Err == nil {
			ev.Err = llm.Errorf(llm.KindUpstream, "upstream %s reported an error", s.d.name)
		}
		ev.Err = s.d.scrub(ev.Err)
	}
	return ev, err
}

func (s *scrubbedStream) Close() error { return s.s.Close() }

// scrub returns a copy of e fit for the client (see scrubError), its
// cause redacted too.
func (d *decoder) scrub(e *llm.Error) *llm.Error {
	c := scrubError(e, d.name, d.status, d.red.str)
	if c.Err != nil {
		c.Err = d.red.redactErr(c.Err)
	}
	return c
}

// scrubError returns a copy of e, an error an upstream reported in a 2xx
// answer, fit for the client: fields redacted with redact and clipped,
// the provider named, the upstream status set (the error's own reading of
// an in-band status, else status, the 2xx sent), and the provider
// rejecting the gateway's credentials reported as such.
func scrubError(e *llm.Error, name string, status int, redact func(string) string) *llm.Error {
	c := *e
	c.Provider = name
	c.Message = clip(redact(c.Message), maxErrorMessage)
	c.Type = clip(redact(c.Type), maxErrorField)
	c.Param = clip(redact(c.Param), maxErrorField)
	c.Code = clip(redact(c.Code), maxErrorField)
	if c.UpstreamStatus == 0 {
		c.UpstreamStatus = status
	}
	switch c.UpstreamStatus {
	case http.StatusUnauthorized, http.StatusForbidden, http.StatusProxyAuthRequired:
		c.Kind, c.Status = llm.KindUpstream, http.StatusBadGateway
		c.Type, c.Code, c.Param = "upstream_error", "upstream_auth_failed", ""
		c.Message = fmt.Sprintf("upstream %s rejected the gateway's provider credentials (error code %d)", name, c.UpstreamStatus)
	}
	if c.Message == "" {
		c.Message = fmt.Sprintf("upstream %s reported an error", name)
	}
	markContextLength(&c)
	return &c
}

// Package sse reads and writes server-sent events (text/event-stream) as
// the HTML standard defines them, bounded in line and event size.
package sse

import (
	"bufio"
	"bytes"
	"errors"
	"io"
)

// Reader reads server-sent events as the HTML standard defines them:
// lines end in CRLF, LF or a lone CR; the data fields of one event are
// joined with "\n"; a line starting with ':' is a comment; fields other than
// data and event (id, retry, unknown ones) are ignored. A leading UTF-8 BOM
// is skipped.
type Reader struct {
	br         *bufio.Reader
	data       []byte
	event      []byte
	line       []byte // a line that did not fit in br's buffer
	hasData    bool
	dispatched bool // the last call returned data and event: reset them
	skipLF     bool // the last line ended in CR: an LF right after it is part of that ending
	started    bool // the BOM check is done
}

// BufferSize is the size of a Reader's read buffer. Most events fit in
// it; a longer line is gathered in a buffer of its own, grown as needed
// up to MaxEventBytes, so the read buffer itself stays small for every
// open stream.
const BufferSize = 4 << 10

// NewReader returns a Reader of the events read from r.
func NewReader(r io.Reader) *Reader {
	return &Reader{br: bufio.NewReaderSize(r, BufferSize)}
}

// keepBytes bounds what Reset keeps of the buffers a large event grew:
// a reused Reader holds no more than a few events' worth.
const keepBytes = 64 << 10

// Reset makes r read a new stream from src (nil: none, to drop the old
// one), keeping its read buffer and, up to a bound, the buffers its
// events grew, so that one Reader serves many streams in turn without
// allocating. The slices Next returned before are invalid after Reset.
func (r *Reader) Reset(src io.Reader) {
	if r.br == nil {
		r.br = bufio.NewReaderSize(src, BufferSize)
	} else {
		r.br.Reset(src)
	}
	r.data, r.event, r.line = keep(r.data), keep(r.event), keep(r.line)
	r.hasData, r.dispatched, r.skipLF, r.started = false, false, false, false
}

// keep returns b emptied, or nil when it grew beyond keepBytes.
func keep(b []byte) []byte {
	if cap(b) > keepBytes {
		return nil
	}
	return b[:0]
}

// MaxEventBytes bounds one event (and one line), so a hostile upstream
// cannot grow memory.
const MaxEventBytes = 16 << 20

var ErrEventTooLarge = errors.New("upstream event too large")

// next returns the next event or comment. For a comment line, comment is
// true and data is the text after the colon. Otherwise data is the event's
// data lines joined with "\n" and event its event name (nil if none); an
// event name never contains CR or LF. The slices are valid until the next
// call. At the end of the stream it returns io.EOF. A final event whose
// lines are complete but which lacks the closing blank line is still
// returned (some servers end with "data: [DONE]\n"); a stream cut in the
// middle of a line returns io.ErrUnexpectedEOF. Comments inside an event do
// not disturb it: its data keeps accumulating across the calls.
func (r *Reader) Next() (data, event []byte, comment bool, err error) {
	if r.dispatched {
		r.data, r.event, r.hasData, r.dispatched = r.data[:0], r.event[:0], false, false
	}
	for {
		line, err := r.readLine()
		if err != nil {
			if err == io.EOF && r.hasData {
				r.dispatched = true
				return r.data, r.eventName(), false, nil
			}
			return nil, nil, false, err
		}
		if len(line) == 0 {
			if r.hasData {
				r.dispatched = true
				return r.data, r.eventName(), false, nil
			}
			r.event = r.event[:0]
			continue
		}
		if line[0] == ':' {
			return line[1:], nil, true, nil
		}
		field, value := line, []byte(nil)
		if i := bytes.IndexByte(line, ':'); i >= 0 {
			field, value = line[:i], line[i+1:]
			if len(value) > 0 && value[0] == ' ' {
				value = value[1:]
			}
		}
		switch string(field) {
		case "data":
			if r.hasData {
				r.data = append(r.data, '\n')
			}
			if len(r.data)+len(value) > MaxEventBytes {
				return nil, nil, false, ErrEventTooLarge
			}
			r.data = append(r.data, value...)
			r.hasData = true
		case "event":
			r.event = append(r.event[:0], value...)
		}
	}
}

func (r *Reader) eventName() []byte {
	if len(r.event) == 0 {
		return nil
	}
	return r.event
}

// readLine returns one line without its terminator (CRLF, LF or CR). The
// line is valid until the next call.
func (r *Reader) readLine() ([]byte, error) {
	r.line = r.line[:0]
	long := false // the line is being gathered in r.line
	for {
		if r.br.Buffered() == 0 {
			if _, err := r.br.Peek(1); err != nil {
				if err == io.EOF && long {
					// An unterminated last line: the stream was cut.
					return nil, io.ErrUnexpectedEOF
				}
				return nil, err
			}
		}
		buf, _ := r.br.Peek(r.br.Buffered())
		if !r.started {
			if len(buf) < 3 && bytes.HasPrefix([]byte("\xef\xbb\xbf"), buf) {
				// Perhaps the start of a BOM: wait for more.
				if _, err := r.br.Peek(len(buf) + 1); err == nil {
					continue
				}
			}
			r.started = true
			if bytes.HasPrefix(buf, []byte("\xef\xbb\xbf")) {
				_, _ = r.br.Discard(3)
				continue
			}
		}
		if r.skipLF {
			r.skipLF = false
			if buf[0] == '\n' {
				_, _ = r.br.Discard(1)
				continue
			}
		}
		end := len(buf)
		if i := bytes.IndexByte(buf, '\n'); i >= 0 {
			end = i
		}
		if i := bytes.IndexByte(buf[:end], '\r'); i >= 0 {
			end = i
		}
		if end < len(buf) {
			r.skipLF = buf[end] == '\r'
			_, _ = r.br.Discard(end + 1)
			if !long {
				return buf[:end], nil
			}
			if len(r.line)+end > MaxEventBytes {
				return nil, ErrEventTooLarge
			}
			return append(r.line, buf[:end]...), nil
		}
		if len(r.line)+len(buf) > MaxEventBytes {
			return nil, ErrEventTooLarge
		}
		r.line = append(r.line, buf...)
		long = true
		_, _ = r.br.Discard(len(buf))
	}
}

// AppendEvent appends an event in wire form: "event: name" when event is
// not empty, one "data: " line per line of data, and the blank line that
// ends the event. Line breaks in data (LF, CRLF or CR) start a new data
// line; event is cut at its first CR or LF, so neither can inject fields.
func AppendEvent(dst, event, data []byte) []byte {
	if i := bytes.IndexAny(event, "\r\n"); i >= 0 {
		event = event[:i]
	}
	if len(event) > 0 {
		dst = append(append(append(dst, "event: "...), event...), '\n')
	}
	dst = appendPrefixedLines(dst, "data: ", data)
	return append(dst, '\n')
}

// AppendComment appends a comment: one ":" line per line of text, then a
// blank line (clients that split the stream on blank lines then see the
// comment on its own).
func AppendComment(dst, text []byte) []byte {
	dst = appendPrefixedLines(dst, ":", text)
	return append(dst, '\n')
}

// appendPrefixedLines appends each line of text (split at LF, CRLF or CR)
// with prefix before it and LF after it; empty text is one empty line.
func appendPrefixedLines(dst []byte, prefix string, text []byte) []byte {
	for {
		end := bytes.IndexByte(text, '\n')
		if end < 0 {
			end = len(text)
		}
		if i := bytes.IndexByte(text[:end], '\r'); i >= 0 {
			end = i
		}
		dst = append(append(append(dst, prefix...), text[:end]...), '\n')
		if end == len(text) {
			return dst
		}
		if text[end] == '\r' && end+1 < len(text) && text[end+1] == '\n' {
			end++
		}
		text = text[end+1:]
	}
}

package router

import (
	"bufio"
	"bytes"
	"errors"
	"io"
)

// eventReader reads server-sent events and returns the data of each event
// (multi-line data joined with "\n"). Comments and fields other than data
// and event are ignored.
type eventReader struct {
	br    *bufio.Reader
	data  []byte
	event []byte
	line  []byte
}

func newEventReader(r io.Reader) *eventReader {
	return &eventReader{br: bufio.NewReaderSize(r, 32<<10)}
}

// maxEventBytes bounds one event, so a hostile upstream cannot grow memory.
const maxEventBytes = 16 << 20

var errEventTooLarge = errors.New("upstream event too large")

// next returns the next event's data and event name. The slices are valid
// until the next call. At the end of the stream it returns io.EOF. A final
// event whose lines are complete but which lacks the closing blank line is
// still returned (some servers end with "data: [DONE]\n"); a stream cut in
// the middle of a line returns io.ErrUnexpectedEOF.
func (r *eventReader) next() (data, event []byte, err error) {
	r.data = r.data[:0]
	r.event = r.event[:0]
	hasData := false
	for {
		line, err := r.readLine()
		if err != nil {
			if err == io.EOF && hasData {
				return r.data, r.event, nil
			}
			return nil, nil, err
		}
		if len(line) == 0 {
			if hasData {
				return r.data, r.event, nil
			}
			r.event = r.event[:0]
			continue
		}
		if line[0] == ':' {
			continue
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
			if hasData {
				r.data = append(r.data, '\n')
			}
			if len(r.data)+len(value) > maxEventBytes {
				return nil, nil, errEventTooLarge
			}
			r.data = append(r.data, value...)
			hasData = true
		case "event":
			r.event = append(r.event[:0], value...)
		}
	}
}

// readLine returns one line without its terminator (LF, CRLF or CR+LF).
func (r *eventReader) readLine() ([]byte, error) {
	line, err := r.br.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		r.line = append(r.line[:0], line...)
		for err == bufio.ErrBufferFull {
			if len(r.line) > maxEventBytes {
				return nil, errEventTooLarge
			}
			line, err = r.br.ReadSlice('\n')
			r.line = append(r.line, line...)
		}
		line = r.line
	}
	if err != nil {
		if err == io.EOF && len(line) > 0 {
			// An unterminated last line: the stream was cut.
			return nil, io.ErrUnexpectedEOF
		}
		return nil, err
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, nil
}

// Package bedrock is the wire codec of Amazon Bedrock's Converse API:
// neutral requests encoded as Converse bodies, Converse answers and
// ConverseStream event streams (application/vnd.amazon.eventstream)
// decoded into neutral form. It is outbound only: clients never speak
// Bedrock to the gateway. Like every wire package it is pure functions
// over bytes and readers: no HTTP client, no signing.
package bedrock

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
)

// Limits on what one event-stream frame may make the reader hold.
const (
	// MaxFrameBytes bounds one frame (prelude, headers, payload and
	// checksums): Bedrock's frames are a few hundred bytes; AWS's own
	// decoders refuse frames over 16 MiB.
	MaxFrameBytes = 16 << 20
	// MaxHeaderBytes bounds a frame's headers section (AWS's limit is 128 KiB).
	MaxHeaderBytes = 128 << 10
	// MaxHeaders bounds the number of headers of one frame.
	MaxHeaders = 256
	// preludeLen is total length, headers length and the prelude checksum.
	preludeLen = 12
	// minFrameLen is a frame with no headers and no payload.
	minFrameLen = preludeLen + 4
	// readChunk is how much the frame buffer grows by at most per read,
	// so a frame that claims 16 MiB and sends nothing costs little.
	readChunk = 64 << 10
)

// Header value types of the event-stream encoding.
const (
	typeTrue      = 0
	typeFalse     = 1
	typeByte      = 2
	typeInt16     = 3
	typeInt32     = 4
	typeInt64     = 5
	typeBytes     = 6
	typeString    = 7
	typeTimestamp = 8
	typeUUID      = 9
)

// Frame errors. A reader that returned one of them is broken: every later
// call returns the same error.
var (
	ErrFrameTooLarge  = errors.New("eventstream: frame too large")
	ErrPreludeCRC     = errors.New("eventstream: prelude checksum mismatch")
	ErrMessageCRC     = errors.New("eventstream: message checksum mismatch")
	ErrMalformedFrame = errors.New("eventstream: malformed frame")
)

// Frame is one event-stream message: the headers Bedrock uses, decoded,
// and the payload. Its byte slices are valid until the next call to Next.
type Frame struct {
	// MessageType is ":message-type": "event", "exception" or "error".
	MessageType string
	// EventType is ":event-type" of an event ("contentBlockDelta"…).
	EventType string
	// ExceptionType is ":exception-type" of an exception ("throttlingException"…).
	ExceptionType string
	// ContentType is ":content-type" ("application/json").
	ContentType string
	// ErrorCode and ErrorMessage are ":error-code" and ":error-message"
	// of an error message.
	ErrorCode    string
	ErrorMessage string
	// Payload is the frame's payload.
	Payload []byte
}

// FrameReader reads event-stream frames from a reader, checking both
// checksums and bounding every length before it is used.
type FrameReader struct {
	r   io.Reader
	buf []byte // the current frame, reused
	f   Frame
	err error
}

// NewFrameReader returns a reader of the frames in r.
func NewFrameReader(r io.Reader) *FrameReader { return &FrameReader{r: r} }

// Next returns the next frame. At a clean end of the input (between two
// frames) it returns io.EOF; input that ends inside a frame returns
// io.ErrUnexpectedEOF; a bad checksum, length or header returns one of the
// Err* errors (wrapped). The frame is valid until the next call.
func (fr *FrameReader) Next() (*Frame, error) {
	if fr.err != nil {
		return nil, fr.err
	}
	f, err := fr.next()
	if err != nil {
		fr.err = err
		return nil, err
	}
	return f, nil
}

func (fr *FrameReader) next() (*Frame, error) {
	if cap(fr.buf) < preludeLen {
		fr.buf = make([]byte, 0, 1024)
	}
	prelude := fr.buf[:preludeLen]
	if n, err := io.ReadFull(fr.r, prelude); err != nil {
		if err == io.EOF && n == 0 {
			return nil, io.EOF
		}
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	total := binary.BigEndian.Uint32(prelude[0:4])
	hlen := binary.BigEndian.Uint32(prelude[4:8])
	if crc32.ChecksumIEEE(prelude[:8]) != binary.BigEndian.Uint32(prelude[8:12]) {
		return nil, ErrPreludeCRC
	}
	if total > MaxFrameBytes {
		return nil, fmt.Errorf("%w: %d bytes (limit %d)", ErrFrameTooLarge, total, MaxFrameBytes)
	}
	if total < minFrameLen || hlen > total-minFrameLen || hlen > MaxHeaderBytes {
		return nil, fmt.Errorf("%w: lengths %d/%d", ErrMalformedFrame, total, hlen)
	}
	buf, err := fr.fill(int(total))
	if err != nil {
		return nil, err
	}
	want := binary.BigEndian.Uint32(buf[len(buf)-4:])
	if crc32.ChecksumIEEE(buf[:len(buf)-4]) != want {
		return nil, ErrMessageCRC
	}
	fr.f = Frame{}
	if err := parseHeaders(buf[preludeLen:preludeLen+int(hlen)], &fr.f); err != nil {
		return nil, err
	}
	fr.f.Payload = buf[preludeLen+int(hlen) : len(buf)-4]
	return &fr.f, nil
}

// fill reads the rest of a frame of total bytes (the prelude is already
// in fr.buf), growing the buffer only as bytes arrive.
func (fr *FrameReader) fill(total int) ([]byte, error) {
	buf := fr.buf[:preludeLen]
	for len(buf) < total {
		want := min(total-len(buf), readChunk)
		if cap(buf)-len(buf) < want {
			nb := make([]byte, len(buf), min(total, max(2*cap(buf), len(buf)+want)))
			copy(nb, buf)
			buf = nb
		}
		n, err := io.ReadFull(fr.r, buf[len(buf):len(buf)+want])
		buf = buf[:len(buf)+n]
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			fr.buf = buf[:0]
			return nil, err
		}
	}
	fr.buf = buf[:0]
	return buf, nil
}

// parseHeaders decodes the headers section h into f, skipping headers
// other than the ones Frame holds (of any type) and refusing truncated
// values, empty names, unknown types and more than MaxHeaders headers.
func parseHeaders(h []byte, f *Frame) error {
	for n := 0; len(h) > 0; n++ {
		if n == MaxHeaders {
			return fmt.Errorf("%w: more than %d headers", ErrMalformedFrame, MaxHeaders)
		}
		nl := int(h[0])
		if nl == 0 || len(h) < 1+nl+1 {
			return fmt.Errorf("%w: bad header name", ErrMalformedFrame)
		}
		name := h[1 : 1+nl]
		typ := h[1+nl]
		h = h[2+nl:]
		var size int
		switch typ {
		case typeTrue, typeFalse:
			size = 0
		case typeByte:
			size = 1
		case typeInt16:
			size = 2
		case typeInt32:
			size = 4
		case typeInt64, typeTimestamp:
			size = 8
		case typeUUID:
			size = 16
		case typeBytes, typeString:
			if len(h) < 2 {
				return fmt.Errorf("%w: truncated header value", ErrMalformedFrame)
			}
			size = 2 + int(binary.BigEndian.Uint16(h))
		default:
			return fmt.Errorf("%w: unknown header value type %d", ErrMalformedFrame, typ)
		}
		if len(h) < size {
			return fmt.Errorf("%w: truncated header value", ErrMalformedFrame)
		}
		if typ == typeString {
			v := h[2:size]
			switch string(name) {
			case ":message-type":
				f.MessageType = intern(v)
			case ":event-type":
				f.EventType = intern(v)
			case ":exception-type":
				f.ExceptionType = intern(v)
			case ":content-type":
				f.ContentType = intern(v)
			case ":error-code":
				f.ErrorCode = intern(v)
			case ":error-message":
				f.ErrorMessage = string(v)
			}
		}
		h = h[size:]
	}
	return nil
}

// intern returns the header values Bedrock sends on every frame without
// allocating; others are copied.
func intern(v []byte) string {
	switch string(v) {
	case "event":
		return "event"
	case "exception":
		return "exception"
	case "error":
		return "error"
	case "application/json":
		return "application/json"
	case "messageStart":
		return "messageStart"
	case "contentBlockStart":
		return "contentBlockStart"
	case "contentBlockDelta":
		return "contentBlockDelta"
	case "contentBlockStop":
		return "contentBlockStop"
	case "messageStop":
		return "messageStop"
	case "metadata":
		return "metadata"
	}
	return string(v)
}

// AppendFrame appends one event-stream frame with string headers (name,
// value) and payload to dst. Names longer than 255 bytes and values longer
// than 65535 bytes are cut to fit; a frame is never malformed.
func AppendFrame(dst []byte, headers [][2]string, payload []byte) []byte {
	hlen := 0
	for _, kv := range headers {
		hlen += 1 + min(len(kv[0]), 255) + 1 + 2 + min(len(kv[1]), 65535)
	}
	total := preludeLen + hlen + len(payload) + 4
	start := len(dst)
	dst = binary.BigEndian.AppendUint32(dst, uint32(total))
	dst = binary.BigEndian.AppendUint32(dst, uint32(hlen))
	dst = binary.BigEndian.AppendUint32(dst, crc32.ChecksumIEEE(dst[start:start+8]))
	for _, kv := range headers {
		name, value := kv[0], kv[1]
		name = name[:min(len(name), 255)]
		value = value[:min(len(value), 65535)]
		dst = append(dst, byte(len(name)))
		dst = append(dst, name...)
		dst = append(dst, typeString)
		dst = binary.BigEndian.AppendUint16(dst, uint16(len(value)))
		dst = append(dst, value...)
	}
	dst = append(dst, payload...)
	return binary.BigEndian.AppendUint32(dst, crc32.ChecksumIEEE(dst[start:]))
}

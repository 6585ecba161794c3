package bedrock

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"strings"
	"testing"
)

// payloadOneStrHeader is the "payload_one_str_header" vector of AWS's
// event-stream test suite (aws-sdk-go private/protocol/eventstream
// testdata): one string header, content-type application/json, and the
// payload {'foo':'bar'}. Both checksums are the suite's.
var payloadOneStrHeader = []byte{
	0x00, 0x00, 0x00, 0x3d, 0x00, 0x00, 0x00, 0x20, 0x07, 0xfd, 0x83, 0x96,
	0x0c, 'c', 'o', 'n', 't', 'e', 'n', 't', '-', 't', 'y', 'p', 'e', 0x07, 0x00, 0x10,
	'a', 'p', 'p', 'l', 'i', 'c', 'a', 't', 'i', 'o', 'n', '/', 'j', 's', 'o', 'n',
	'{', '\'', 'f', 'o', 'o', '\'', ':', '\'', 'b', 'a', 'r', '\'', '}',
	0x8d, 0x9c, 0x08, 0xb1,
}

func TestFrameReaderOfficialVector(t *testing.T) {
	fr := NewFrameReader(bytes.NewReader(payloadOneStrHeader))
	f, err := fr.Next()
	if err != nil {
		t.Fatal(err)
	}
	// The suite's header is "content-type", not Bedrock's ":content-type":
	// read, and skipped.
	if string(f.Payload) != "{'foo':'bar'}" || f.MessageType != "" || f.ContentType != "" {
		t.Fatalf("got %+v", f)
	}
	if _, err := fr.Next(); err != io.EOF {
		t.Fatalf("after the frame: %v, want io.EOF", err)
	}
	// AppendFrame writes the same bytes.
	if got := AppendFrame(nil, [][2]string{{"content-type", "application/json"}}, []byte("{'foo':'bar'}")); !bytes.Equal(got, payloadOneStrHeader) {
		t.Fatalf("AppendFrame = % x\nwant          % x", got, payloadOneStrHeader)
	}
}

// allHeadersFrame rebuilds the suite's "all_headers" vector from its
// decoded description: one header of every type (all skipped but
// content-type) and a 13-byte payload.
func allHeadersFrame() []byte {
	var h []byte
	name := func(n string, typ byte) { h = append(h, byte(len(n))); h = append(h, n...); h = append(h, typ) }
	name("event-type", typeInt32)
	h = binary.BigEndian.AppendUint32(h, 40972)
	name("content-type", typeString)
	h = binary.BigEndian.AppendUint16(h, 16)
	h = append(h, "application/json"...)
	name("bool false", typeFalse)
	name("bool true", typeTrue)
	name("byte", typeByte)
	h = append(h, 207)
	bb, _ := base64.StdEncoding.DecodeString("SSdtIGEgbGl0dGxlIHRlYXBvdCE=")
	name("byte buf", typeBytes)
	h = binary.BigEndian.AppendUint16(h, uint16(len(bb)))
	h = append(h, bb...)
	name("timestamp", typeTimestamp)
	h = binary.BigEndian.AppendUint64(h, 8675309)
	name("int16", typeInt16)
	h = binary.BigEndian.AppendUint16(h, 42)
	name("int64", typeInt64)
	h = binary.BigEndian.AppendUint64(h, 42424242)
	uuid, _ := base64.StdEncoding.DecodeString("AAECAwQFBgcICQoLDA0ODw==")
	name("uuid", typeUUID)
	h = append(h, uuid...)
	return rawFrame(h, []byte("{'foo':'bar'}"))
}

// rawFrame frames a headers section and payload with correct checksums.
func rawFrame(h, payload []byte) []byte {
	var f []byte
	f = binary.BigEndian.AppendUint32(f, uint32(preludeLen+len(h)+len(payload)+4))
	f = binary.BigEndian.AppendUint32(f, uint32(len(h)))
	f = binary.BigEndian.AppendUint32(f, crc32.ChecksumIEEE(f))
	f = append(f, h...)
	f = append(f, payload...)
	return binary.BigEndian.AppendUint32(f, crc32.ChecksumIEEE(f))
}

func TestFrameReaderAllHeaderTypes(t *testing.T) {
	b := allHeadersFrame()
	// The suite's decoded description: total 204, headers 175, prelude CRC 263087306.
	if len(b) != 204 || binary.BigEndian.Uint32(b[4:]) != 175 || binary.BigEndian.Uint32(b[8:]) != 263087306 {
		t.Fatalf("rebuilt vector differs from the suite's prelude: len %d", len(b))
	}
	f, err := NewFrameReader(bytes.NewReader(b)).Next()
	if err != nil {
		t.Fatal(err)
	}
	if string(f.Payload) != "{'foo':'bar'}" || f.EventType != "" {
		t.Fatalf("got %+v", f)
	}
}

func TestFrameReaderRejects(t *testing.T) {
	v := payloadOneStrHeader
	mut := func(i int, x byte) []byte {
		b := bytes.Clone(v)
		b[i] ^= x
		return b
	}
	big := binary.BigEndian.AppendUint32(nil, MaxFrameBytes+1)
	big = binary.BigEndian.AppendUint32(big, 0)
	big = binary.BigEndian.AppendUint32(big, crc32.ChecksumIEEE(big))
	short := binary.BigEndian.AppendUint32(nil, 10)
	short = binary.BigEndian.AppendUint32(short, 0)
	short = binary.BigEndian.AppendUint32(short, crc32.ChecksumIEEE(short))
	for _, c := range []struct {
		name string
		in   []byte
		want error
	}{
		// The suite's negative vectors: corrupted_length,
		// corrupted_header_len, corrupted_headers, corrupted_payload.
		{"corrupted_length", mut(3, 0x01), ErrPreludeCRC},
		{"corrupted_header_len", mut(7, 0x01), ErrPreludeCRC},
		{"corrupted_headers", mut(20, 0x01), ErrMessageCRC},
		{"corrupted_payload", mut(len(v)-6, 0x01), ErrMessageCRC},
		{"corrupted_prelude_crc", mut(9, 0x80), ErrPreludeCRC},
		{"corrupted_message_crc", mut(len(v)-1, 0x01), ErrMessageCRC},
		{"truncated_prelude", v[:7], io.ErrUnexpectedEOF},
		{"truncated_body", v[:40], io.ErrUnexpectedEOF},
		{"too_large", big, ErrFrameTooLarge},
		{"too_short", short, ErrMalformedFrame},
		{"empty_header_name", rawFrame([]byte{0, typeTrue}, nil), ErrMalformedFrame},
		{"unknown_header_type", rawFrame([]byte{1, 'a', 10}, nil), ErrMalformedFrame},
		{"truncated_string_header", rawFrame([]byte{1, 'a', typeString, 0, 9, 'x'}, nil), ErrMalformedFrame},
		{"truncated_int_header", rawFrame([]byte{1, 'a', typeInt64, 0, 0}, nil), ErrMalformedFrame},
		{"too_many_headers", rawFrame(bytes.Repeat([]byte{1, 'a', typeTrue}, MaxHeaders+1), nil), ErrMalformedFrame},
	} {
		t.Run(c.name, func(t *testing.T) {
			fr := NewFrameReader(bytes.NewReader(c.in))
			_, err := fr.Next()
			if !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
			if _, err2 := fr.Next(); err2 == nil || err2 == io.EOF {
				t.Fatalf("a broken reader went on: %v", err2)
			}
		})
	}
}

func TestFrameReaderHeadersLengthPastFrame(t *testing.T) {
	var f []byte
	f = binary.BigEndian.AppendUint32(f, 16)
	f = binary.BigEndian.AppendUint32(f, 1) // one header byte in a frame that has room for none
	f = binary.BigEndian.AppendUint32(f, crc32.ChecksumIEEE(f))
	f = binary.BigEndian.AppendUint32(f, crc32.ChecksumIEEE(f))
	if _, err := NewFrameReader(bytes.NewReader(f)).Next(); !errors.Is(err, ErrMalformedFrame) {
		t.Fatalf("err = %v", err)
	}
}

// A frame that claims 16 MiB and sends a few bytes costs a little memory.
func TestFrameReaderGrowsWithData(t *testing.T) {
	var f []byte
	f = binary.BigEndian.AppendUint32(f, MaxFrameBytes)
	f = binary.BigEndian.AppendUint32(f, 0)
	f = binary.BigEndian.AppendUint32(f, crc32.ChecksumIEEE(f))
	f = append(f, "short"...)
	fr := NewFrameReader(bytes.NewReader(f))
	if _, err := fr.Next(); err != io.ErrUnexpectedEOF {
		t.Fatalf("err = %v", err)
	}
	if cap(fr.buf) > 2*readChunk {
		t.Fatalf("buffer grew to %d bytes for a 17-byte input", cap(fr.buf))
	}
}

func TestAppendFrameRoundTrip(t *testing.T) {
	var b []byte
	payloads := []string{"", "{}", strings.Repeat("x", 100_000)}
	for _, p := range payloads {
		b = AppendFrame(b, [][2]string{{":message-type", "exception"}, {":exception-type", "throttlingException"}, {"x-custom", "v"}}, []byte(p))
	}
	fr := NewFrameReader(bytes.NewReader(b))
	for _, p := range payloads {
		f, err := fr.Next()
		if err != nil {
			t.Fatal(err)
		}
		if f.MessageType != "exception" || f.ExceptionType != "throttlingException" || string(f.Payload) != p {
			t.Fatalf("got %q %q %d bytes", f.MessageType, f.ExceptionType, len(f.Payload))
		}
	}
	if _, err := fr.Next(); err != io.EOF {
		t.Fatalf("end: %v", err)
	}
}

func FuzzFrameReader(f *testing.F) {
	f.Add(payloadOneStrHeader)
	f.Add(allHeadersFrame())
	f.Add(AppendFrame(AppendFrame(nil, [][2]string{{":event-type", "messageStart"}}, []byte(`{}`)), nil, nil))
	f.Add([]byte{0, 0, 0, 16, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		fr := NewFrameReader(bytes.NewReader(b))
		for i := 0; i < 1000; i++ {
			fm, err := fr.Next()
			if err != nil {
				return
			}
			if len(fm.Payload) > len(b) {
				t.Fatal("payload longer than the input")
			}
		}
	})
}

func BenchmarkFrameReader(b *testing.B) {
	frame := AppendFrame(nil, [][2]string{{":event-type", "contentBlockDelta"}, {":content-type", "application/json"}, {":message-type", "event"}},
		[]byte(`{"contentBlockIndex":0,"delta":{"text":"Hello "},"p":"abcdefghijklmnopqrstuvwxyzABCDEFGHIJ"}`))
	const n = 64
	in := bytes.Repeat(frame, n)
	r := bytes.NewReader(in)
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	b.ResetTimer()
	fr := NewFrameReader(r)
	for i := 0; i < b.N; i++ {
		if i%n == 0 {
			r.Reset(in)
			fr = &FrameReader{r: r, buf: fr.buf}
		}
		if _, err := fr.Next(); err != nil {
			b.Fatal(err)
		}
	}
}

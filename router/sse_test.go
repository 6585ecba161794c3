package router

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

type event struct{ data, name string }

func readAll(r io.Reader) ([]event, error) {
	er := newEventReader(r)
	var out []event
	for {
		d, n, err := er.next()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return out, err
		}
		out = append(out, event{string(d), string(n)})
	}
}

func TestEventReader(t *testing.T) {
	in := ": comment\n\ndata: a\n\nevent: error\ndata: {\"x\":1}\n\ndata: l1\r\ndata: l2\r\n\r\ndata:nospace\n\nid: 7\nretry: 10\n\ndata: [DONE]\n\n"
	got, err := readAll(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want := []event{{"a", ""}, {`{"x":1}`, "error"}, {"l1\nl2", ""}, {"nospace", ""}, {"[DONE]", ""}}
	if len(got) != len(want) {
		t.Fatalf("got %q", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("event %d = %q, want %q", i, got[i], want[i])
		}
	}
}

func TestEventReaderCutStream(t *testing.T) {
	_, err := readAll(strings.NewReader("data: a\n\ndata: {\"trunc"))
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("a stream cut mid-line must not end cleanly: %v", err)
	}
}

func TestEventReaderLongLine(t *testing.T) {
	long := strings.Repeat("x", 100<<10) // larger than the bufio buffer
	got, err := readAll(strings.NewReader("data: " + long + "\n\n"))
	if err != nil || len(got) != 1 || got[0].data != long {
		t.Fatalf("long event: %v, %d events", err, len(got))
	}
}

// FuzzSSEParser: reading the same bytes in one piece or one byte at a time
// gives the same events (RELIABILITY.md §7.5).
func FuzzSSEParser(f *testing.F) {
	for _, s := range []string{"data: a\n\n", "data: a\r\n\r\ndata: b\n\n", ": c\n\nevent: e\ndata: x\ndata: y\n\n", "data", "\n\n\n", "data: [DONE]\n\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		whole, err1 := readAll(bytes.NewReader(b))
		bytewise, err2 := readAll(iotest.OneByteReader(bytes.NewReader(b)))
		if (err1 == nil) != (err2 == nil) || len(whole) != len(bytewise) {
			t.Fatalf("whole %q (%v) vs bytewise %q (%v)", whole, err1, bytewise, err2)
		}
		for i := range whole {
			if whole[i] != bytewise[i] {
				t.Fatalf("event %d differs: %q vs %q", i, whole[i], bytewise[i])
			}
		}
	})
}

func TestEventReaderLastEventWithoutBlankLine(t *testing.T) {
	got, err := readAll(strings.NewReader("data: a\n\ndata: [DONE]\n"))
	if err != nil || len(got) != 2 || got[1].data != "[DONE]" {
		t.Fatalf("got %q, %v", got, err)
	}
}

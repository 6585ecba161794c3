package sse

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

type event struct {
	data, name string
	comment    bool
}

func (e event) String() string {
	if e.comment {
		return fmt.Sprintf("comment %q", e.data)
	}
	return fmt.Sprintf("event %q data %q", e.name, e.data)
}

// readAll returns the events of r, comments included.
func readAll(r io.Reader) ([]event, error) {
	er := NewReader(r)
	var out []event
	for {
		d, n, c, err := er.Next()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return out, err
		}
		out = append(out, event{string(d), string(n), c})
	}
}

// readEvents is readAll without the comments.
func readEvents(r io.Reader) ([]event, error) {
	all, err := readAll(r)
	var out []event
	for _, e := range all {
		if !e.comment {
			out = append(out, e)
		}
	}
	return out, err
}

func TestEventReader(t *testing.T) {
	in := ": comment\n\ndata: a\n\nevent: error\ndata: {\"x\":1}\n\ndata: l1\r\ndata: l2\r\n\r\ndata:nospace\n\nid: 7\nretry: 10\n\ndata: [DONE]\n\n"
	got, err := readEvents(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want := []event{{"a", "", false}, {`{"x":1}`, "error", false}, {"l1\nl2", "", false}, {"nospace", "", false}, {"[DONE]", "", false}}
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
// gives the same events (RELIABILITY.md §7.5); event names never hold a
// line break; re-encoding what was read (AppendEvent, AppendComment) and
// reading it again gives the same events; a Reader reset after reading
// part of the input reads it like a new one; and no input takes long.
func FuzzSSEParser(f *testing.F) {
	for _, s := range []string{"data: a\n\n", "data: a\r\n\r\ndata: b\n\n", ": c\n\nevent: e\ndata: x\ndata: y\n\n", "data", "\n\n\n", "data: [DONE]\n\n",
		"data: a\r\rdata: b\r", "\xef\xbb\xbfdata: x\n\n", "event: a\rdata: b\r\n\r\n", "data: 1\n: mid\ndata: 2\n\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		defer timeBound(t, len(b))()
		whole, err1 := readAll(bytes.NewReader(b))
		bytewise, err2 := readAll(iotest.OneByteReader(bytes.NewReader(b)))
		if (err1 == nil) != (err2 == nil) || len(whole) != len(bytewise) {
			t.Fatalf("whole %q (%v) vs bytewise %q (%v)", whole, err1, bytewise, err2)
		}
		var re []byte
		for i := range whole {
			if whole[i] != bytewise[i] {
				t.Fatalf("event %d differs: %q vs %q", i, whole[i], bytewise[i])
			}
			e := whole[i]
			if strings.ContainsAny(e.name, "\r\n") || (e.comment && strings.ContainsAny(e.data, "\r\n")) {
				t.Fatalf("line break in %q", e)
			}
			if e.comment {
				re = AppendComment(re, []byte(e.data))
			} else {
				re = AppendEvent(re, []byte(e.name), []byte(e.data))
			}
		}
		reused := NewReader(bytes.NewReader(b[:len(b)/2]))
		for {
			if _, _, _, err := reused.Next(); err != nil {
				break
			}
		}
		reused.Reset(bytes.NewReader(b))
		for i := 0; ; i++ {
			d, n, c, err := reused.Next()
			if err != nil {
				if (err == io.EOF) != (err1 == nil) || i != len(whole) {
					t.Fatalf("reset reader: %d events then %v; want %d then %v", i, err, len(whole), err1)
				}
				break
			}
			if i >= len(whole) || (event{string(d), string(n), c}) != whole[i] {
				t.Fatalf("reset reader: event %d is %q", i, event{string(d), string(n), c})
			}
		}
		again, err := readAll(bytes.NewReader(re))
		if err != nil || len(again) != len(whole) {
			t.Fatalf("re-encoded %q read as %q, %v; want %q", re, again, err, whole)
		}
		for i := range again {
			if again[i] != whole[i] {
				t.Fatalf("re-encoded event %d is %q, want %q", i, again[i], whole[i])
			}
		}
	})
}

// timeBound returns a func to defer that fails a fuzz input of n bytes
// which took too long: a superlinear path shows up as a slow input. This is
// the one place the tests measure time; the bound is generous (1 s per MiB,
// at least 1 s) so that only a blow-up trips it.
func timeBound(t *testing.T, n int) func() {
	start := time.Now()
	return func() {
		limit := time.Second * time.Duration(1+n>>20)
		if d := time.Since(start); d > limit {
			t.Fatalf("input of %d bytes took %v (limit %v)", n, d, limit)
		}
	}
}

func TestEventReaderMultiLineDataReencoded(t *testing.T) {
	// Two data lines are one event whose data is joined with "\n"; the
	// second line's text cannot become a field of its own when re-emitted.
	in := "data: {\"a\":\ndata: event: injected\ndata: 1}\n\n"
	got, err := readEvents(strings.NewReader(in))
	if err != nil || len(got) != 1 || got[0].data != "{\"a\":\nevent: injected\n1}" || got[0].name != "" {
		t.Fatalf("got %q, %v", got, err)
	}
	out := string(AppendEvent(nil, nil, []byte(got[0].data)))
	if out != in {
		t.Fatalf("re-encoded %q, want %q", out, in)
	}
}

func TestEventReaderLineEndings(t *testing.T) {
	for name, in := range map[string]string{
		"LF":    "event: e\ndata: a\ndata: b\n\ndata: c\n\n",
		"CRLF":  "event: e\r\ndata: a\r\ndata: b\r\n\r\ndata: c\r\n\r\n",
		"CR":    "event: e\rdata: a\rdata: b\r\rdata: c\r\r",
		"mixed": "event: e\rdata: a\r\ndata: b\n\rdata: c\r\n\n",
	} {
		t.Run(name, func(t *testing.T) {
			for _, r := range []io.Reader{strings.NewReader(in), iotest.OneByteReader(strings.NewReader(in))} {
				got, err := readEvents(r)
				want := []event{{"a\nb", "e", false}, {"c", "", false}}
				if err != nil || len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
					t.Fatalf("got %q, %v; want %q", got, err, want)
				}
			}
		})
	}
}

func TestEventReaderComments(t *testing.T) {
	in := ": keepalive\n\ndata: 1\n:mid\ndata: 2\n\n:\n"
	got, err := readAll(strings.NewReader(in))
	want := []event{{" keepalive", "", true}, {"mid", "", true}, {"1\n2", "", false}, {"", "", true}}
	if err != nil || len(got) != len(want) {
		t.Fatalf("got %q, %v", got, err)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("event %d = %q, want %q", i, got[i], want[i])
		}
	}
}

func TestEventReaderSkipsBOM(t *testing.T) {
	got, err := readEvents(iotest.OneByteReader(strings.NewReader("\xef\xbb\xbfdata: x\n\n")))
	if err != nil || len(got) != 1 || got[0].data != "x" {
		t.Fatalf("got %q, %v", got, err)
	}
}

func TestEventReaderOversized(t *testing.T) {
	line := "data: " + strings.Repeat("x", MaxEventBytes/2) + "\n"
	_, err := readAll(strings.NewReader(line + line + line + "\n"))
	if !errors.Is(err, ErrEventTooLarge) {
		t.Fatalf("an event past MaxEventBytes: %v", err)
	}
	_, err = readAll(strings.NewReader(": " + strings.Repeat("x", MaxEventBytes+1) + "\n"))
	if !errors.Is(err, ErrEventTooLarge) {
		t.Fatalf("a line past MaxEventBytes: %v", err)
	}
}

func TestAppendEventCannotInject(t *testing.T) {
	tests := []struct{ event, data, want string }{
		{"", "x", "data: x\n\n"},
		{"error", "{}", "event: error\ndata: {}\n\n"},
		{"e\r\ndata: injected", "x", "event: e\ndata: x\n\n"},
		{"", "a\r\nb\rc\nevent: x", "data: a\ndata: b\ndata: c\ndata: event: x\n\n"},
		{"", "", "data: \n\n"},
	}
	for _, tt := range tests {
		if got := string(AppendEvent(nil, []byte(tt.event), []byte(tt.data))); got != tt.want {
			t.Errorf("AppendEvent(%q, %q) = %q, want %q", tt.event, tt.data, got, tt.want)
		}
	}
	if got := string(AppendComment(nil, []byte(" a\ndata: x"))); got != ": a\n:data: x\n\n" {
		t.Errorf("AppendComment = %q", got)
	}
}

func BenchmarkEventReader(b *testing.B) {
	var sb strings.Builder
	for i := 0; i < 1000; i++ {
		sb.WriteString(`data: {"id":"chatcmpl-1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"Hello there "}}]}` + "\n\n")
	}
	sb.WriteString("data: [DONE]\n\n")
	in := []byte(sb.String())
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		er := NewReader(bytes.NewReader(in))
		for {
			if _, _, _, err := er.Next(); err == io.EOF {
				break
			}
		}
	}
}

func BenchmarkAppendEvent(b *testing.B) {
	data := []byte(`{"id":"chatcmpl-1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"Hello there "}}]}`)
	buf := make([]byte, 0, 4096)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendEvent(buf[:0], nil, data)
	}
}

func TestEventReaderLastEventWithoutBlankLine(t *testing.T) {
	got, err := readAll(strings.NewReader("data: a\n\ndata: [DONE]\n"))
	if err != nil || len(got) != 2 || got[1].data != "[DONE]" {
		t.Fatalf("got %q, %v", got, err)
	}
}

// TestEventReaderBufferBoundaries: lines and events around the read
// buffer's size (BufferSize), with every line ending and a CRLF split
// between two reads, read whole, in halves or byte by byte, give the same
// events; the events after a long one are read from the small buffer again.
func TestEventReaderBufferBoundaries(t *testing.T) {
	for _, n := range []int{BufferSize - 9, BufferSize - 8, BufferSize - 7, BufferSize - 1, BufferSize, BufferSize + 1, 3 * BufferSize} {
		for _, eol := range []string{"\n", "\r\n", "\r"} {
			long := strings.Repeat("y", n)
			in := "data: " + long + eol + eol + ": c" + eol + eol + "event: e" + eol + "data: after" + eol + eol
			want := []event{{long, "", false}, {" c", "", true}, {"after", "e", false}}
			for name, r := range map[string]func() io.Reader{
				"whole":   func() io.Reader { return strings.NewReader(in) },
				"half":    func() io.Reader { return iotest.HalfReader(strings.NewReader(in)) },
				"bytes":   func() io.Reader { return iotest.OneByteReader(strings.NewReader(in)) },
				"at-eol":  func() io.Reader { return splitReader(in, len("data: ")+n+1) },
				"data-at": func() io.Reader { return splitReader(in, BufferSize) },
			} {
				got, err := readAll(r())
				if err != nil || fmt.Sprint(got) != fmt.Sprint(want) {
					t.Fatalf("n %d eol %q %s: got %d events %.80q, %v", n, eol, name, len(got), got, err)
				}
			}
		}
	}
}

// splitReader returns s in two reads, split at i.
func splitReader(s string, i int) io.Reader {
	i = min(i, len(s))
	return io.MultiReader(strings.NewReader(s[:i]), strings.NewReader(s[i:]))
}

// TestEventReaderReset: a Reader reset in the middle of a stream (inside
// a long line, after a CR whose LF has not come, before a BOM check) reads
// the next stream exactly as a new Reader does; buffers grown by a huge
// event are not kept.
func TestEventReaderReset(t *testing.T) {
	next := "\xef\xbb\xbf\ndata: b1\n\nevent: x\ndata: b2\r\n\r\n"
	want, err := readAll(strings.NewReader(next))
	if err != nil || len(want) != 2 {
		t.Fatalf("fresh reader: %q, %v", want, err)
	}
	for _, first := range []string{
		"data: a\r", // a CR: an LF would be part of it
		"data: " + strings.Repeat("z", 3*BufferSize), // inside a long line
		"data: a\n\ndata: unfinished",
		"\xef\xbb",
		"",
	} {
		r := NewReader(strings.NewReader(first))
		for {
			if _, _, _, err := r.Next(); err != nil {
				break
			}
		}
		r.Reset(strings.NewReader(next))
		var got []event
		for {
			d, n, c, err := r.Next()
			if err != nil {
				if err != io.EOF {
					t.Fatalf("after %.20q: %v", first, err)
				}
				break
			}
			got = append(got, event{string(d), string(n), c})
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("after %.20q: %q, want %q", first, got, want)
		}
	}
	huge := "data: " + strings.Repeat("h", 2*keepBytes) + "\n\n"
	r := NewReader(strings.NewReader(huge))
	if d, _, _, err := r.Next(); err != nil || len(d) != 2*keepBytes {
		t.Fatalf("huge event: %d bytes, %v", len(d), err)
	}
	r.Reset(nil)
	if cap(r.data) > keepBytes || cap(r.line) > keepBytes {
		t.Fatalf("Reset kept %d + %d bytes", cap(r.data), cap(r.line))
	}
}

// TestEventReaderSteadyStateAllocs: once its buffers have grown, a reader
// reads events without allocating, also after Reset.
func TestEventReaderSteadyStateAllocs(t *testing.T) {
	in := strings.Repeat("event: e\ndata: {\"x\":1}\ndata: more\n\n: ping\n\n", 200) + "data: " + strings.Repeat("l", 2*BufferSize) + "\n\n"
	src := strings.NewReader(in)
	r := NewReader(src)
	read := func() {
		src.Reset(in)
		r.Reset(src)
		for {
			if _, _, _, err := r.Next(); err != nil {
				return
			}
		}
	}
	read()
	if n := testing.AllocsPerRun(20, read); n != 0 {
		t.Fatalf("%v allocations per stream of 401 events", n)
	}
}

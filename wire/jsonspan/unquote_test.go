package jsonspan

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

// stdUnquote decodes s, a string body without quotes, with encoding/json.
func stdUnquote(s []byte) (string, bool) {
	var v string
	if json.Unmarshal([]byte(`"`+string(s)+`"`), &v) != nil {
		return "", false
	}
	return v, true
}

var unquoteCases = []struct {
	in, want string
	ok       bool
}{
	{``, ``, true},
	{`plain text`, `plain text`, true},
	{`a\"b`, `a"b`, true},
	{`\\`, `\`, true},
	{`\/`, `/`, true},
	{`\b\f\n\r\t`, "\b\f\n\r\t", true},
	{`\u00e9\u4e2d\u0041`, "é中A", true},
	{`\uD83D\uDE00`, "😀", true},
	{`\ud83d\ude00 and more text`, "😀 and more text", true},
	{`\ud83d`, "\uFFFD", true},
	{`\ude00x`, "\uFFFDx", true},
	{`\ud83dx\ude00`, "\uFFFDx\uFFFD", true},
	{`\ud83d\u0041`, "\uFFFDA", true},
	{`\ud83d\ud83d\ude00`, "\uFFFD😀", true},
	{`\u0000`, "\x00", true},
	{"raw é 中 😀", "raw é 中 😀", true},
	{"\xff", "\uFFFD", true},
	{"abcdefgh\xffijklmnop", "abcdefgh\uFFFDijklmnop", true},
	{"\xe4\xb8", "\uFFFD\uFFFD", true},           // truncated sequence: one U+FFFD a byte
	{"\xed\xa0\x80", "\uFFFD\uFFFD\uFFFD", true}, // a surrogate in UTF-8
	{"\xef\xbf\xbd", "\uFFFD", true},             // U+FFFD itself
	{"\xc0\xaf", "\uFFFD\uFFFD", true},           // overlong
	{`tail\u00`, ``, false},
	{`tail\u00g0`, ``, false},
	{`\ud83d\u12`, ``, false},
	{`bad\q`, ``, false},
	{`end\`, ``, false},
	{`\U0041`, ``, false},
	{`a"b`, ``, false},
	{"a\x01b", ``, false},
	{"a\nb", ``, false},
	{"0123456789\x1f", ``, false},
	{"\x7f", "\x7f", true},
}

func TestAppendUnquoted(t *testing.T) {
	for _, c := range unquoteCases {
		got, ok := AppendUnquoted([]byte("prefix:"), []byte(c.in))
		if ok != c.ok || ok && string(got) != "prefix:"+c.want {
			t.Errorf("AppendUnquoted(%q) = %q, %v; want %q, %v", c.in, got, ok, c.want, c.ok)
		}
		if want, wantOK := stdUnquote([]byte(c.in)); wantOK != c.ok || want != c.want {
			t.Errorf("case %q: encoding/json says %q, %v", c.in, want, wantOK)
		}
		s, ok := Unquote([]byte(c.in))
		if ok != c.ok || s != c.want {
			t.Errorf("Unquote(%q) = %q, %v; want %q, %v", c.in, s, ok, c.want, c.ok)
		}
	}
}

func TestPlainPrefix(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int
	}{
		{``, 0},
		{`abc`, 3},
		{`0123456789abcdef`, 16},
		{`0123456789abcde\n`, 15},
		{`01234567"9`, 8},
		{"0123\x00567", 4},
		{"é中😀 plain", len("é中😀 plain")},
		{"0123456\xff", 7},
		{"01234567\xe4\xb8", 8},
		{"\x20\x21\x7e\x7f", 4},
	} {
		if got := PlainPrefix([]byte(c.in)); got != c.want {
			t.Errorf("PlainPrefix(%q) = %d, want %d", c.in, got, c.want)
		}
	}
	// Every byte value at every lane of a word.
	for b := range 256 {
		for at := range 16 {
			s := []byte(strings.Repeat("x", 16))
			s[at] = byte(b)
			want := 16
			if b < 0x20 || b == '"' || b == '\\' || b >= 0x80 {
				want = at
			}
			if got := PlainPrefix(s); got != want {
				t.Fatalf("PlainPrefix with %#x at %d = %d, want %d", b, at, got, want)
			}
		}
	}
}

// Abuse: a long run of escapes and invalid bytes decodes in one pass and
// appends nothing beyond dst.
func TestAppendUnquotedAllocs(t *testing.T) {
	in := []byte(strings.Repeat(`ab\n\u00e9\ud83d\ude00\ud83d`+"\xff", 1000))
	dst := make([]byte, 0, 4*len(in))
	if n := testing.AllocsPerRun(10, func() { AppendUnquoted(dst[:0], in) }); n != 0 {
		t.Fatalf("AppendUnquoted allocated %v times", n)
	}
	got, _ := AppendUnquoted(nil, in)
	want, _ := stdUnquote(in)
	if string(got) != want {
		t.Fatal("long input differs from encoding/json")
	}
}

// FuzzAppendUnquoted: the same answer as encoding/json.Unmarshal into a
// string, for every body, valid UTF-8 or not.
func FuzzAppendUnquoted(f *testing.F) {
	for _, c := range unquoteCases {
		f.Add([]byte(c.in))
	}
	f.Add([]byte(`\"\\\/\b\f\n\r\t\u0000\u001f\u007f\u00ff\uffff\uFFFE`))
	f.Add([]byte(`\ud800\udc00\udbff\udfff\udc00\ud800\ud800\ud800\udc00`))
	f.Fuzz(func(t *testing.T, b []byte) {
		want, wantOK := stdUnquote(b)
		got, ok := AppendUnquoted([]byte("x"), b)
		if ok != wantOK || ok && string(got[1:]) != want {
			t.Fatalf("AppendUnquoted(%q) = %q, %v; encoding/json: %q, %v", b, got[1:], ok, want, wantOK)
		}
		s, ok := Unquote(b)
		if ok != wantOK || s != want {
			t.Fatalf("Unquote(%q) = %q, %v; encoding/json: %q, %v", b, s, ok, want, wantOK)
		}
		if n := PlainPrefix(b); wantOK && n == len(b) && want != string(b) {
			t.Fatalf("PlainPrefix(%q) = %d but it decodes to %q", b, n, want)
		}
	})
}

func BenchmarkAppendUnquoted(b *testing.B) {
	for _, c := range []struct{ name, in string }{
		{"ascii", strings.Repeat("The quick brown fox jumps over the lazy dog. ", 40)},
		{"escaped", strings.Repeat(`The \"quick\" brown fox\njumps over the lazy dog. `, 40)},
		{"cjk", strings.Repeat("敏捷的棕色狐狸跳过了懒狗。", 40)},
	} {
		in := []byte(c.in)
		dst := make([]byte, 0, 2*len(in))
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(in)))
			for b.Loop() {
				dst, _ = AppendUnquoted(dst[:0], in)
			}
		})
	}
}

// The UTF-8 check in line agrees with utf8.DecodeRune on every lead and
// second byte, with third and fourth bytes at the edges of their ranges,
// at the end of s and before more text.
func TestPlainPrefixUTF8(t *testing.T) {
	edges := []byte{0x00, 0x41, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xff}
	for lead := 0x80; lead < 0x100; lead++ {
		for second := range 256 {
			thirds, fourths := edges[:1], edges[:1]
			if lead >= 0xe0 {
				thirds = edges
			}
			if lead >= 0xf0 {
				fourths = edges
			}
			for _, third := range thirds {
				for _, fourth := range fourths {
					seq := []byte{byte(lead), byte(second), third, fourth}
					for _, tail := range []string{"", "0123456789"} {
						for l := 1; l <= 4; l++ {
							s := append(append([]byte(nil), seq[:l]...), tail...)
							r, size := utf8.DecodeRune(s)
							want := 0
							if r != utf8.RuneError || size != 1 {
								want = size + PlainPrefix(s[size:])
							}
							if got := PlainPrefix(s); got != want {
								t.Fatalf("PlainPrefix(%x) = %d, want %d", s, got, want)
							}
						}
					}
				}
			}
		}
	}
}

// UnquoteInto decodes as Unquote does, into the caller's buffer: strings
// returned before the buffer grew stay right, bad literals give "" and
// leave the buffer as it was, and a warm buffer costs no allocation.
func TestUnquoteInto(t *testing.T) {
	var buf []byte
	a := UnquoteInto(&buf, []byte(`"plain"`))
	b := UnquoteInto(&buf, []byte(`"w\u00e9rd \"q\"\n"`))
	long := strings.Repeat("x", 5000)
	c := UnquoteInto(&buf, []byte(`"`+long+`"`)) // grows buf
	if a != "plain" || b != "wérd \"q\"\n" || c != long {
		t.Fatalf("%q %q %d", a, b, len(c))
	}
	n := len(buf)
	for _, bad := range []string{``, `"`, `x`, `"unterminated`, `"bad \x"`, `""`, `"a"x`} {
		if s := UnquoteInto(&buf, []byte(bad)); s != "" {
			t.Errorf("%q: %q", bad, s)
		}
		if len(buf) != n {
			t.Errorf("%q: buffer %d bytes, want %d", bad, len(buf), n)
		}
	}
	buf = buf[:0]
	if allocs := testing.AllocsPerRun(100, func() {
		buf = buf[:0]
		_ = UnquoteInto(&buf, []byte(`"w\u00e9rd \"q\"\n"`))
	}); allocs != 0 {
		t.Errorf("%v allocations", allocs)
	}
}

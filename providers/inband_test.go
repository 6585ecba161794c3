package providers

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// An in-band message is bounded, never cut inside a character, and
// redacted.
func TestInbandErrorMessageBounded(t *testing.T) {
	long := strings.Repeat("é", 2000)
	e := InbandError("p", []byte(`{"message":"`+long+`","type":"`+strings.Repeat("t", 500)+`"}`), 200, nil)
	if len(e.Message) > maxErrorMessage || len(e.Message) < maxErrorMessage-4 || !utf8.ValidString(e.Message) || len(e.Type) != maxErrorField {
		t.Fatalf("message %d bytes, type %d", len(e.Message), len(e.Type))
	}
}

// Control characters in an in-band error cannot forge log lines.
func TestInbandErrorControlCharacters(t *testing.T) {
	e := InbandError("p", []byte(`{"message":"a\nb\u001b[31mc","type":"x\ry"}`), 200, nil)
	if strings.ContainsAny(e.Message+e.Type, "\n\r\x1b") {
		t.Fatalf("%q %q", e.Message, e.Type)
	}
}

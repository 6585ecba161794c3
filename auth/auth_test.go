package auth

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sluice-ai/sluice/llm"
)

func TestAuthenticate(t *testing.T) {
	now := time.Now()
	past := now.Add(-time.Hour)
	snap := llm.EmptySnapshot()
	add := func(secret string, k llm.Key) {
		k.Hash = llm.HashKey(secret)
		snap.Keys[k.Hash] = &k
	}
	add("sk-good", llm.Key{ID: "1", Prefix: "sk-go"})
	add("sk-off", llm.Key{ID: "2", Disabled: true})
	add("sk-old", llm.Key{ID: "3", ExpiresAt: &past})
	tests := []struct {
		name, secret string
		ok           bool
	}{
		{"good", "sk-good", true},
		{"disabled", "sk-off", false},
		{"expired", "sk-old", false},
		{"unknown", "sk-nope", false},
		{"empty", "", false},
		{"no prefix", "good", false},
		{"huge", "sk-" + strings.Repeat("a", MaxCredentialBytes), false},
		{"sql", "sk-' OR 1=1 --", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Authenticate(snap, tt.secret, now)
			if tt.ok != (err == nil) {
				t.Fatalf("ok=%v err=%v", tt.ok, err)
			}
			if err != nil {
				if err.Status != http.StatusUnauthorized {
					t.Fatalf("status %d", err.Status)
				}
				if tt.secret != "" && strings.Contains(err.Message, tt.secret) {
					t.Fatalf("message echoes the credential")
				}
			} else if p.KeyID != "1" {
				t.Fatalf("principal %+v", p)
			}
		})
	}
}

func TestCredential(t *testing.T) {
	tests := []struct {
		h    http.Header
		want string
		ok   bool
	}{
		{http.Header{"Authorization": {"Bearer sk-a"}}, "sk-a", true},
		{http.Header{"Authorization": {"bearer  sk-a "}}, " sk-a ", true}, // as sent; the proxy trims
		{http.Header{"X-Api-Key": {"sk-b"}}, "sk-b", true},
		{http.Header{"Authorization": {"Basic abc"}}, "", true},
		{http.Header{"Authorization": {"Basic abc"}, "X-Api-Key": {"sk-b"}}, "sk-b", true},
		{http.Header{"Authorization": {"Bearer sk-a"}, "X-Api-Key": {"sk-a"}}, "sk-a", true},
		{http.Header{}, "", true},
		// More than one credential: refused, whichever comes first.
		{http.Header{"Authorization": {"Bearer sk-a", "Bearer sk-b"}}, "", false},
		{http.Header{"Authorization": {"Bearer sk-a", "Bearer sk-a"}}, "", false},
		{http.Header{"X-Api-Key": {"sk-a", "sk-b"}}, "", false},
		{http.Header{"Authorization": {"Bearer sk-a"}, "X-Api-Key": {"sk-b"}}, "", false},
		{http.Header{"Authorization": {"Bearer sk-a"}, "X-Api-Key": {""}}, "", false},
	}
	for _, tt := range tests {
		if got, ok := Credential(tt.h); got != tt.want || ok != tt.ok {
			t.Errorf("Credential(%v) = %q, %v; want %q, %v", tt.h, got, ok, tt.want, tt.ok)
		}
	}
}

// TestPrincipalOfKey checks the accounting fields a key's principal
// carries onto usage records.
func TestPrincipalOfKey(t *testing.T) {
	snap := llm.EmptySnapshot()
	snap.Keys[llm.HashKey("sk-owned")] = &llm.Key{ID: "key_1", Prefix: "sk-ow", Owner: "team-a"}
	p, err := Authenticate(snap, "sk-owned", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if p.ID != "key_1" || p.Kind != llm.PrincipalKey || p.Owner != "team-a" || p.KeyID != "key_1" {
		t.Fatalf("principal = %+v", p)
	}
}

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
	}{
		{http.Header{"Authorization": {"Bearer sk-a"}}, "sk-a"},
		{http.Header{"Authorization": {"bearer  sk-a "}}, "sk-a"},
		{http.Header{"X-Api-Key": {"sk-b"}}, "sk-b"},
		{http.Header{"Authorization": {"Basic abc"}}, ""},
		{http.Header{}, ""},
	}
	for _, tt := range tests {
		if got := Credential(tt.h); got != tt.want {
			t.Errorf("Credential(%v) = %q, want %q", tt.h, got, tt.want)
		}
	}
}

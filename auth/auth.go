package auth

import (
	"net/http"
	"strings"
	"time"

	"github.com/sluice-ai/sluice/llm"
)

// MaxCredentialBytes bounds the credential header accepted before any work
// is done on it.
const MaxCredentialBytes = 8 << 10

// Principal is who a request acts for.
type Principal struct {
	KeyID     string
	KeyPrefix string
	Name      string
	Key       *llm.Key
}

// Allows reports whether p may use model.
func (p *Principal) Allows(model string) bool { return p.Key == nil || p.Key.Allows(model) }

// Credential extracts the client's secret from Authorization: Bearer or
// x-api-key (Anthropic style). It returns "" when neither is present.
func Credential(h http.Header) string {
	if v := h.Get("Authorization"); v != "" {
		if len(v) > 7 && strings.EqualFold(v[:7], "bearer ") {
			return strings.TrimSpace(v[7:])
		}
		return ""
	}
	return strings.TrimSpace(h.Get("X-Api-Key"))
}

// Authenticate checks a Sluice key against snap. Every failure is the same
// 401 so callers cannot tell a revoked key from an unknown one; the message
// never echoes the credential.
func Authenticate(snap *llm.Snapshot, secret string, now time.Time) (*Principal, *llm.Error) {
	if secret == "" {
		return nil, llm.Errorf(llm.KindAuth, "missing API key: send Authorization: Bearer <key> or x-api-key")
	}
	if len(secret) > MaxCredentialBytes || !strings.HasPrefix(secret, "sk-") {
		return nil, invalid()
	}
	var buf [64]byte
	k, ok := snap.Keys[string(llm.AppendKeyHash(buf[:0], secret))] // no allocation for the lookup
	if !ok || k.Disabled || k.Expired(now) {
		return nil, invalid()
	}
	return &Principal{KeyID: k.ID, KeyPrefix: k.Prefix, Name: k.Name, Key: k}, nil
}

func invalid() *llm.Error {
	return llm.Errorf(llm.KindAuth, "invalid, expired or revoked API key")
}

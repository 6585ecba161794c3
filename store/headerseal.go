package store

import (
	"fmt"
	"strings"

	"github.com/sluice-ai/sluice/llm"
)

// sealedPrefix marks a provider header value stored encrypted. The values
// of credential-like headers (llm.SensitiveHeader: api-key, Authorization,
// x-goog-api-key…) are sealed like API keys and secrets; other headers stay
// readable. Values written before sealing (no prefix) are read as they are
// and sealed at the provider's next write.
const sealedPrefix = "sealed:v1:"

// headerAAD binds a sealed header value to its provider and header name.
func headerAAD(providerID, name string) string { return providerID + "\x00header\x00" + name }

// sealHeaders returns h with every sensitive header's value sealed.
func (s *Store) sealHeaders(providerID string, h map[string]string) (map[string]string, error) {
	out := make(map[string]string, len(h))
	for k, v := range h {
		if llm.SensitiveHeader(k) {
			enc, err := s.seal(v, headerAAD(providerID, k))
			if err != nil {
				return nil, err
			}
			v = sealedPrefix + enc
		}
		out[k] = v
	}
	return out, nil
}

// openHeaders returns r's headers with sealed values decrypted.
func (s *Store) openHeaders(r *providerRow) (map[string]string, error) {
	out := make(map[string]string, len(r.Headers))
	for k, v := range r.Headers {
		if enc, ok := strings.CutPrefix(v, sealedPrefix); ok {
			pt, err := s.open(enc, headerAAD(r.ID, k))
			if err != nil {
				return nil, fmt.Errorf("%w (provider %s, header %s)", err, r.Name, k)
			}
			v = pt
		}
		out[k] = v
	}
	return out, nil
}

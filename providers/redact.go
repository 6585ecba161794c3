package providers

import (
	"encoding/base64"
	"encoding/json"
	"net/url"
	"slices"
	"strings"

	"github.com/sluice-ai/sluice/llm"
)

// Redactor is implemented by providers that can scrub their own
// credentials from bytes an upstream sent (the router scrubs streamed error
// events with it before forwarding them).
type Redactor interface {
	// Redact replaces every credential of the provider in b, and every
	// fragment of fragLen bytes of one, with "[redacted]", and returns the
	// result appended to dst. When nothing matches it returns b itself and
	// allocates nothing. Its cost is linear in len(b).
	Redact(dst, b []byte) []byte
}

const (
	// fragLen is the length of the credential fragments that are redacted:
	// upstreams echo parts of keys ("Incorrect API key provided:
	// sk-abc*****xyz").
	fragLen = 8
	// minSecretLen is the shortest credential that is redacted at all;
	// anything shorter is not a secret and would shred ordinary text.
	minSecretLen = 4
	redacted     = "[redacted]"
)

// redactor finds a fixed set of secrets in text in one pass per distinct
// window length: every secret of at least fragLen bytes contributes all its
// fragLen-byte windows, each shorter one itself. Windows are packed into a
// uint64 (exact, since they are at most 8 bytes); a window of the input is
// looked up in a 64 Kibit filter first and in the exact set only on a hit.
// It is built once per provider configuration and safe for concurrent use.
type redactor struct {
	filter [1 << 10]uint64             // bit hash(len, window)
	sets   map[int]map[uint64]struct{} // window length -> packed windows
	lens   []int                       // keys of sets, ascending
	// whole is the length of the shortest secret form of at least fragLen
	// bytes: a run of matched fragLen-byte windows at least this long is an
	// echo of a whole credential (a shorter secret is matched whole).
	whole int
}

// newRedactor returns a redactor for secrets and their JSON- and
// URL-escaped forms, or nil when there is nothing to redact.
func newRedactor(secrets []string) *redactor {
	r := &redactor{sets: map[int]map[uint64]struct{}{}}
	for _, s := range secrets {
		for _, v := range secretForms(s) {
			if len(v) < minSecretLen {
				continue
			}
			if len(v) < fragLen {
				r.add(v)
				continue
			}
			if r.whole == 0 || len(v) < r.whole {
				r.whole = len(v)
			}
			for i := 0; i+fragLen <= len(v); i++ {
				r.add(v[i : i+fragLen])
			}
		}
	}
	if len(r.lens) == 0 {
		return nil
	}
	return r
}

// secretForms returns s and the other spellings an upstream may echo it in.
func secretForms(s string) []string {
	forms := []string{s}
	if b, err := json.Marshal(s); err == nil {
		j := string(b[1 : len(b)-1])
		forms = append(forms, j, strings.ReplaceAll(j, "/", `\/`))
	}
	forms = append(forms, url.QueryEscape(s), url.PathEscape(s))
	slices.Sort(forms)
	return slices.Compact(forms)
}

func (r *redactor) add(w string) {
	n := len(w)
	set, ok := r.sets[n]
	if !ok {
		set = map[uint64]struct{}{}
		r.sets[n] = set
		r.lens = append(r.lens, n)
		slices.Sort(r.lens)
	}
	k := pack(w)
	set[k] = struct{}{}
	h := filterHash(n, k)
	r.filter[h>>6] |= 1 << (h & 63)
}

func pack[T ~string | ~[]byte](w T) uint64 {
	var k uint64
	for i := 0; i < len(w); i++ {
		k = k<<8 | uint64(w[i])
	}
	return k
}

func filterHash(n int, k uint64) uint64 {
	return ((k ^ uint64(n)<<58) * 0x9E3779B97F4A7C15) >> 48
}

// spans returns the merged byte ranges of b covered by a secret window, in
// order; nil (no allocation) when there is none.
func spans[T ~string | ~[]byte](r *redactor, b T) [][2]int {
	if r == nil {
		return nil
	}
	var out [][2]int
	for _, n := range r.lens {
		if len(b) < n {
			break
		}
		set := r.sets[n]
		mask := ^uint64(0)
		if n < 8 {
			mask = 1<<(8*n) - 1
		}
		var k uint64
		for i := 0; i < len(b); i++ {
			k = (k<<8 | uint64(b[i])) & mask
			if i+1 < n {
				continue
			}
			h := filterHash(n, k)
			if r.filter[h>>6]&(1<<(h&63)) == 0 {
				continue
			}
			// Packing n <= 8 bytes into a uint64 is exact: a key hit is a match.
			if _, ok := set[k]; ok {
				out = append(out, [2]int{i + 1 - n, i + 1})
			}
		}
	}
	if len(out) == 0 {
		return nil
	}
	if len(r.lens) > 1 {
		slices.SortFunc(out, func(a, b [2]int) int { return a[0] - b[0] })
	}
	merged := out[:1]
	for _, s := range out[1:] {
		last := &merged[len(merged)-1]
		if s[0] <= last[1] {
			last[1] = max(last[1], s[1])
			continue
		}
		merged = append(merged, s)
	}
	return merged
}

// Redact implements Redactor.
func (r *redactor) Redact(dst, b []byte) []byte {
	sp := spans(r, b)
	if sp == nil {
		return b
	}
	start := 0
	for _, s := range sp {
		dst = append(dst, b[start:s[0]]...)
		dst = append(dst, redacted...)
		start = s[1]
	}
	return append(dst, b[start:]...)
}

// RedactWhole is Redact for text that is not an error: a model's answer,
// where a fragment of a credential ("sk-proj-") may well be ordinary
// content. Only runs of matched windows as long as a whole credential are
// replaced: an upstream echoing the key it was sent.
func (r *redactor) RedactWhole(dst, b []byte) []byte {
	if r == nil {
		return b
	}
	sp := spans(r, b)
	start, hit := 0, false
	for _, s := range sp {
		if n := s[1] - s[0]; n >= fragLen && n < r.whole {
			continue // a fragment of a long credential: may be content
		}
		hit = true
		dst = append(dst, b[start:s[0]]...)
		dst = append(dst, redacted...)
		start = s[1]
	}
	if !hit {
		return b
	}
	return append(dst, b[start:]...)
}

// str redacts a string.
func (r *redactor) str(s string) string {
	sp := spans(r, s)
	if sp == nil {
		return s
	}
	var sb strings.Builder
	start := 0
	for _, x := range sp {
		sb.WriteString(s[start:x[0]])
		sb.WriteString(redacted)
		start = x[1]
	}
	sb.WriteString(s[start:])
	return sb.String()
}

// providerSecrets lists every credential of p: the API key, every secret,
// and the value of every credential-like header (see llm.SensitiveHeader),
// also without its auth scheme ("Bearer ", "Basic ") and, for Basic, the
// decoded "user:password" and password.
func providerSecrets(p *llm.Provider) []string {
	out := []string{p.APIKey}
	for _, v := range p.Secrets {
		out = append(out, v)
	}
	for k, v := range p.Headers {
		if !llm.SensitiveHeader(k) {
			continue
		}
		out = append(out, v)
		if scheme, tok, ok := strings.Cut(strings.TrimSpace(v), " "); ok && scheme != "" && !strings.ContainsAny(scheme, "=,") {
			tok = strings.TrimSpace(tok)
			out = append(out, tok)
			if strings.EqualFold(scheme, "Basic") {
				// user:password, as an upstream may echo it decoded.
				if b, err := base64.StdEncoding.DecodeString(tok); err == nil {
					_, pass, _ := strings.Cut(string(b), ":") // a user name is not a secret
					out = append(out, string(b), pass)
				}
			}
		}
	}
	return out
}

// redactedError is an error whose text had credentials removed. It unwraps
// to the original, so errors.Is keeps working; its own text is clean.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// redactErr returns err, or a redactedError when its text holds a secret.
func (r *redactor) redactErr(err error) error {
	if r == nil || err == nil {
		return err
	}
	msg := err.Error()
	if clean := r.str(msg); clean != msg {
		return &redactedError{msg: clean, err: err}
	}
	return err
}

package providers

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"hash"
	"net/http"
	"sort"
	"strings"

	"github.com/sluice-ai/sluice/llm"
)

// Registry holds one Provider per configured provider, built from a
// snapshot. It is immutable once built.
type Registry struct {
	opts   Options
	byName map[string]Provider
	// byID keeps what the next registry may reuse: the built provider and
	// its HTTP client, with the fingerprint of the configuration they were
	// built from.
	byID map[string]*entry
}

// entry is one built provider.
type entry struct {
	name     string
	sum      [sha256.Size]byte // fingerprint of the configuration
	provider Provider
	client   *Client
}

// family is one provider wire family: its default base URL (empty when
// base_url is required), the validation of its options and secrets, and its
// constructor.
type family struct {
	defaultBaseURL string
	// optionsBaseURL is true when the family builds its endpoint from its
	// options (Bedrock's region) when base_url is empty: base_url is then
	// optional and stays empty, so a later change of options moves it.
	optionsBaseURL bool
	validate       func(p *llm.Provider) error
	build          func(p *llm.Provider, c *Client) (Provider, error)
	// urls, when set, lists the family's other upstream URLs (by field
	// name), which pass the same checks as base_url.
	urls func(p *llm.Provider) map[string]string
	// defaultFor, when set, gives the default base URL from p's options
	// (an openai-compatible preset's); "" falls back to defaultBaseURL.
	defaultFor func(p *llm.Provider) string
}

// families maps provider types to their families. It is a function rather
// than a package variable so nothing global is mutable.
func families() map[llm.ProviderType]family {
	return map[llm.ProviderType]family{
		llm.ProviderOpenAI:           {defaultBaseURL: DefaultOpenAIBaseURL, validate: validateOpenAI, build: NewOpenAI},
		llm.ProviderGemini:           {defaultBaseURL: DefaultGeminiBaseURL, validate: validateGemini, build: NewGemini},
		llm.ProviderVertex:           {defaultBaseURL: DefaultVertexBaseURL, validate: validateVertex, build: NewVertex, urls: vertexURLs},
		llm.ProviderOpenAICompatible: {defaultFor: compatDefaultBaseURL, validate: validateOpenAICompatible, build: NewOpenAI},
		llm.ProviderAzure:            {validate: validateAzure, build: NewAzure},
		llm.ProviderBedrock:          {optionsBaseURL: true, validate: validateBedrock, build: NewBedrock},
		llm.ProviderAnthropic:        {defaultBaseURL: DefaultAnthropicBaseURL, validate: validateAnthropic, build: NewAnthropic},
	}
}

// KnownTypes lists the provider types this build supports, sorted.
func KnownTypes() []string {
	var out []string
	for k := range families() {
		out = append(out, string(k))
	}
	sort.Strings(out)
	return out
}

// ConfigRevision identifies p's configuration for consumers that key
// state by it (balancer targets): its Revision, or, for a configuration
// read before revisions existed, its UpdatedAt. 0 means unknown.
func ConfigRevision(p *llm.Provider) int64 {
	if p.Revision != 0 {
		return p.Revision
	}
	if p.UpdatedAt.IsZero() {
		return 0
	}
	return p.UpdatedAt.UnixNano()
}

// key is a provider's identity across reloads: its id (kept across
// renames), or its name when it has none.
func key(p *llm.Provider) string {
	if p.ID != "" {
		return p.ID
	}
	return "name:" + p.Name
}

// NewRegistry builds providers for every provider in snap. A provider of
// prev (which may be nil) with the same id, name and configuration (every
// field, secrets included, compared through a fingerprint) and built with
// the same opts is reused as it is: its warm connection pool and what it
// learnt about its upstream (that it rejects stream_options, say).
// Providers that fail validation (Options.Validate) or construction are
// skipped and reported in the returned error list, as are transport-owned
// headers an older row may hold (the provider is built without them); the
// registry is usable either way. Nothing of prev is closed: once the new registry is in use,
// call Retire(prev).
func NewRegistry(prev *Registry, snap *llm.Snapshot, opts Options) (*Registry, []error) {
	r := &Registry{opts: opts, byName: map[string]Provider{}, byID: map[string]*entry{}}
	fs := families()
	var errs []error
	for name, src := range snap.Providers {
		k, sum := key(src), fingerprint(src)
		if prev != nil && prev.opts == opts {
			if e, ok := prev.byID[k]; ok && e.name == name && e.sum == sum {
				r.byName[name], r.byID[k] = e.provider, e
				continue
			}
		}
		p := *src // Validate normalises; the snapshot is shared and immutable
		errs = append(errs, dropTransportHeaders(&p)...)
		if err := opts.Validate(&p); err != nil {
			errs = append(errs, fmt.Errorf("provider %q: %w", name, err))
			continue
		}
		c := NewClient(p.Timeouts, opts)
		prov, err := fs[p.Type].build(&p, c)
		if err != nil {
			errs = append(errs, fmt.Errorf("provider %q: %w", name, err))
			continue
		}
		r.byName[name] = prov
		r.byID[k] = &entry{name: name, sum: sum, provider: prov, client: c}
	}
	return r, errs
}

// Retire closes the idle connections of prev's providers that r does not
// use (removed or changed ones). Call it once r has replaced prev: requests
// still running on a retired provider finish, and their connections are
// closed by the client's idle timeout.
func (r *Registry) Retire(prev *Registry) {
	if prev == nil {
		return
	}
	for k, e := range prev.byID {
		if r == nil || r.byID[k] != e {
			e.client.CloseIdle()
		}
	}
}

// dropTransportHeaders removes from p (copying its header map) the headers
// the transport owns, which admin writes now refuse but older rows may
// hold: they were ignored or broke the call, so the provider is built
// without them rather than skipped, and each is reported. It also trims
// surrounding whitespace from values, as the transport did when sending.
func dropTransportHeaders(p *llm.Provider) []error {
	var errs []error
	var kept map[string]string
	for k, v := range p.Headers {
		if validHeaderName(k) && forbiddenHeader(http.CanonicalHeaderKey(k)) {
			errs = append(errs, fmt.Errorf("provider %q: header %s is managed by the transport and was ignored; remove it", p.Name, http.CanonicalHeaderKey(k)))
			continue
		}
		if kept == nil {
			kept = make(map[string]string, len(p.Headers))
		}
		kept[k] = strings.TrimSpace(v) // what the transport sent
	}
	p.Headers = kept
	return errs
}

// fingerprint hashes every field of p that the built provider depends on.
func fingerprint(p *llm.Provider) [sha256.Size]byte {
	h := sha256.New()
	str := func(s string) { writeLen(h, len(s)); h.Write([]byte(s)) }
	str(p.ID)
	str(p.Name)
	str(string(p.Type))
	str(p.BaseURL)
	str(p.APIKey)
	str(string(p.Options))
	for _, m := range []map[string]string{p.Headers, p.Secrets} {
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		writeLen(h, len(keys))
		for _, k := range keys {
			str(k)
			str(m[k])
		}
	}
	for _, d := range []int64{int64(p.Timeouts.Connect), int64(p.Timeouts.FirstByte), int64(p.Timeouts.Idle), p.Revision, p.UpdatedAt.UnixNano()} {
		writeLen(h, int(d))
	}
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	return sum
}

func writeLen(h hash.Hash, n int) {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], uint64(n))
	h.Write(b[:])
}

// Get returns the provider named name.
func (r *Registry) Get(name string) (Provider, bool) {
	if r == nil {
		return nil, false
	}
	p, ok := r.byName[name]
	return p, ok
}

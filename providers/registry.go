package providers

import (
	"fmt"
	"sort"

	"github.com/sluice-ai/sluice/llm"
)

// Registry holds one Provider per configured provider, built from a
// snapshot. It is immutable once built.
type Registry struct {
	byName map[string]Provider
	// clients keeps the HTTP clients so the next registry can reuse their
	// connection pools for providers that did not change.
	clients map[string]*clientEntry
}

// Factory builds a Provider for one provider family.
type Factory func(p *llm.Provider, c *Client) (Provider, error)

// factories maps provider types to their constructors. It is a function
// rather than a package variable so nothing global is mutable.
func factories() map[llm.ProviderType]Factory {
	return map[llm.ProviderType]Factory{
		llm.ProviderOpenAI:           NewOpenAI,
		llm.ProviderOpenAICompatible: NewOpenAI,
	}
}

// KnownTypes lists the provider types this build supports, sorted.
func KnownTypes() []string {
	var out []string
	for k := range factories() {
		out = append(out, string(k))
	}
	sort.Strings(out)
	return out
}

// NewRegistry builds providers for every provider in snap. HTTP clients of
// prev (which may be nil) are reused for providers whose configuration did
// not change, so reloads keep warm connection pools. Providers that fail to
// build are skipped and reported in the returned error list; the registry is
// usable either way.
func NewRegistry(prev *Registry, snap *llm.Snapshot) (*Registry, []error) {
	r := &Registry{byName: map[string]Provider{}, clients: map[string]*clientEntry{}}
	fs := factories()
	var errs []error
	for name, p := range snap.Providers {
		f, ok := fs[p.Type]
		if !ok {
			errs = append(errs, fmt.Errorf("provider %q: unknown type %q (known: %v)", name, p.Type, KnownTypes()))
			continue
		}
		var c *Client
		if prev != nil {
			if e, ok := prev.clients[name]; ok && e.matches(p) {
				c = e.client
			}
		}
		if c == nil {
			c = NewClient(p.Timeouts)
		}
		prov, err := f(p, c)
		if err != nil {
			errs = append(errs, fmt.Errorf("provider %q: %w", name, err))
			continue
		}
		r.byName[name] = prov
		r.clients[name] = &clientEntry{client: c, updated: p.UpdatedAt.UnixNano(), timeouts: p.Timeouts}
	}
	// Idle connections of providers that went away or changed are closed.
	if prev != nil {
		for name, e := range prev.clients {
			if n, ok := r.clients[name]; !ok || n.client != e.client {
				e.client.CloseIdle()
			}
		}
	}
	return r, errs
}

// Get returns the provider named name.
func (r *Registry) Get(name string) (Provider, bool) {
	if r == nil {
		return nil, false
	}
	p, ok := r.byName[name]
	return p, ok
}

type clientEntry struct {
	client   *Client
	updated  int64
	timeouts llm.Timeouts
}

func (e *clientEntry) matches(p *llm.Provider) bool {
	return e.updated == p.UpdatedAt.UnixNano() && e.timeouts == p.Timeouts
}

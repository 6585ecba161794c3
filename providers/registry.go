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
	// byID keeps what the next registry may reuse: the built provider and
	// its HTTP client, with the configuration revision they were built at.
	byID map[string]*entry
}

// entry is one built provider.
type entry struct {
	name     string
	revision int64
	provider Provider
	client   *Client
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

// ConfigRevision identifies p's configuration: its Revision, or, for a
// configuration read before revisions existed, its UpdatedAt. 0 means
// unknown (nothing may then be reused).
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

// NewRegistry builds providers for every provider in snap. Providers of
// prev (which may be nil) whose id and configuration revision did not change
// are reused as they are, HTTP connection pool and all, so reloads keep warm
// connections and whatever a provider learned about its upstream. Providers
// that fail to build are skipped and reported in the returned error list;
// the registry is usable either way. Nothing of prev is closed: once the
// new registry is in use, call Retire(prev).
func NewRegistry(prev *Registry, snap *llm.Snapshot) (*Registry, []error) {
	r := &Registry{byName: map[string]Provider{}, byID: map[string]*entry{}}
	fs := factories()
	var errs []error
	for name, p := range snap.Providers {
		k, rev := key(p), ConfigRevision(p)
		if prev != nil {
			if e, ok := prev.byID[k]; ok && rev != 0 && e.revision == rev && e.name == name {
				r.byName[name], r.byID[k] = e.provider, e
				continue
			}
		}
		f, ok := fs[p.Type]
		if !ok {
			errs = append(errs, fmt.Errorf("provider %q: unknown type %q (known: %v)", name, p.Type, KnownTypes()))
			continue
		}
		c := NewClient(p.Timeouts)
		prov, err := f(p, c)
		if err != nil {
			errs = append(errs, fmt.Errorf("provider %q: %w", name, err))
			continue
		}
		r.byName[name] = prov
		r.byID[k] = &entry{name: name, revision: rev, provider: prov, client: c}
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

// Get returns the provider named name.
func (r *Registry) Get(name string) (Provider, bool) {
	if r == nil {
		return nil, false
	}
	p, ok := r.byName[name]
	return p, ok
}

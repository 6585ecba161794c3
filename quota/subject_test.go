package quota

import (
	"context"
	"strings"
	"testing"

	"github.com/sluice-ai/sluice/llm"
)

// A JWT principal's subject has its own counters under its issuer's
// limits, stored under a hash of its id, never the claim itself.
func TestSubjectLimitsPerPrincipal(t *testing.T) {
	c := newClock()
	l := newTestLimiter(t, Options{Now: c.now, Store: NewMemory(c.now)})
	lim := llm.Limits{RPM: 1}
	req := func(id, principal string) *Request {
		return &Request{ID: id, Subject: Subject{Scope: ScopeSubject, ID: principal, Limits: lim}, PromptTokens: func() int { return 1 }}
	}
	for _, p := range []string{"corp:alice", "corp:bob"} {
		res, e := l.Admit(context.Background(), req("r-"+p, p))
		if e != nil {
			t.Fatalf("%s first request: %v", p, e)
		}
		res.Settle(llm.Usage{}, 0)
	}
	_, e := l.Admit(context.Background(), req("r3", "corp:alice"))
	if e == nil || e.Status != 429 || !strings.Contains(e.Message, `subject "corp:alice"`) {
		t.Fatalf("second request of alice: %+v", e)
	}
	s := Subject{Scope: ScopeSubject, ID: "corp:' OR 1=1 {x}"}
	if tag := s.Tag(); strings.Contains(tag, "OR") || strings.Count(tag, "{") != 1 {
		t.Fatalf("tag %q carries the claim", tag)
	}
	// No issuer limits: no subject.
	if res, e := l.Admit(context.Background(), &Request{ID: "r4", Subject: Subject{Scope: ScopeSubject, ID: "corp:carol"}}); res != nil || e != nil {
		t.Fatalf("%v %v", res, e)
	}
}

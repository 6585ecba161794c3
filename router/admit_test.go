package router

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-ai/sluice/llm"
)

// headroomAdmitter admits every request, refuses attempts on the
// deployments in full, and sets one header.
type headroomAdmitter struct {
	full     map[string]bool
	tried    atomic.Int32
	settled  atomic.Int32
	admitted atomic.Int32
}

type headerAdmission struct{ a *headroomAdmitter }

func (h headerAdmission) Settle(llm.Usage, int64) { h.a.settled.Add(1) }
func (h headerAdmission) Headers(hd http.Header) {
	hd["X-Ratelimit-Limit-Requests"] = []string{"7"}
}

func (a *headroomAdmitter) Admit(context.Context, Ask) (Admission, *llm.Error) {
	a.admitted.Add(1)
	return headerAdmission{a}, nil
}

func (a *headroomAdmitter) AdmitDeployment(_ context.Context, ask Ask, d *llm.Deployment) (Admission, *llm.Error) {
	a.tried.Add(1)
	if ask.ID == "" || ask.Model == nil {
		panic("ask not carried to the attempt")
	}
	if a.full[d.ID] {
		e := llm.Errorf(llm.KindRateLimited, "rate limit reached for deployment %q", d.ID)
		e.RetryAfter = 2 * time.Second
		return nil, e
	}
	return headerAdmission{a}, nil
}

// TestDeploymentWithoutHeadroomIsSkipped: an attempt refused by its
// deployment's own limits moves to the next deployment without contacting
// the first; when none has headroom the client gets the 429.
func TestDeploymentWithoutHeadroomIsSkipped(t *testing.T) {
	var calls [2]atomic.Int32
	ups := make([]string, 2)
	for i := range ups {
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			calls[i].Add(1)
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"id":"x","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}}`)
		}))
		defer s.Close()
		ups[i] = s.URL
	}
	for _, full := range []map[string]bool{{"dep_p0": true}, {"dep_p0": true, "dep_p1": true}} {
		adm := &headroomAdmitter{full: full}
		srv, _ := newTestProxyWith(t, func(o *Options) {
			o.Admitter = adm
			for i := range o.State().Snapshot.Models["m"].Deployments {
				o.State().Snapshot.Models["m"].Deployments[i].Limits = llm.Limits{RPM: 1}
			}
		}, time.Second, ups...)
		resp := post(t, srv.URL, `{"model":"m","messages":[{"role":"user","content":"hello"}]}`)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.Header.Get("X-Ratelimit-Limit-Requests") != "7" {
			t.Errorf("admission headers missing: %v", resp.Header)
		}
		if len(full) == 1 {
			if resp.StatusCode != 200 || calls[0].Load() != 0 || calls[1].Load() != 1 || resp.Header.Get("X-Sluice-Deployment") != "dep_p1" {
				t.Fatalf("status %d calls %d/%d deployment %q: %s", resp.StatusCode, calls[0].Load(), calls[1].Load(), resp.Header.Get("X-Sluice-Deployment"), b)
			}
			// The request's admission and the attempt's are both settled.
			if adm.settled.Load() != 2 {
				t.Fatalf("settled %d admissions, want 2", adm.settled.Load())
			}
		} else if resp.StatusCode != 429 || !strings.Contains(string(b), "rate limit reached for deployment") || resp.Header.Get("Retry-After") != "2" {
			t.Fatalf("no headroom anywhere: %d %s", resp.StatusCode, b)
		}
		srv.Close()
	}
}

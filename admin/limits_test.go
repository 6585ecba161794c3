package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/sluice-ai/sluice/llm"
	"github.com/sluice-ai/sluice/store"
)

const allLimits = `"rpm":100,"tpm":20000,"max_parallel":4,"fail_mode":"closed","budget":{"usd":12.5,"tokens":1000000,"period":"week","fail_mode":"open"}`

var wantAllLimits = llm.Limits{RPM: 100, TPM: 20000, MaxParallel: 4, FailMode: llm.FailClosed,
	Budget: &llm.Budget{USD: 12.5, Tokens: 1000000, Period: llm.PeriodWeek, FailMode: llm.FailOpen}}

func sameLimits(a, b llm.Limits) bool {
	if (a.Budget == nil) != (b.Budget == nil) || (a.Budget != nil && *a.Budget != *b.Budget) {
		return false
	}
	a.Budget, b.Budget = nil, nil
	return a == b
}

// fresh decodes a response into a new T: decoding into a used value would
// keep the limits the response leaves out.
func fresh[T any](h *harness, w *httptest.ResponseRecorder, status int) T {
	h.t.Helper()
	var v T
	h.expect(w, status, &v)
	return v
}

// rawObject decodes a response body into its members.
func rawObject(t *testing.T, body []byte) map[string]json.RawMessage {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("decode %s: %v", body, err)
	}
	return m
}

// TestKeyLimitsAPI round-trips every limit of a key through POST, GET,
// PATCH and PUT, checks that each can be cleared, and that the JSON is
// flat.
func TestKeyLimitsAPI(t *testing.T) {
	forEachStore(t, func(t *testing.T, dialect string) {
		h := newHarness(t, dialect, nil)
		var k store.Key
		w := h.do("POST", "/admin/keys", `{"name":"ci",`+allLimits+`}`)
		k = fresh[store.Key](h, w, http.StatusCreated)
		if !sameLimits(k.Limits, wantAllLimits) {
			t.Fatalf("created %+v", k.Limits)
		}
		m := rawObject(t, w.Body.Bytes())
		if string(m["rpm"]) != "100" || string(m["max_parallel"]) != "4" || !strings.Contains(string(m["budget"]), `"period":"week"`) {
			t.Fatalf("not flat: %s", w.Body)
		}
		k = fresh[store.Key](h, h.do("GET", "/admin/keys/"+k.ID, ""), http.StatusOK)
		if !sameLimits(k.Limits, wantAllLimits) {
			t.Fatalf("get %+v", k.Limits)
		}

		// A PATCH without limits keeps them; one limit changes alone.
		k = fresh[store.Key](h, h.do("PATCH", "/admin/keys/"+k.ID, `{"name":"ci2","tpm":300}`), http.StatusOK)
		want := wantAllLimits
		want.TPM = 300
		if k.Name != "ci2" || !sameLimits(k.Limits, want) {
			t.Fatalf("patch tpm: %+v", k.Limits)
		}
		// 0 and null clear; budget is replaced whole and null removes it.
		k = fresh[store.Key](h, h.do("PATCH", "/admin/keys/"+k.ID, `{"rpm":0,"max_parallel":null,"fail_mode":null,"budget":{"tokens":5}}`), http.StatusOK)
		want = llm.Limits{TPM: 300, Budget: &llm.Budget{Tokens: 5}}
		if !sameLimits(k.Limits, want) {
			t.Fatalf("clear: %+v", k.Limits)
		}
		k = fresh[store.Key](h, h.do("PATCH", "/admin/keys/"+k.ID, `{"budget":null}`), http.StatusOK)
		k = fresh[store.Key](h, h.do("GET", "/admin/keys/"+k.ID, ""), http.StatusOK)
		if !sameLimits(k.Limits, llm.Limits{TPM: 300}) {
			t.Fatalf("budget null: %+v", k.Limits)
		}
		// An empty budget is no budget.
		k = fresh[store.Key](h, h.do("PATCH", "/admin/keys/"+k.ID, `{"budget":{}}`), http.StatusOK)
		if k.Budget != nil {
			t.Fatalf("empty budget kept: %+v", k.Budget)
		}
		// PUT replaces: limits not given are gone.
		k = fresh[store.Key](h, h.do("PUT", "/admin/keys/"+k.ID, `{"name":"ci3","rpm":7}`), http.StatusOK)
		if !sameLimits(k.Limits, llm.Limits{RPM: 7}) {
			t.Fatalf("put: %+v", k.Limits)
		}
		w = h.do("PUT", "/admin/keys/"+k.ID, `{"name":"ci3"}`)
		k = fresh[store.Key](h, w, http.StatusOK)
		m = rawObject(t, w.Body.Bytes())
		for _, f := range []string{"rpm", "tpm", "max_parallel", "fail_mode", "budget"} {
			if _, ok := m[f]; ok {
				t.Fatalf("cleared %s still shown: %s", f, w.Body)
			}
		}
		k = fresh[store.Key](h, h.do("PUT", "/admin/keys/"+k.ID, `{"name":"ci3",`+allLimits+`}`), http.StatusOK)
		snap, err := h.store.LoadSnapshot(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, sk := range snap.Keys {
			if sk.ID == k.ID && !sameLimits(sk.Limits, wantAllLimits) {
				t.Fatalf("snapshot key limits %+v", sk.Limits)
			}
		}
	})
}

// limitAbuse are bodies (limits at the top level) that must be refused
// with a 400 naming the field (prefix "" for decode errors with no name).
var limitAbuse = []struct{ body, param string }{
	{`"rpm":-1`, "rpm"},
	{`"rpm":100000001`, "rpm"},
	{`"tpm":-5`, "tpm"},
	{`"tpm":1e9`, "tpm"},
	{`"max_parallel":1000001`, "max_parallel"},
	{`"max_parallel":1.5`, "max_parallel"},
	{`"rpm":"100"`, "rpm"},
	{`"rpm":"NaN"`, "rpm"},
	{`"rpm":true`, "rpm"},
	{`"rpm":[1]`, "rpm"},
	{`"rpm":99999999999999999999999`, "rpm"},
	{`"rpm":` + strings.Repeat("9", 10000), "rpm"},
	{`"budget":{"usd":0.` + strings.Repeat("1", 10000) + `e400}`, "budget"},
	{`"fail_mode":"sometimes"`, "fail_mode"},
	{`"fail_mode":1`, "fail_mode"},
	{`"fail_mode":"` + strings.Repeat("x", 10000) + `"`, "fail_mode"},
	{`"budget":{"usd":-1}`, "budget.usd"},
	{`"budget":{"usd":1e308}`, "budget.usd"},
	{`"budget":{"usd":1e400}`, "budget"},
	{`"budget":{"usd":"NaN"}`, "budget"},
	{`"budget":{"usd":"Infinity"}`, "budget"},
	{`"budget":{"usd":1000000001}`, "budget.usd"},
	{`"budget":{"tokens":-1}`, "budget.tokens"},
	{`"budget":{"tokens":1000000000001}`, "budget.tokens"},
	{`"budget":{"tokens":0.5}`, "budget"},
	{`"budget":{"period":"year","usd":1}`, "budget.period"},
	{`"budget":{"period":"` + strings.Repeat("d", 10000) + `","usd":1}`, "budget.period"},
	{`"budget":{"fail_mode":"maybe","usd":1}`, "budget.fail_mode"},
	{`"budget":{"usd":1,"extra":1}`, ""},
	{`"budget":{"usd":1,"usd":2}`, "usd"},
	{`"budget":[1]`, "budget"},
	{`"budget":"10"`, "budget"},
	{`"budget":5`, "budget"},
}

// TestLimitsValidation sends every abuse body to the create and patch of
// keys and owners and the create of models; each must be a 400 in the
// error shape naming the field, and nothing must change.
func TestLimitsValidation(t *testing.T) {
	forEachStore(t, func(t *testing.T, dialect string) {
		h := newHarness(t, dialect, nil)
		h.expect(h.do("POST", "/admin/providers", `{"name":"up","type":"openai-compatible","base_url":"http://127.0.0.1:8000/v1"}`), http.StatusCreated, nil)
		k := fresh[store.Key](h, h.do("POST", "/admin/keys", `{"name":"ci","rpm":5}`), http.StatusCreated)
		m := fresh[store.Model](h, h.do("POST", "/admin/models", `{"name":"m","deployments":[{"provider":"up","model":"x"}],"tpm":9}`), http.StatusCreated)
		h.expect(h.do("PUT", "/admin/owners/team-a", `{"rpm":3}`), http.StatusCreated, nil)
		dep := `"deployments":[{"provider":"up","model":"x"}]`
		for _, c := range limitAbuse {
			for _, req := range []struct{ method, path, body string }{
				{"POST", "/admin/keys", `{"name":"bad",` + c.body + `}`},
				{"PATCH", "/admin/keys/" + k.ID, `{` + c.body + `}`},
				{"PUT", "/admin/keys/" + k.ID, `{"name":"bad",` + c.body + `}`},
				{"POST", "/admin/models", `{"name":"bad",` + dep + `,` + c.body + `}`},
				{"PATCH", "/admin/models/" + m.ID, `{` + c.body + `}`},
				{"PUT", "/admin/owners/team-a", `{` + c.body + `}`},
				{"PUT", "/admin/owners/team-b", `{` + c.body + `}`},
				{"PATCH", "/admin/owners/team-a", `{` + c.body + `}`},
			} {
				w := h.do(req.method, req.path, req.body)
				if w.Code != http.StatusBadRequest {
					t.Fatalf("%s %s %.80s = %d %s", req.method, req.path, c.body, w.Code, w.Body)
				}
				h.expectError(w, http.StatusBadRequest, c.param)
			}
		}
		var k2 store.Key
		h.expect(h.do("GET", "/admin/keys/"+k.ID, ""), http.StatusOK, &k2)
		if k2.Name != "ci" || !sameLimits(k2.Limits, llm.Limits{RPM: 5}) || k2.Revision != k.Revision {
			t.Fatalf("key changed by refused writes: %+v", k2)
		}
		o := fresh[store.Owner](h, h.do("GET", "/admin/owners/team-a", ""), http.StatusOK)
		if !sameLimits(o.Limits, llm.Limits{RPM: 3}) {
			t.Fatalf("owner changed by refused writes: %+v", o)
		}
		h.expectError(h.do("GET", "/admin/owners/team-b", ""), http.StatusNotFound, "")
		var list struct{ Total int }
		h.expect(h.do("GET", "/admin/models", ""), http.StatusOK, &list)
		if list.Total != 1 {
			t.Fatalf("%d models", list.Total)
		}
	})
}

// TestModelLimitsAPI covers a model's own limits and its deployments'.
func TestModelLimitsAPI(t *testing.T) {
	forEachStore(t, func(t *testing.T, dialect string) {
		h := newHarness(t, dialect, nil)
		h.expect(h.do("POST", "/admin/providers", `{"name":"up","type":"openai-compatible","base_url":"http://127.0.0.1:8000/v1"}`), http.StatusCreated, nil)
		var m store.Model
		w := h.do("POST", "/admin/models", `{"name":"m",`+allLimits+`,"deployments":[{"provider":"up","model":"a","rpm":60,"tpm":90000},{"provider":"up","model":"b","max_parallel":2,"budget":{"usd":3,"period":"day"}}]}`)
		m = fresh[store.Model](h, w, http.StatusCreated)
		if !sameLimits(m.Limits, wantAllLimits) || m.Deployments[0].RPM != 60 || m.Deployments[0].TPM != 90000 ||
			m.Deployments[1].MaxParallel != 2 || m.Deployments[1].Budget == nil || m.Deployments[1].Budget.Period != llm.PeriodDay {
			t.Fatalf("created %s", w.Body)
		}
		m = fresh[store.Model](h, h.do("GET", "/admin/models/m", ""), http.StatusOK)
		if !sameLimits(m.Limits, wantAllLimits) || m.Deployments[0].TPM != 90000 {
			t.Fatalf("get %+v", m)
		}
		// PATCH of limits keeps the deployments (and their ids) and vice versa.
		ids := []string{m.Deployments[0].ID, m.Deployments[1].ID}
		m = fresh[store.Model](h, h.do("PATCH", "/admin/models/m", `{"rpm":0,"budget":null}`), http.StatusOK)
		want := wantAllLimits
		want.RPM, want.Budget = 0, nil
		if !sameLimits(m.Limits, want) || m.Deployments[0].ID != ids[0] || m.Deployments[0].TPM != 90000 {
			t.Fatalf("patch limits %+v", m)
		}
		m = fresh[store.Model](h, h.do("PATCH", "/admin/models/m", `{"deployments":[{"provider":"up","model":"a","tpm":5}]}`), http.StatusOK)
		if !sameLimits(m.Limits, want) || len(m.Deployments) != 1 || m.Deployments[0].ID != ids[0] || m.Deployments[0].TPM != 5 || m.Deployments[0].RPM != 0 {
			t.Fatalf("patch deployments %+v", m)
		}
		snap, err := h.store.LoadSnapshot(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if sm := snap.Models["m"]; sm == nil || !sameLimits(sm.Limits, want) || sm.Deployments[0].TPM != 5 {
			t.Fatalf("snapshot %+v", sm)
		}
		// A model name with a '/' is addressable escaped.
		h.expect(h.do("POST", "/admin/models", `{"name":"org/m","rpm":3,"deployments":[{"provider":"up","model":"a"}]}`), http.StatusCreated, nil)
		if m2 := fresh[store.Model](h, h.do("GET", "/admin/models/org%2Fm", ""), http.StatusOK); m2.Name != "org/m" || m2.RPM != 3 {
			t.Fatalf("org/m: %+v", m2)
		}
		// Deployment limits are validated and named by position.
		for _, c := range []struct{ dep, param string }{
			{`"tpm":-1`, "deployments[2].tpm"},
			{`"rpm":100000001`, "deployments[2].rpm"},
			{`"max_parallel":-3`, "deployments[2].max_parallel"},
			{`"fail_mode":"x"`, "deployments[2].fail_mode"},
			{`"budget":{"usd":1e308}`, "deployments[2].budget.usd"},
			{`"budget":{"period":"hour","usd":1}`, "deployments[2].budget.period"},
			{`"tpm":"5"`, "deployments"},
		} {
			body := `{"deployments":[{"provider":"up","model":"a"},{"provider":"up","model":"b"},{"provider":"up","model":"c",` + c.dep + `}]}`
			e := h.expectError(h.do("PATCH", "/admin/models/m", body), http.StatusBadRequest, c.param)
			if c.param != "deployments" && *e.Error.Param != c.param {
				t.Fatalf("%s: param %s", c.dep, *e.Error.Param)
			}
		}
	})
}

// TestOwnersAPI covers /admin/owners: PUT creates (201) and replaces
// (200), PATCH, GET, the list, DELETE, name checks, and that deleting an
// owner leaves its keys alone.
func TestOwnersAPI(t *testing.T) {
	forEachStore(t, func(t *testing.T, dialect string) {
		h := newHarness(t, dialect, nil)
		var o store.Owner
		w := h.do("PUT", "/admin/owners/team-a", `{`+allLimits+`}`)
		o = fresh[store.Owner](h, w, http.StatusCreated)
		if o.Name != "team-a" || !sameLimits(o.Limits, wantAllLimits) || o.Revision == 0 || o.CreatedAt.IsZero() {
			t.Fatalf("created %s", w.Body)
		}
		if m := rawObject(t, w.Body.Bytes()); string(m["tpm"]) != "20000" {
			t.Fatalf("not flat: %s", w.Body)
		}
		rev := o.Revision
		o = fresh[store.Owner](h, h.do("PUT", "/admin/owners/team-a", `{"name":"team-a","rpm":9}`), http.StatusOK)
		if !sameLimits(o.Limits, llm.Limits{RPM: 9}) || o.Revision <= rev {
			t.Fatalf("replaced %+v", o)
		}
		o = fresh[store.Owner](h, h.do("PATCH", "/admin/owners/team-a", `{"budget":{"usd":1}}`), http.StatusOK)
		o = fresh[store.Owner](h, h.do("GET", "/admin/owners/team-a", ""), http.StatusOK)
		if !sameLimits(o.Limits, llm.Limits{RPM: 9, Budget: &llm.Budget{USD: 1}}) {
			t.Fatalf("patched %+v", o)
		}
		o = fresh[store.Owner](h, h.do("PATCH", "/admin/owners/team-a", `{"rpm":null,"budget":null}`), http.StatusOK)
		if !o.Limits.IsZero() {
			t.Fatalf("cleared %+v", o)
		}
		// Names: with spaces like a key's owner, escaped in the path.
		o = fresh[store.Owner](h, h.do("PUT", "/admin/owners/team%20b", `{"tpm":10}`), http.StatusCreated)
		if o.Name != "team b" {
			t.Fatalf("name %q", o.Name)
		}
		// A '/' in a name is sent escaped and is one path segment.
		o = fresh[store.Owner](h, h.do("PUT", "/admin/owners/ml%2Fteam%20c", `{"rpm":2}`), http.StatusCreated)
		if o.Name != "ml/team c" {
			t.Fatalf("name %q", o.Name)
		}
		o = fresh[store.Owner](h, h.do("GET", "/admin/owners/ml%2Fteam%20c", ""), http.StatusOK)
		if o.Name != "ml/team c" || o.RPM != 2 {
			t.Fatalf("get %+v", o)
		}
		h.expectError(h.do("GET", "/admin/owners/ml/team%20c", ""), http.StatusNotFound, "")
		h.expect(h.do("DELETE", "/admin/owners/ml%2Fteam%20c", ""), http.StatusNoContent, nil)
		h.expect(h.do("PUT", "/admin/owners/a-"+strings.Repeat("x", 126), `{}`), http.StatusCreated, nil)
		h.expectError(h.do("PUT", "/admin/owners/a-"+strings.Repeat("x", 127), `{}`), http.StatusBadRequest, "name")
		h.expectError(h.do("PUT", "/admin/owners/"+strings.Repeat("x", 10000), `{}`), http.StatusBadRequest, "name")
		h.expectError(h.do("GET", "/admin/owners/"+strings.Repeat("x", 10000), ""), http.StatusNotFound, "")
		h.expectError(h.do("PATCH", "/admin/owners/"+strings.Repeat("x", 10000), `{"rpm":1}`), http.StatusNotFound, "")
		h.expectError(h.do("DELETE", "/admin/owners/"+strings.Repeat("x", 10000), ""), http.StatusNotFound, "")
		h.expectError(h.do("PUT", "/admin/owners/a%00b", `{}`), http.StatusBadRequest, "name")
		h.expectError(h.do("PUT", "/admin/owners/a%0Ab", `{}`), http.StatusBadRequest, "name")
		h.expectError(h.do("PUT", "/admin/owners/%FF", `{}`), http.StatusBadRequest, "name")
		h.expectError(h.do("PUT", "/admin/owners/team-c", `{"name":"team-d"}`), http.StatusBadRequest, "name")
		h.expectError(h.do("PATCH", "/admin/owners/team-a", `{"name":"team-d"}`), http.StatusBadRequest, "name")
		h.expectError(h.do("PUT", "/admin/owners/team-c", `{"name":"`+strings.Repeat("n", 10000)+`"}`), http.StatusBadRequest, "name")
		h.expectError(h.do("PUT", "/admin/owners/team-c", `{"nope":1}`), http.StatusBadRequest, "nope")
		h.expectError(h.do("POST", "/admin/keys", `{"name":"k","owner":"`+strings.Repeat("o", 10000)+`"}`), http.StatusBadRequest, "owner")
		h.expectError(h.do("PATCH", "/admin/owners/ghost", `{"rpm":1}`), http.StatusNotFound, "")
		h.expectError(h.do("POST", "/admin/owners", `{"name":"x"}`), http.StatusNotFound, "")
		h.expect(h.do("PATCH", "/admin/owners/team-a", `{"name":"team-a","rpm":2}`), http.StatusOK, nil)

		var list struct {
			Items []store.Owner `json:"items"`
			Total int           `json:"total"`
		}
		h.expect(h.do("GET", "/admin/owners?page_size=2", ""), http.StatusOK, &list)
		if list.Total != 3 || len(list.Items) != 2 || list.Items[0].Name != "a-"+strings.Repeat("x", 126) {
			t.Fatalf("list %+v", list)
		}

		// Deleting an owner leaves the keys that name it.
		k := fresh[store.Key](h, h.do("POST", "/admin/keys", `{"name":"k","owner":"team-a"}`), http.StatusCreated)
		h.expect(h.do("DELETE", "/admin/owners/team-a", ""), http.StatusNoContent, nil)
		h.expectError(h.do("GET", "/admin/owners/team-a", ""), http.StatusNotFound, "")
		h.expectError(h.do("DELETE", "/admin/owners/team-a", ""), http.StatusNotFound, "")
		k = fresh[store.Key](h, h.do("GET", "/admin/keys/"+k.ID, ""), http.StatusOK)
		if k.Owner != "team-a" || k.Disabled {
			t.Fatalf("key after owner delete: %+v", k)
		}
	})
}

// fakeQuotas records Report calls and answers from fn.
type fakeQuotas struct {
	mu    sync.Mutex
	calls []string
	fn    func(scope, id string) (any, error)
}

func (f *fakeQuotas) Report(_ context.Context, scope, id string) (any, error) {
	f.mu.Lock()
	f.calls = append(f.calls, scope+":"+id)
	f.mu.Unlock()
	return f.fn(scope, id)
}

// TestQuotaOnGet checks that GET of one key, owner or model adds "quota"
// from Options.Quotas, that a failing reporter shows only "quota_error"
// with a 200, that nil adds nothing and that lists never call it.
func TestQuotaOnGet(t *testing.T) {
	secret := "redis://user:hunter2@10.0.0.1:6379 refused"
	fq := &fakeQuotas{fn: func(scope, id string) (any, error) {
		switch id {
		case "broken":
			return nil, errors.New(secret)
		case "none":
			return nil, nil
		}
		return map[string]any{"scope": scope, "id": id, "rpm": map[string]int{"limit": 5, "remaining": 4}}, nil
	}}
	h := newHarness(t, store.DialectSQLite, func(o *Options) { o.Quotas = fq })
	h.expect(h.do("POST", "/admin/providers", `{"name":"up","type":"openai-compatible","base_url":"http://127.0.0.1:8000/v1"}`), http.StatusCreated, nil)
	k := fresh[store.Key](h, h.do("POST", "/admin/keys", `{"name":"ci","rpm":5}`), http.StatusCreated)
	m := fresh[store.Model](h, h.do("POST", "/admin/models", `{"name":"m","deployments":[{"provider":"up","model":"x"}]}`), http.StatusCreated)
	for _, n := range []string{"team-a", "broken", "none"} {
		h.expect(h.do("PUT", "/admin/owners/"+n, `{"rpm":1}`), http.StatusCreated, nil)
	}
	fq.calls = nil

	type withQuota struct {
		Name       string          `json:"name"`
		RPM        int64           `json:"rpm"`
		Quota      json.RawMessage `json:"quota"`
		QuotaError *string         `json:"quota_error"`
	}
	for _, c := range []struct{ path, scope, id string }{
		{"/admin/keys/" + k.ID, "key", k.ID},
		{"/admin/owners/team-a", "owner", "team-a"},
		{"/admin/models/" + m.ID, "model", "m"},
		{"/admin/models/m", "model", "m"},
	} {
		var got withQuota
		h.expect(h.do("GET", c.path, ""), http.StatusOK, &got)
		want := fmt.Sprintf(`{"id":%q,"rpm":{"limit":5,"remaining":4},"scope":%q}`, c.id, c.scope)
		if string(got.Quota) != want || got.QuotaError != nil || got.Name == "" {
			t.Fatalf("GET %s = %+v (quota %s)", c.path, got, got.Quota)
		}
	}
	w := h.do("GET", "/admin/owners/broken", "")
	var got withQuota
	h.expect(w, http.StatusOK, &got)
	if got.QuotaError == nil || *got.QuotaError != "quota store unavailable" || got.Quota != nil || got.Name != "broken" || got.RPM != 1 {
		t.Fatalf("failing reporter: %s", w.Body)
	}
	if strings.Contains(w.Body.String(), "hunter2") || strings.Contains(w.Body.String(), "refused") {
		t.Fatalf("error text leaked: %s", w.Body)
	}
	w = h.do("GET", "/admin/owners/none", "")
	m2 := rawObject(t, w.Body.Bytes())
	if _, ok := m2["quota"]; ok {
		t.Fatalf("nil report shown: %s", w.Body)
	}
	if _, ok := m2["quota_error"]; ok {
		t.Fatalf("nil report shown: %s", w.Body)
	}
	n := len(fq.calls)
	for _, p := range []string{"/admin/keys", "/admin/owners", "/admin/models", "/admin/providers"} {
		h.expect(h.do("GET", p, ""), http.StatusOK, nil)
	}
	h.expect(h.do("PATCH", "/admin/keys/"+k.ID, `{"rpm":6}`), http.StatusOK, nil)
	h.expect(h.do("GET", "/admin/providers/up", ""), http.StatusOK, nil)
	if len(fq.calls) != n {
		t.Fatalf("lists, writes or providers called Report: %v", fq.calls[n:])
	}
	h.expectError(h.do("GET", "/admin/keys/key_nope", ""), http.StatusNotFound, "")
	if len(fq.calls) != n {
		t.Fatalf("a 404 called Report: %v", fq.calls[n:])
	}

	// Without a reporter, no quota member at all.
	h2 := newHarness(t, store.DialectSQLite, nil)
	var k2 store.Key
	h2.expect(h2.do("POST", "/admin/keys", `{"name":"ci"}`), http.StatusCreated, &k2)
	if m := rawObject(t, h2.do("GET", "/admin/keys/"+k2.ID, "").Body.Bytes()); m["quota"] != nil || m["quota_error"] != nil {
		t.Fatalf("quota without reporter: %v", m)
	}
}

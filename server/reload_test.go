package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestReloadUnderLoad changes the model and provider configuration through
// the admin API while requests run: every attempt's end reaches the
// balancer (nothing stays in flight), the deployment kept throughout keeps
// its health, and the health of deleted deployments is dropped.
func TestReloadUnderLoad(t *testing.T) {
	upstream := newUpstream(t)
	const adminKey = "0123456789abcdef0123456789abcdef-load"
	r := serveTest(t, Config{AdminKey: adminKey, DataDir: t.TempDir(), AccessLog: "off", ShutdownTimeout: 5 * time.Second})
	admin := func(method, path, body string, out any) {
		t.Helper()
		code, b := call(t, method, r.admin+path, body, http.Header{"X-Api-Key": {adminKey}})
		if code/100 != 2 {
			t.Fatalf("%s %s: %d %s", method, path, code, b)
		}
		if out != nil {
			if err := json.Unmarshal(b, out); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, p := range []string{"a", "b"} {
		admin("POST", "/admin/providers", `{"name":"`+p+`","type":"openai-compatible","base_url":"`+upstream+`/v1","api_key":"sk-upstream"}`, nil)
	}
	type model struct {
		ID          string `json:"id"`
		Deployments []struct {
			ID       string `json:"id"`
			Provider string `json:"provider"`
		} `json:"deployments"`
	}
	var m model
	admin("POST", "/admin/models", `{"name":"m","deployments":[{"provider":"a","model":"real"}]}`, &m)
	stable := m.Deployments[0].ID
	var key map[string]any
	admin("POST", "/admin/keys", `{"name":"k"}`, &key)
	secret := key["key"].(string)

	stop := make(chan struct{})
	var ok, failed atomic.Int64
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				code, _ := call(t, "POST", r.proxy+"/v1/chat/completions", `{"model":"m","messages":[{"role":"user","content":"hi"}]}`, http.Header{"Authorization": {"Bearer " + secret}})
				if code == 200 {
					ok.Add(1)
				} else {
					failed.Add(1)
				}
			}
		})
	}
	var deleted []string
	for i := range 20 {
		// Each round replaces the second deployment (a new id) and changes
		// provider b, so both pruning and provider rebuilds happen under load.
		var got model
		admin("PUT", "/admin/models/"+m.ID, fmt.Sprintf(`{"name":"m","deployments":[{"id":%q,"provider":"a","model":"real"},{"provider":"b","model":"real-%d"}]}`, stable, i), &got)
		for _, d := range got.Deployments {
			if d.ID != stable {
				deleted = append(deleted, d.ID)
			}
		}
		admin("PATCH", "/admin/providers/b", fmt.Sprintf(`{"headers":{"X-Round":"%d"}}`, i), nil)
		time.Sleep(5 * time.Millisecond)
	}
	admin("PUT", "/admin/models/"+m.ID, fmt.Sprintf(`{"name":"m","deployments":[{"id":%q,"provider":"a","model":"real"}]}`, stable), nil)
	close(stop)
	wg.Wait()
	if failed.Load() != 0 || ok.Load() == 0 {
		t.Fatalf("%d requests failed, %d succeeded across reloads", failed.Load(), ok.Load())
	}
	var health struct {
		Items []struct {
			Deployment string `json:"deployment"`
			InFlight   int64  `json:"in_flight"`
			Successes  int64  `json:"successes"`
		} `json:"items"`
	}
	admin("GET", "/admin/health", "", &health)
	rows := health.Items
	if len(rows) != 1 || rows[0].Deployment != stable || rows[0].InFlight != 0 || rows[0].Successes == 0 {
		t.Fatalf("health %+v: want only %s, nothing in flight", rows, stable)
	}
	var deletedUsed int
	for _, id := range deleted {
		st := r.srv.balancer.Status(id)
		if st.Successes != 0 || st.InFlight != 0 {
			t.Errorf("deleted deployment %s still has state: %+v", id, st)
		}
		deletedUsed++
	}
	if deletedUsed != 20 {
		t.Fatalf("%d deployments replaced, want 20", deletedUsed)
	}
}

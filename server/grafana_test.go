package server

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestGrafanaDashboardMatchesMetrics checks that every sluice_* series the
// shipped Grafana dashboard queries is one the server exports.
func TestGrafanaDashboardMatchesMetrics(t *testing.T) {
	raw, err := os.ReadFile("../deploy/grafana/sluice.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("dashboard is not valid JSON: %v", err)
	}
	const adminKey = "0123456789abcdef0123456789abcdef-graf"
	r := serveTest(t, Config{AdminKey: adminKey, DataDir: t.TempDir(), AccessLog: "off"})
	// Traffic so every labelled vector has a sample: a chat that retries
	// past a dead deployment, and a stream (for time to first token).
	up := sseOrJSONUpstream(t)
	adm := r.admin
	admin := func(path, body string) []byte {
		code, b := call(t, "POST", adm+path, body, http.Header{"X-Api-Key": {adminKey}})
		if code != 201 {
			t.Fatalf("%s: %d %s", path, code, b)
		}
		return b
	}
	admin("/admin/providers", `{"name":"dead","type":"openai-compatible","base_url":"http://127.0.0.1:1/v1"}`)
	admin("/admin/providers", `{"name":"up","type":"openai-compatible","api_key":"sk-provider-secret-graf","base_url":"`+up+`/v1"}`)
	admin("/admin/models", `{"name":"m","deployments":[{"provider":"dead","model":"x","weight":1000000},{"provider":"up","model":"x","weight":1,"input_price_per_mtok":1,"output_price_per_mtok":1}]}`)
	var key struct{ Key string }
	_ = json.Unmarshal(admin("/admin/keys", `{"name":"k"}`), &key)
	auth := http.Header{"Authorization": {"Bearer " + key.Key}}
	for _, body := range []string{`{"model":"m"}`, `{"model":"m","stream":true}`} {
		if code, b := call(t, "POST", r.proxy+"/v1/chat/completions", body, auth); code != 200 {
			t.Fatalf("chat %s: %d %s", body, code, b)
		}
	}
	req, _ := http.NewRequest("GET", adm+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+adminKey)
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	exported := string(body)
	// The balancer's per-deployment gauges, labelled by configured names
	// only: the dead deployment failed once, the other is up.
	for _, re := range []string{
		`sluice_deployment_up\{deployment="dep_[^"]+",model="m",provider="up"\} 1\n`,
		`sluice_deployment_up\{deployment="dep_[^"]+",model="m",provider="dead"\} 1\n`,
		`sluice_deployment_state\{deployment="dep_[^"]+",model="m",provider="up",state="healthy"\} 1\n`,
		`sluice_deployment_error_rate\{deployment="dep_[^"]+",model="m",provider="dead"\} 0\.\d*[1-9]\d*\n`,
		`sluice_deployment_cooldown_seconds\{deployment="dep_[^"]+",model="m",provider="dead"\} 0\n`,
	} {
		if !regexp.MustCompile(re).MatchString(exported) {
			t.Errorf("/metrics has no %s in:\n%s", re, regexp.MustCompile(`(?m)^sluice_deployment_.*$`).FindAllString(exported, -1))
		}
	}
	for _, secret := range []string{key.Key, adminKey, "sk-provider-secret-graf"} {
		if strings.Contains(exported, secret) {
			t.Errorf("/metrics shows a secret")
		}
	}
	names := regexp.MustCompile(`sluice_[a-z_]+`)
	for _, p := range dash.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			for _, n := range names.FindAllString(tg.Expr, -1) {
				// Vectors with no sample yet still export HELP/TYPE lines.
				base := strings.TrimSuffix(n, "_bucket")
				if !strings.Contains(exported, "# TYPE "+base+" ") {
					t.Errorf("panel %q queries %s, which /metrics does not export", p.Title, n)
				}
			}
		}
	}
}

// sseOrJSONUpstream answers chats as JSON, or as SSE when the body streams.
func sseOrJSONUpstream(t *testing.T) string {
	t.Helper()
	l := listen(t)
	s := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if strings.Contains(string(b), `"stream":true`) {
			w.Header().Set("Content-Type", "text/event-stream")
			io.WriteString(w, "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"}}]}\n\n")
			io.WriteString(w, "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":2,\"completion_tokens\":1}}\n\ndata: [DONE]\n\n")
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"choices":[{"index":0,"message":{"content":"hi"}}],"usage":{"prompt_tokens":2,"completion_tokens":1,"prompt_tokens_details":{"cached_tokens":1}}}`)
	})}
	go s.Serve(l)
	t.Cleanup(func() { s.Close() })
	return "http://" + l.Addr().String()
}

package server

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// BenchmarkServerChat drives the whole server (auth, relay, metrics, usage
// batched into SQLite, access log off) over loopback HTTP, for profiling
// with -cpuprofile. The upstream is an in-process HTTP server.
func BenchmarkServerChat(b *testing.B) {
	upstream := newUpstreamTB(b)
	const adminKey = "0123456789abcdef0123456789abcdef-bench"
	r := serveTest(b, Config{AdminKey: adminKey, DataDir: b.TempDir(), AccessLog: "off"})
	adm := r.admin
	post := func(path, body string) []byte {
		req, _ := http.NewRequest("POST", adm+path, strings.NewReader(body))
		req.Header.Set("X-Api-Key", adminKey)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		return out
	}
	post("/admin/providers", `{"name":"up","type":"openai-compatible","base_url":"`+upstream+`/v1","api_key":"sk-upstream"}`)
	post("/admin/models", `{"name":"m","deployments":[{"provider":"up","model":"real","input_price_per_mtok":1,"output_price_per_mtok":1}]}`)
	var key struct{ Key string }
	_ = json.Unmarshal(post("/admin/keys", `{"name":"k"}`), &key)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}, Timeout: 10 * time.Second}
	url := r.proxy + "/v1/chat/completions"
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest("POST", url, strings.NewReader(`{"model":"m","messages":[{"role":"user","content":"Say hello"}]}`))
			req.Header.Set("Authorization", "Bearer "+key.Key)
			resp, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	})
}

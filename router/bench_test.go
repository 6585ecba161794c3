package router

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

const benchChatResponse = `{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"up-p0","choices":[{"index":0,"message":{"role":"assistant","content":"Hello from the mock LLM!"},"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":6,"total_tokens":15}}`

const benchChatRequest = `{"model":"m","messages":[{"role":"user","content":"Say hello"}]}`

// BenchmarkChatDirectVsProxy measures a non-streamed chat straight to an
// upstream and through the proxy, side by side, over real loopback HTTP.
// The difference per op is the gateway's cost (both hops included).
func BenchmarkChatDirectVsProxy(b *testing.B) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, benchChatResponse)
	}))
	defer up.Close()
	srv, _ := newTestProxy(b, 0, up.URL)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
	run := func(b *testing.B, url string) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				req, _ := http.NewRequest("POST", url, strings.NewReader(benchChatRequest))
				req.Header.Set("Authorization", "Bearer "+testKey)
				resp, err := client.Do(req)
				if err != nil {
					b.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					b.Errorf("status %d", resp.StatusCode)
					return
				}
			}
		})
	}
	b.Run("direct", func(b *testing.B) { run(b, up.URL+"/v1/chat/completions") })
	b.Run("sluice", func(b *testing.B) { run(b, srv.URL+"/v1/chat/completions") })
}

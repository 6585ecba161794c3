package router

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/sluice-ai/sluice/llm"
)

// BenchmarkStreamRelay measures a streamed chat of 50 events through the
// proxy over real loopback HTTP; allocs/op divided by the event count shows
// the per-event cost of the SSE relay.
func BenchmarkStreamRelay(b *testing.B) {
	var sb strings.Builder
	for i := 0; i < 50; i++ {
		fmt.Fprintf(&sb, "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"token %d \"}}]}\n\n", i)
	}
	sb.WriteString("data: {\"id\":\"c\",\"choices\":[],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":50}}\n\ndata: [DONE]\n\n")
	events := sb.String()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, events)
	}))
	defer up.Close()
	srv, _ := newTestProxy(b, 0, up.URL)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
	body := `{"model":"m","stream":true,"messages":[{"role":"user","content":"Say hello"}]}`
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest("POST", srv.URL+"/v1/chat/completions", strings.NewReader(body))
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

// BenchmarkStreamRelayLanes measures a streamed answer of 50 text deltas
// through each lane: OpenAI to OpenAI and Anthropic to Anthropic (raw,
// relayed as sent with usage sniffed), OpenAI client on an Anthropic
// upstream and Anthropic client on an OpenAI upstream (translated both
// ways). Compare with BenchmarkStreamRelay (the OpenAI raw lane alone).
func BenchmarkStreamRelayLanes(b *testing.B) {
	openaiUp, anthropicUp := streamUpstreams(50)
	defer openaiUp.Close()
	defer anthropicUp.Close()
	const chat = `{"model":"m","stream":true,"messages":[{"role":"user","content":"Say hello"}]}`
	const messages = `{"model":"m","max_tokens":256,"stream":true,"messages":[{"role":"user","content":"Say hello"}]}`
	for _, lane := range []struct {
		name, path, body, up string
		typ                  llm.ProviderType
	}{
		{"raw/openai", "/v1/chat/completions", chat, openaiUp.URL, llm.ProviderOpenAICompatible},
		{"raw/anthropic", "/v1/messages", messages, anthropicUp.URL, llm.ProviderAnthropic},
		{"translated/openai-client-anthropic-upstream", "/v1/chat/completions", chat, anthropicUp.URL, llm.ProviderAnthropic},
		{"translated/anthropic-client-openai-upstream", "/v1/messages", messages, openaiUp.URL, llm.ProviderOpenAICompatible},
	} {
		b.Run(lane.name, func(b *testing.B) {
			srv, _ := newTestProxyOf(b, lane.typ, nil, 0, lane.up)
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					req, _ := http.NewRequest("POST", srv.URL+lane.path, strings.NewReader(lane.body))
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
		})
	}
}

// BenchmarkStreamRelayEvents measures one stream of n text deltas at a
// time (no parallelism) through the OpenAI raw lane and the translated
// lane (OpenAI client, Anthropic upstream), for n = 10 and n = 1000: the
// difference between the two divided by 990 is the per-event cost (time,
// bytes, allocations) of the relay; the n = 10 figure is mostly the
// per-stream cost.
func BenchmarkStreamRelayEvents(b *testing.B) {
	for _, n := range []int{10, 1000} {
		openaiUp, anthropicUp := streamUpstreams(n)
		const chat = `{"model":"m","stream":true,"messages":[{"role":"user","content":"Say hello"}]}`
		for _, lane := range []struct {
			name, up string
			typ      llm.ProviderType
		}{
			{"raw", openaiUp.URL, llm.ProviderOpenAICompatible},
			{"translated", anthropicUp.URL, llm.ProviderAnthropic},
		} {
			b.Run(fmt.Sprintf("%s/events=%d", lane.name, n), func(b *testing.B) {
				srv, _ := newTestProxyOf(b, lane.typ, nil, 0, lane.up)
				client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
				b.ReportAllocs()
				for i := 0; i < b.N; i++ {
					req, _ := http.NewRequest("POST", srv.URL+"/v1/chat/completions", strings.NewReader(chat))
					req.Header.Set("Authorization", "Bearer "+testKey)
					resp, err := client.Do(req)
					if err != nil {
						b.Fatal(err)
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 {
						b.Fatalf("status %d", resp.StatusCode)
					}
				}
			})
		}
		openaiUp.Close()
		anthropicUp.Close()
	}
}

// streamUpstreams starts two test upstreams answering every request with
// a stream of n text deltas, usage and the end: one in OpenAI's chunks,
// one in Anthropic's Messages events.
func streamUpstreams(n int) (openaiUp, anthropicUp *httptest.Server) {
	var oa, an strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&oa, "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"token %d \"}}]}\n\n", i)
	}
	oa.WriteString("data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n")
	oa.WriteString("data: {\"id\":\"c\",\"choices\":[],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":50}}\n\ndata: [DONE]\n\n")
	an.WriteString("event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"model\":\"m\",\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":9,\"output_tokens\":1}}}\n\n")
	an.WriteString("event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&an, "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"token %d \"}}\n\n", i)
	}
	an.WriteString("event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n")
	an.WriteString("event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":50}}\n\n")
	an.WriteString("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n")
	serve := func(events string) *httptest.Server {
		return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			w.Header().Set("Content-Type", "text/event-stream")
			_, _ = io.WriteString(w, events)
		}))
	}
	return serve(oa.String()), serve(an.String())
}

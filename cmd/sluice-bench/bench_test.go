package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"
)

// TestMain lets the harness re-execute the test binary as its load process
// (TestQuickHarness), the way it re-executes the sluice-bench binary.
func TestMain(m *testing.M) {
	if os.Getenv(roleEnv) == "load" && len(os.Args) > 1 && os.Args[1] == "load" {
		os.Exit(loadMain(os.Args[2:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// parseAll reads every response in raw with the load generator's parser.
func parseAll(t *testing.T, raw string, stream bool) ([]result, error) {
	t.Helper()
	c := newConn(target{}, time.Second, stream)
	c.br = bufio.NewReaderSize(strings.NewReader(raw), 64) // small buffer: exercise refills
	var out []result
	for {
		if _, err := c.br.Peek(1); err == io.EOF {
			return out, nil
		}
		res, keep, err := c.readResponse()
		if err != nil {
			return out, err
		}
		out = append(out, res)
		if !keep {
			return out, nil
		}
	}
}

func TestReadResponse(t *testing.T) {
	sse := "data: {\"choices\":[{\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n" +
		"data: {\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}\n\n" +
		"data: [DONE]\n\n"
	// Split the SSE body into 7-byte chunks so both patterns straddle chunks.
	var chunked strings.Builder
	for i := 0; i < len(sse); i += 7 {
		part := sse[i:min(i+7, len(sse))]
		fmt.Fprintf(&chunked, "%x\r\n%s\r\n", len(part), part)
	}
	chunked.WriteString("0\r\n\r\n")

	tests := []struct {
		name      string
		raw       string
		stream    bool
		wantErr   bool
		statuses  []int
		bodyBytes []int64
		token     bool
		done      bool
		overhead  float64
	}{
		{
			name:      "content-length keep-alive, two responses",
			raw:       "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Sluice-Overhead-Ms: 0.25\r\n\r\nhelloHTTP/1.1 429 Too Many Requests\r\ncontent-length: 2\r\n\r\n{}",
			statuses:  []int{200, 429},
			bodyBytes: []int64{5, 2},
			overhead:  0.25,
		},
		{
			name:      "chunked with extension and trailer",
			raw:       "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\nA\r\n0123456789\r\n0\r\nX-Trailer: 1\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
			statuses:  []int{200, 204},
			bodyBytes: []int64{13, 0},
		},
		{
			name:      "large content-length body over the small buffer",
			raw:       "HTTP/1.1 200 OK\r\nContent-Length: 300\r\n\r\n" + strings.Repeat("x", 300),
			statuses:  []int{200},
			bodyBytes: []int64{300},
		},
		{
			name:      "SSE split across chunks",
			raw:       "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked.String(),
			stream:    true,
			statuses:  []int{200},
			bodyBytes: []int64{int64(len(sse))},
			token:     true,
			done:      true,
		},
		{
			name:      "close-delimited body",
			raw:       "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + sse,
			stream:    true,
			statuses:  []int{200},
			bodyBytes: []int64{int64(len(sse))},
			token:     true,
			done:      true,
		},
		{name: "bad status line", raw: "HTTX/1.1 200 OK\r\n\r\n", wantErr: true},
		{name: "bad chunk size", raw: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", wantErr: true},
		{name: "truncated body", raw: "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", wantErr: true},
		{name: "header without colon", raw: "HTTP/1.1 200 OK\r\nbogus\r\n\r\n", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseAll(t, tt.raw, tt.stream)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("no error; got %+v", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("error: %v", err)
			}
			if len(got) != len(tt.statuses) {
				t.Fatalf("got %d responses, want %d", len(got), len(tt.statuses))
			}
			for i, r := range got {
				if r.status != tt.statuses[i] || r.bodyBytes != tt.bodyBytes[i] {
					t.Fatalf("response %d: status %d body %d, want %d and %d", i, r.status, r.bodyBytes, tt.statuses[i], tt.bodyBytes[i])
				}
			}
			if tt.stream {
				if (!got[0].firstToken.IsZero()) != tt.token || got[0].sawDone != tt.done {
					t.Fatalf("token %v done %v, want %v %v", !got[0].firstToken.IsZero(), got[0].sawDone, tt.token, tt.done)
				}
			}
			if got[0].overheadMS != tt.overhead {
				t.Fatalf("overhead %v, want %v", got[0].overheadMS, tt.overhead)
			}
		})
	}
}

func TestHasToken(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{`"content":""`, false},
		{`"content":"`, false},
		{`"content":"","x":1,"content":"a"`, true},
		{`"content":"a"`, true},
		{`nothing`, false},
	}
	for _, tt := range tests {
		if got := hasToken([]byte(tt.in)); got != tt.want {
			t.Fatalf("hasToken(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestPercentile(t *testing.T) {
	// 1..100 ms in shuffled order.
	var s []time.Duration
	for i := range 100 {
		s = append(s, time.Duration((i*37)%100+1)*time.Millisecond)
	}
	d := summarize(s)
	want := Dist{Count: 100, Mean: 50.5, P50: 50, P90: 90, P99: 99, Max: 100}
	if d != want {
		t.Fatalf("summarize = %+v, want %+v", d, want)
	}
	tests := []struct {
		n    int
		p    float64
		want time.Duration
	}{
		{1, 50, 1}, {1, 99, 1}, {2, 50, 1}, {2, 51, 2}, {10, 99, 10}, {10, 90, 9}, {10, 10, 1}, {0, 50, 0},
	}
	for _, tt := range tests {
		var sorted []time.Duration
		for i := 1; i <= tt.n; i++ {
			sorted = append(sorted, time.Duration(i))
		}
		if got := percentile(sorted, tt.p); got != tt.want {
			t.Fatalf("percentile(1..%d, %v) = %v, want %v", tt.n, tt.p, got, tt.want)
		}
	}
	if d := summarize(nil); d != (Dist{}) {
		t.Fatalf("summarize(nil) = %+v", d)
	}
}

// stubServer answers like a tiny OpenAI provider: /cl with Content-Length,
// /chunked with a chunked body and /sse with a server-sent event stream.
func stubServer(t *testing.T) *httptest.Server {
	t.Helper()
	body := []byte(`{"id":"x","object":"chat.completion","choices":[{"message":{"role":"assistant","content":"Hello"}}]}`)
	mux := http.NewServeMux()
	mux.HandleFunc("POST /cl", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer test" {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Sluice-Overhead-Ms", "0.5")
		_, _ = w.Write(body)
	})
	mux.HandleFunc("POST /chunked", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body[:10])
		w.(http.Flusher).Flush()
		_, _ = w.Write(body[10:])
	})
	mux.HandleFunc("POST /sse", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		f := w.(http.Flusher)
		_, _ = io.WriteString(w, "data: {\"choices\":[{\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n")
		f.Flush()
		time.Sleep(2 * time.Millisecond)
		for _, tok := range []string{"Hel", "lo"} {
			fmt.Fprintf(w, "data: {\"choices\":[{\"delta\":{\"content\":%q}}]}\n\n", tok)
			f.Flush()
		}
		_, _ = io.WriteString(w, "data: [DONE]\n\n")
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func TestRunLoadAgainstHTTPTest(t *testing.T) {
	srv := stubServer(t)
	addr := strings.TrimPrefix(srv.URL, "http://")
	tests := []struct {
		name string
		spec LoadSpec
	}{
		{"closed content-length", LoadSpec{Mode: modeClosed, Conns: 4, Duration: 300 * time.Millisecond, Warmup: 50 * time.Millisecond,
			Target: newTarget(addr, "/cl", "Bearer test", []byte(`{}`))}},
		{"closed chunked", LoadSpec{Mode: modeClosed, Conns: 4, Duration: 300 * time.Millisecond,
			Target: newTarget(addr, "/chunked", "", []byte(`{}`))}},
		{"open content-length", LoadSpec{Mode: modeOpen, Conns: 8, Duration: 300 * time.Millisecond, Rate: 200,
			Target: newTarget(addr, "/cl", "Bearer test", []byte(`{}`))}},
		{"open stream", LoadSpec{Mode: modeOpen, Conns: 8, Duration: 300 * time.Millisecond, Rate: 100, Stream: true,
			Target: newTarget(addr, "/sse", "", []byte(`{"stream":true}`))}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.spec.Timeout = 5 * time.Second
			r, err := RunLoad(context.Background(), tt.spec)
			if err != nil {
				t.Fatalf("RunLoad: %v", err)
			}
			if r.Errors != 0 || r.OK == 0 {
				t.Fatalf("ok %d errors %d (%s), statuses %v", r.OK, r.Errors, r.FirstError, r.Statuses)
			}
			if r.Latency.Count != r.OK || r.Latency.P50 <= 0 || r.Latency.P50 > r.Latency.P99 || r.Latency.P99 > r.Latency.Max {
				t.Fatalf("latency %+v for %d ok", r.Latency, r.OK)
			}
			if tt.spec.Mode == modeOpen {
				want := int(tt.spec.Rate * tt.spec.Duration.Seconds())
				if r.Requests != want {
					t.Fatalf("open loop sent %d requests, want %d", r.Requests, want)
				}
			}
			if tt.spec.Stream {
				if r.TTFT == nil || r.TTFT.Count != r.OK || r.NoToken != 0 {
					t.Fatalf("ttft %+v, no token %d", r.TTFT, r.NoToken)
				}
				// The stub waits 2 ms before the first non-empty token.
				if r.TTFT.P50 < 2 || r.TTFT.P50 > r.Latency.P50 {
					t.Fatalf("ttft p50 %v, latency p50 %v", r.TTFT.P50, r.Latency.P50)
				}
			}
			if tt.spec.Target.request != nil && bytes.Contains(tt.spec.Target.request, []byte("/cl")) && r.OverheadMS != 0.5 {
				t.Fatalf("overhead header mean %v, want 0.5", r.OverheadMS)
			}
		})
	}
}

func TestRunLoadCountsErrors(t *testing.T) {
	srv := stubServer(t)
	addr := strings.TrimPrefix(srv.URL, "http://")
	spec := LoadSpec{Mode: modeClosed, Conns: 2, Duration: 200 * time.Millisecond, Timeout: 5 * time.Second,
		Target: newTarget(addr, "/cl", "Bearer wrong", []byte(`{}`))}
	r, err := RunLoad(context.Background(), spec)
	if err != nil {
		t.Fatalf("RunLoad: %v", err)
	}
	if r.OK != 0 || r.Errors == 0 || r.Statuses[401] != r.Errors {
		t.Fatalf("ok %d errors %d statuses %v", r.OK, r.Errors, r.Statuses)
	}
}

func TestQuickHarness(t *testing.T) {
	if os.Getenv("SLUICE_BENCH_SMOKE") != "1" {
		t.Skip("set SLUICE_BENCH_SMOKE=1 to build and run the whole harness in --quick mode")
	}
	if testing.Short() {
		t.Skip("skipped in -short mode")
	}
	var log bytes.Buffer
	// SLUICE_BENCH_ARGS adds flags, e.g. "--sluice-bin /path/to/sluice".
	args := append([]string{"--quick"}, strings.Fields(os.Getenv("SLUICE_BENCH_ARGS"))...)
	cfg, err := parseFlags(args, &log)
	if err != nil {
		t.Fatalf("parseFlags: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	res, err := runHarness(ctx, cfg, &log)
	if err != nil {
		t.Fatalf("runHarness: %v\n%s", err, log.String())
	}
	var out bytes.Buffer
	writeMarkdown(&out, res)
	t.Logf("\n%s", out.String())
	for name, p := range map[string]*PhasePair{"closed": res.Closed, "open": res.Open, "stream": res.Stream} {
		if p == nil || p.Direct.OK == 0 || p.Sluice.OK == 0 {
			t.Fatalf("%s: no successful requests: %+v", name, p)
		}
		if p.Sluice.Errors > p.Sluice.Requests/100 {
			t.Fatalf("%s: sluice errors %d of %d: %s", name, p.Sluice.Errors, p.Sluice.Requests, p.Sluice.FirstError)
		}
	}
	if res.Stream.Sluice.TTFT == nil || res.Stream.Sluice.TTFT.Count == 0 {
		t.Fatalf("no TTFT samples through sluice")
	}
	if res.MemAfter.RSSMiB <= 0 || res.MemAfter.HWMMiB < res.MemAfter.RSSMiB {
		t.Fatalf("memory %+v", res.MemAfter)
	}
}

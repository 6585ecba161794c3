package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestNginxConfig(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "nginx")
	conf := nginxConfig(nginxSettings{Dir: dir, Listen: "127.0.0.1:1234", Upstream: "127.0.0.1:5678", WorkerConns: 20000})
	for _, want := range []string{
		"worker_processes auto;", "worker_connections 20000;", "worker_rlimit_nofile 20000;",
		"access_log off;", "listen 127.0.0.1:1234 backlog=4096;",
		"upstream up {\n        server 127.0.0.1:5678;\n        keepalive 256;",
		"proxy_pass http://up;", "proxy_http_version 1.1;", `proxy_set_header Connection "";`,
		"proxy_buffering off;", "proxy_request_buffering off;", "keepalive_requests 1000000;",
		"pid " + filepath.Join(dir, "nginx.pid") + ";", "error_log " + filepath.Join(dir, "error.log") + " warn;",
	} {
		if !strings.Contains(conf, want) {
			t.Errorf("config lacks %q:\n%s", want, conf)
		}
	}
	// Every path is under the temp dir: nothing written to /var or /run.
	for _, f := range strings.Fields(conf) {
		f = strings.TrimSuffix(f, ";")
		if strings.HasPrefix(f, "/") && f != "/" && !strings.HasPrefix(f, dir+"/") {
			t.Errorf("path %q outside %s", f, dir)
		}
	}
	for _, name := range []string{"client_body_temp_path", "proxy_temp_path", "fastcgi_temp_path", "uwsgi_temp_path", "scgi_temp_path"} {
		if !strings.Contains(conf, name+" "+dir+"/") {
			t.Errorf("%s not under %s", name, dir)
		}
	}
	// Authorization is passed through: the config never sets or clears it.
	if strings.Contains(strings.ToLower(conf), "authorization") || strings.Contains(conf, "daemon") {
		t.Errorf("config touches Authorization or daemon:\n%s", conf)
	}
	// A tiny worker_connections is raised to a usable floor.
	if c := nginxConfig(nginxSettings{Dir: dir, WorkerConns: 10}); !strings.Contains(c, "worker_connections 1024;") {
		t.Errorf("worker_connections not floored:\n%s", c)
	}

	bin, err := findNginx("")
	if err != nil {
		t.Logf("nginx not installed, config not checked by nginx -t: %v", err)
		return
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "-t", "-p", dir, "-c", path, "-g", "daemon off;").CombinedOutput()
	if err != nil {
		t.Fatalf("nginx -t: %v\n%s", err, out)
	}
}

func TestFindNginx(t *testing.T) {
	_, err := findNginx(filepath.Join(t.TempDir(), "no-nginx-here"))
	if err == nil || !strings.Contains(err.Error(), "nginx-light") || !strings.Contains(err.Error(), "skipping it") {
		t.Fatalf("missing --nginx-bin: %v", err)
	}
	// A directory is not a binary.
	if _, err := findNginx(t.TempDir()); err == nil {
		t.Fatal("a directory was taken for nginx")
	}
	if p, err := findNginx(""); err == nil && p == "" {
		t.Fatal("empty path without an error")
	}
}

// startGoProxy serves the bare Go proxy in front of upstream for the test.
func startGoProxy(t *testing.T, upstream string) string {
	t.Helper()
	u, err := url.Parse(upstream)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serveGoProxy(ctx, ln, u) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serveGoProxy: %v", err)
		}
	})
	return ln.Addr().String()
}

func TestGoProxyProxiesStreamsAndJSON(t *testing.T) {
	srv := stubServer(t)
	addr := startGoProxy(t, srv.URL)
	for _, spec := range []LoadSpec{
		{Mode: modeOpen, Conns: 8, Duration: 300 * time.Millisecond, Rate: 200, Stream: true,
			Target: newTarget(addr, "/sse", []byte(`{"stream":true}`))},
		// The client's Authorization reaches the upstream unchanged.
		{Mode: modeClosed, Conns: 4, Duration: 200 * time.Millisecond,
			Target: newTarget(addr, "/cl", []byte(`{}`), "Authorization: Bearer test")},
	} {
		spec.Timeout = 5 * time.Second
		r, err := RunLoad(context.Background(), spec)
		if err != nil {
			t.Fatal(err)
		}
		if r.OK == 0 || r.Errors != 0 {
			t.Fatalf("%s stream=%v: ok %d errors %d (%s)", spec.Mode, spec.Stream, r.OK, r.Errors, r.FirstError)
		}
		// The stub's first token comes 2 ms after its first event: a
		// proxy that buffered the stream would still pass, but one that
		// held it to the end could not show TTFT < whole stream.
		if spec.Stream && (r.TTFT == nil || r.NoToken != 0 || r.TTFT.P50 < 2) {
			t.Fatalf("ttft %+v no token %d", r.TTFT, r.NoToken)
		}
	}
	if code := goproxyMain([]string{"--upstream", "ftp://x"}, io.Discard); code != 2 {
		t.Fatalf("bad --upstream: exit %d", code)
	}
	if code := goproxyMain([]string{"--listen", "127.0.0.1:0"}, io.Discard); code != 2 {
		t.Fatalf("no --upstream: exit %d", code)
	}
}

// TestGoProxyFlushesEachEvent checks that an event reaches the client
// through the proxy while the upstream still holds the stream open.
func TestGoProxyFlushesEachEvent(t *testing.T) {
	release := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, "data: first\n\n")
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer up.Close()
	defer close(release)
	addr := startGoProxy(t, up.URL)
	spec := LoadSpec{Conns: 1, Timeout: 5 * time.Second, Duration: 5 * time.Second, Target: newTarget(addr, "/", []byte(`{}`))}
	nc, _, err := openStream(spec, []byte("data: [DONE]\n"))
	if err != nil {
		t.Fatalf("first event not passed on at once: %v", err)
	}
	_ = nc.Close()
}

// pacedServer streams one event, then holds the stream until the client
// goes away; /fail answers 500. It counts streams still open.
func pacedServer(t *testing.T) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var open atomic.Int64
	mux := http.NewServeMux()
	mux.HandleFunc("POST /paced", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		open.Add(1)
		defer open.Add(-1)
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, "data: {\"choices\":[{\"delta\":{\"content\":\"\"}}]}\n\n")
		w.(http.Flusher).Flush()
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-r.Context().Done():
				return
			case <-tick.C:
				if _, err := io.WriteString(w, "data: {\"choices\":[{\"delta\":{\"content\":\"x\"}}]}\n\n"); err != nil {
					return
				}
				w.(http.Flusher).Flush()
			}
		}
	})
	mux.HandleFunc("POST /fail", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no", http.StatusInternalServerError)
	})
	mux.HandleFunc("POST /ends", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, "data: {}\n\n")
		w.(http.Flusher).Flush()
		time.Sleep(30 * time.Millisecond)
		_, _ = io.WriteString(w, "data: [DONE]\n\n")
	})
	mux.HandleFunc("POST /short", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, "data: [DONE]\n\n")
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv, &open
}

func TestRunHold(t *testing.T) {
	srv, open := pacedServer(t)
	addr := strings.TrimPrefix(srv.URL, "http://")
	hold := func(path string, n int, wait ...time.Duration) (HoldReady, HoldResult) {
		t.Helper()
		spec := LoadSpec{Mode: modeHold, Conns: n, Timeout: 5 * time.Second, Duration: 30 * time.Second,
			Target: newTarget(addr, path, []byte(`{"stream":true}`))}
		release := make(chan struct{})
		var ready HoldReady
		var once sync.Once
		res, err := runHold(context.Background(), spec, func(r HoldReady) {
			ready = r
			if path == "/paced" && open.Load() != int64(r.Open) {
				t.Errorf("ready with %d open, server holds %d", r.Open, open.Load())
			}
			for _, d := range wait {
				time.Sleep(d)
			}
			once.Do(func() { close(release) })
		}, release)
		if err != nil {
			t.Fatal(err)
		}
		return ready, res
	}
	ready, res := hold("/paced", 50)
	if ready.Open != 50 || ready.Failed != 0 || res.EndedEarly != 0 {
		t.Fatalf("paced: ready %+v result %+v", ready, res)
	}
	deadline := time.Now().Add(5 * time.Second)
	for open.Load() != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := open.Load(); n != 0 {
		t.Fatalf("%d streams still open on the server after the release", n)
	}
	// Abuse: errors are counted, not hidden.
	if ready, _ := hold("/fail", 5); ready.Open != 0 || ready.Failed != 5 || !strings.Contains(ready.FirstError, "500") {
		t.Fatalf("fail: %+v", ready)
	}
	if ready, res := hold("/short", 5); ready.Open != 0 || ready.Failed != 5 || res.EndedEarly != 0 || !strings.Contains(ready.FirstError, "ended") {
		t.Fatalf("short streams: ready %+v result %+v", ready, res)
	}
	// Streams the target ends before the release are counted.
	if ready, res := hold("/ends", 5, 300*time.Millisecond); ready.Open != 5 || res.EndedEarly != 5 {
		t.Fatalf("streams ended early: ready %+v result %+v", ready, res)
	}
	if _, err := runHold(context.Background(), LoadSpec{}, func(HoldReady) {}, nil); err == nil {
		t.Fatal("zero conns accepted")
	}
}

// TestLoadMainHold runs the hold mode over stdin/stdout as the harness does.
func TestLoadMainHold(t *testing.T) {
	srv, _ := pacedServer(t)
	addr := strings.TrimPrefix(srv.URL, "http://")
	pr, pw := io.Pipe()
	outR, outW := io.Pipe()
	done := make(chan int, 1)
	go func() {
		done <- loadMain([]string{"--addr", addr, "--path", "/paced", "--body", "{}", "--mode", modeHold, "--conns", "20", "--duration", "10s"}, pr, outW, io.Discard)
		_ = outW.Close()
	}()
	buf := make([]byte, 4096)
	n, err := outR.Read(buf)
	if err != nil || !bytes.Contains(buf[:n], []byte(`"open":20`)) {
		t.Fatalf("ready line %q, %v", buf[:n], err)
	}
	_ = pw.Close()
	rest, _ := io.ReadAll(outR)
	if code := <-done; code != 0 || !bytes.Contains(rest, []byte(`"ended_early":0`)) {
		t.Fatalf("exit %d, result %q", code, rest)
	}
}

func TestParseFlagsYardsticks(t *testing.T) {
	c, err := parseFlags([]string{"--open-streams", "8000, 1000,4000,1000", "--skip", "nginx,goproxy,closed,stream"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(c.OpenStreams) != "[1000 4000 8000]" {
		t.Fatalf("open streams %v", c.OpenStreams)
	}
	for _, s := range []string{targetNginx, targetGoProxy, phaseClosed, phaseClosedStream, phaseStream, phaseStreamHigh} {
		if !c.skip[s] {
			t.Fatalf("%s not skipped: %v", s, c.skip)
		}
	}
	if c.skip[phaseOpen] || c.skip[phaseOpenStreams] || c.skip[targetSluice] {
		t.Fatalf("skips too much: %v", c.skip)
	}
	c, err = parseFlags([]string{"--quick", "--duration", "300ms", "--open-streams", "0"}, io.Discard)
	if err != nil || c.Duration != 300*time.Millisecond || c.OpenDuration != 2*time.Second || !c.skip[phaseOpenStreams] {
		t.Fatalf("quick: %+v %v", c, err)
	}
	c, err = parseFlags([]string{"--quick"}, io.Discard)
	if err != nil || fmt.Sprint(c.OpenStreams) != "[200]" || c.StreamHighConns != 125 {
		t.Fatalf("quick defaults: open streams %v high conns %d, %v", c.OpenStreams, c.StreamHighConns, err)
	}
	c, err = parseFlags([]string{"--stream-high-rate", "0"}, io.Discard)
	if err != nil || !c.skip[phaseStreamHigh] {
		t.Fatalf("--stream-high-rate 0: %v %v", c.skip, err)
	}
	for _, bad := range [][]string{
		{"--skip", "direct"}, {"--skip", "bogus"}, {"--open-streams", "x"}, {"--open-streams", "-5"},
		{"--open-streams", "2000000"}, {"--rounds", "0"}, {"--open-streams-chunk-delay", "0s"},
	} {
		if _, err := parseFlags(bad, io.Discard); err == nil {
			t.Fatalf("%v accepted", bad)
		}
	}
}

func TestMergeRounds(t *testing.T) {
	a := LoadResult{Mode: modeOpen, Requests: 10, OK: 9, Errors: 1, FirstError: "x", RPS: 100, Statuses: map[int]int{200: 9},
		Latency: Dist{Count: 9, Mean: 1, P50: 1, P90: 2, P99: 3, Max: 4}, TTFT: &Dist{Count: 9, P50: 0.5, Max: 1}}
	b := LoadResult{Mode: modeOpen, Requests: 10, OK: 10, RPS: 200, Statuses: map[int]int{200: 10},
		Latency: Dist{Count: 10, Mean: 3, P50: 3, P90: 4, P99: 5, Max: 9}, TTFT: &Dist{Count: 10, P50: 1.5, Max: 2}}
	m := mergeRounds([]LoadResult{a, b})
	if m.Requests != 20 || m.OK != 19 || m.Errors != 1 || m.RPS != 150 || m.Statuses[200] != 19 || m.Rounds != 2 || m.FirstError != "x" {
		t.Fatalf("merged %+v", m)
	}
	if m.Latency != (Dist{Count: 19, Mean: 2, P50: 2, P90: 3, P99: 4, Max: 9}) || m.TTFT.P50 != 1 || m.TTFT.Max != 2 {
		t.Fatalf("merged latency %+v ttft %+v", m.Latency, m.TTFT)
	}
	if one := mergeRounds([]LoadResult{a}); one.Rounds != 1 || one.RPS != 100 {
		t.Fatalf("one round %+v", one)
	}
}

func TestParsePPIDAndChildren(t *testing.T) {
	if pp, err := parsePPID([]byte("123 (a) b) S 77 123 123 0 -1")); err != nil || pp != 77 {
		t.Fatalf("ppid %d %v", pp, err)
	}
	if _, err := parsePPID([]byte("garbage")); err == nil {
		t.Fatal("garbage parsed")
	}
	cmd := exec.Command("sleep", "5")
	if err := cmd.Start(); err != nil {
		t.Skip("no sleep binary")
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	found := false
	for _, c := range childrenOf(os.Getpid()) {
		found = found || c == cmd.Process.Pid
	}
	if !found {
		t.Fatalf("child %d not among %v", cmd.Process.Pid, childrenOf(os.Getpid()))
	}
}

// TestOpenStreamsOverTheFileLimit checks that a count the open-file limit
// cannot hold is skipped with a line saying why, without starting a load.
func TestOpenStreamsOverTheFileLimit(t *testing.T) {
	var log bytes.Buffer
	cfg, err := parseFlags([]string{"--open-streams", "50000"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	r := &runner{self: "/nonexistent/sluice-bench", cfg: cfg, fdLimit: 20000,
		logf: func(f string, a ...any) { fmt.Fprintf(&log, f+"\n", a...) }}
	eps := []endpoint{{name: targetDirect}, {name: targetSluice}}
	out, err := r.openStreams(context.Background(), eps, "m-paced")
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Runs) != 2 || out.Runs[0].Error == "" || out.Runs[0].Open != 0 ||
		!strings.Contains(log.String(), "needs about 100256 open files") || !strings.Contains(log.String(), "ulimit -n") {
		t.Fatalf("runs %+v log %q", out.Runs, log.String())
	}
	if fdNeed(9000) > 20000 || fdNeed(9900) <= 20000 {
		t.Fatalf("fdNeed: %d %d", fdNeed(9000), fdNeed(9900))
	}
	var md bytes.Buffer
	writeMarkdown(&md, &Results{Settings: map[string]any{}, OpenStreams: out})
	if n := strings.Count(md.String(), "needs about"); n != 1 {
		t.Fatalf("the skipped count is reported %d times:\n%s", n, md.String())
	}
}

// TestNginxFailsToStart: a binary that exits at once is reported and
// skipped, not fatal.
func TestNginxFailsToStart(t *testing.T) {
	f, err := exec.LookPath("false")
	if err != nil {
		t.Skip("no false binary")
	}
	cfg, err := parseFlags([]string{"--nginx-bin", f}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, _, err = startNginxTarget(ctx, cfg, t.TempDir(), "127.0.0.1:9", endpoint{name: targetDirect})
	if err == nil || !strings.Contains(err.Error(), "failed to start, skipping it") {
		t.Fatalf("err = %v", err)
	}
}

// TestHarnessYardsticks builds mockllm and sluice and runs the harness
// twice with very short phases: once with every target (nginx included
// when installed; with SLUICE_REQUIRE_SERVICES=1 nginx must be there, as
// scripts/test.sh installs it) and the open-streams phase at 50 streams,
// and once with --nginx-bin pointing nowhere (the run goes on without it).
func TestHarnessYardsticks(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the harness; skipped in -short mode")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	repo, err := moduleRoot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	mock, sl, self := filepath.Join(dir, "mockllm"), filepath.Join(dir, "sluice"), filepath.Join(dir, "sluice-bench")
	// The load and goproxy processes run from a plain build: the test
	// binary under -race would start each of the ~30 load processes slowly.
	for pkg, out := range map[string]string{"./cmd/mockllm": mock, "./cmd/sluice-bench": self} {
		if err := goBuild(ctx, repo, pkg, out); err != nil {
			t.Fatal(err)
		}
	}
	short := []string{"--quick", "--mockllm-bin", mock, "--sluice-bin", sl, "--warmup", "100ms", "--duration", "300ms",
		"--open-duration", "300ms", "--stream-duration", "300ms", "--rate", "100", "--stream-rate", "50", "--stream-high-rate", "100", "--conns", "8"}
	run := func(t *testing.T, args ...string) (*Results, string) {
		t.Helper()
		cfg, err := parseFlags(append(short, args...), io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		cfg.selfBin = self
		var log bytes.Buffer
		res, err := runHarness(ctx, cfg, &log)
		if err != nil {
			t.Fatalf("runHarness: %v\n%s", err, log.String())
		}
		var out bytes.Buffer
		writeMarkdown(&out, res)
		return res, log.String() + "\n" + out.String()
	}

	t.Run("without nginx", func(t *testing.T) {
		res, out := run(t, "--nginx-bin", filepath.Join(dir, "no-nginx"), "--skip", "sluice,closed,stream,open-streams")
		if !strings.Contains(out, "nginx not found at --nginx-bin") || !strings.Contains(out, "nginx-light") {
			t.Fatalf("no clear line about nginx:\n%s", out)
		}
		if fmt.Sprint(res.Targets) != "[direct goproxy]" || res.Skipped[targetNginx] == "" || res.Open == nil ||
			res.Open.Nginx != nil || res.Open.Sluice != nil || res.Open.GoProxy == nil || res.Open.GoProxy.OK == 0 {
			t.Fatalf("targets %v skipped %v open %+v\n%s", res.Targets, res.Skipped, res.Open, out)
		}
	})

	t.Run("all targets", func(t *testing.T) {
		_, nginxErr := findNginx("")
		if nginxErr != nil && os.Getenv("SLUICE_REQUIRE_SERVICES") == "1" {
			t.Fatalf("SLUICE_REQUIRE_SERVICES=1 but %v (scripts/test.sh installs nginx-light)", nginxErr)
		}
		if err := goBuild(ctx, repo, "./cmd/sluice", sl); err != nil {
			t.Fatal(err)
		}
		res, out := run(t, "--open-streams", "50")
		t.Logf("\n%s", out)
		want := []string{targetDirect, targetNginx, targetGoProxy, targetSluice}
		if nginxErr != nil {
			t.Logf("nginx not installed, measured without it: %v", nginxErr)
			want = []string{targetDirect, targetGoProxy, targetSluice}
		}
		if fmt.Sprint(res.Targets) != fmt.Sprint(want) {
			t.Fatalf("targets %v, want %v", res.Targets, want)
		}
		phases := map[string]*Phase{"closed": res.Closed, "closed-stream": res.ClosedStream, "open": res.Open,
			"stream": res.Stream, "stream-high": res.StreamHigh}
		for name, p := range phases {
			for _, tg := range want {
				r := p.get(tg)
				if r == nil || r.OK == 0 || r.Errors > r.Requests/100 {
					t.Fatalf("%s %s: %+v", name, tg, r)
				}
				if strings.Contains(name, "stream") && (r.TTFT == nil || r.TTFT.Count == 0) {
					t.Fatalf("%s %s: no TTFT", name, tg)
				}
				if strings.HasPrefix(name, "closed") && r.ServerCPUPerReqUS <= 0 {
					t.Fatalf("%s %s: no CPU per request", name, tg)
				}
			}
		}
		if res.Closed.SluiceCPUPerReqUS <= 0 || res.Open.Sluice.Latency.P50 <= 0 {
			t.Fatalf("legacy fields empty: %+v", res.Closed)
		}
		if res.OpenStreams == nil || len(res.OpenStreams.Runs) != len(want) {
			t.Fatalf("open streams: %+v", res.OpenStreams)
		}
		for _, r := range res.OpenStreams.Runs {
			if r.Open != 50 || r.EndedEarly != 0 || !r.Recovered || r.UpstreamReleasedMS < 0 || r.OpenRSSMiB <= 0 {
				t.Fatalf("open streams %+v", r)
			}
			// A Go process may serve 50 streams from heap it already
			// holds; the small processes must show them.
			if (r.Target == targetGoProxy || r.Target == targetNginx) && r.MiBPer1000 <= 0 {
				t.Fatalf("open streams: %s shows no memory for 50 streams: %+v", r.Target, r)
			}
		}
		for _, tg := range want {
			if m := res.Memory[tg]; m == nil || m.Idle.RSSMiB <= 0 || m.After.RSSMiB <= 0 {
				t.Fatalf("memory of %s: %+v", tg, m)
			}
		}
		if !strings.Contains(out, "| sluice | ") || !strings.Contains(out, "RSS per 1,000 open streams") {
			t.Fatalf("report lacks the summary:\n%s", out)
		}
	})
}

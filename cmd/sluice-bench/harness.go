package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// mockKey is the API key the mock provider is started with.
const mockKey = "mock-key"

// Families (--family): which wire format is measured, and which of Sluice's
// lanes it takes.
const (
	// familyOpenAI: OpenAI chat both ways, to an openai-compatible provider.
	familyOpenAI = "openai"
	// familyAnthropicTranslated: OpenAI chat through Sluice to an anthropic
	// provider (the translated lane); directly, the same chat as an
	// Anthropic Messages request, so the difference includes translation
	// both ways.
	familyAnthropicTranslated = "anthropic-translated"
	// familyAnthropicRaw: Anthropic Messages both ways (the raw lane).
	familyAnthropicRaw = "anthropic-raw"
)

// anthropicVersion is the anthropic-version header the Anthropic lanes send.
const anthropicVersion = "2023-06-01"

// defaultAnthropicModel is the model name with an anthropic family when
// --model is not given (a label only: the mock answers any name).
const defaultAnthropicModel = "claude-haiku-4-5"

// Targets: what the load is sent to, in the order each phase measures them
// (reversed in odd rounds).
const (
	targetDirect  = "direct"  // the mock itself: the baseline
	targetNginx   = "nginx"   // nginx as a plain reverse proxy (yardstick)
	targetGoProxy = "goproxy" // httputil.ReverseProxy (yardstick)
	targetSluice  = "sluice"  // the gateway, as a user runs it
)

// targetNames lists the targets in measuring order.
func targetNames() []string {
	return []string{targetDirect, targetNginx, targetGoProxy, targetSluice}
}

// Phases, by the names --skip takes.
const (
	phaseClosed       = "closed"        // closed loop, JSON ("closed" in --skip also skips closed-stream)
	phaseClosedStream = "closed-stream" // closed loop, streams
	phaseOpen         = "open"          // open loop, JSON, at --rate
	phaseStream       = "stream"        // open loop, streams, at --stream-rate ("stream" in --skip also skips stream-high)
	phaseStreamHigh   = "stream-high"   // open loop, streams, at --stream-high-rate
	phaseOpenStreams  = "open-streams"  // RSS per 1,000 open paced streams
)

// config is the harness's flags.
type config struct {
	Conns            int
	Duration         time.Duration
	Warmup           time.Duration
	Rate             float64
	OpenDuration     time.Duration
	OpenConns        int
	StreamRate       float64
	StreamDuration   time.Duration
	StreamConns      int
	StreamHighRate   float64
	StreamHighConns  int
	Rounds           int
	OpenStreams      []int
	OpenStreamsDelay time.Duration
	Timeout          time.Duration
	MockLatency      time.Duration
	MockTTFT         time.Duration
	MockChunkDelay   time.Duration
	MockChunks       int
	Model            string
	Family           string
	MaxTokens        int
	AccessLog        bool
	LogLevel         string
	RedisURL         string
	LoadProcs        int
	Quick            bool

	jsonOut    string
	keyLimits  map[string]any // --key-limits
	model      modelSeed      // --deployments, --model-json
	repo       string
	sluiceBin  string
	mockllmBin string
	nginxBin   string
	selfBin    string // the load and goproxy processes' binary (tests: a build without -race); default this one
	keep       bool
	skip       map[string]bool
}

// parseFlags reads the harness flags; --quick shortens every phase whose
// duration is not given to 2 s and the open-streams phase to 200 streams.
func parseFlags(args []string, stderr io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("sluice-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: go run ./cmd/sluice-bench [flags]\n\n"+
			"Builds and starts mockllm and sluice on loopback (and nginx and a bare Go proxy as\n"+
			"yardsticks), then measures throughput, latency, streaming time to first token,\n"+
			"CPU per request and memory for each, interleaved, against the mock directly.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	fs.IntVar(&c.Conns, "conns", 64, "closed loop: concurrent connections")
	fs.DurationVar(&c.Duration, "duration", 10*time.Second, "closed loop: measured duration")
	fs.DurationVar(&c.Warmup, "warmup", time.Second, "closed loop: unmeasured warm-up before each run; also each target's warm-up before the first phase")
	fs.Float64Var(&c.Rate, "rate", 200, "open loop: requests per second")
	fs.DurationVar(&c.OpenDuration, "open-duration", 10*time.Second, "open loop: duration")
	fs.IntVar(&c.OpenConns, "open-conns", 0, "open loop: connection pool size (0 = automatic)")
	fs.Float64Var(&c.StreamRate, "stream-rate", 50, "streaming: requests per second")
	fs.DurationVar(&c.StreamDuration, "stream-duration", 5*time.Second, "streaming (both rates): duration")
	fs.IntVar(&c.StreamConns, "stream-conns", 0, "streaming: connection pool size (0 = automatic)")
	fs.Float64Var(&c.StreamHighRate, "stream-high-rate", 500, "second streaming phase (stream-high): requests per second, for the tail under a higher rate (0 = off)")
	fs.IntVar(&c.Rounds, "rounds", 1, "rounds of every phase; targets run in order direct, nginx, goproxy, sluice, reversed in every second round; figures are merged over the rounds")
	openStreams := fs.String("open-streams", "1000", "open-streams phase: concurrent paced streams held open per target, a comma-separated list to show linearity, e.g. 1000,4000,8000 (0 = off)")
	fs.DurationVar(&c.OpenStreamsDelay, "open-streams-chunk-delay", 500*time.Millisecond, "open-streams phase: the mock's delay between events of a held stream")
	fs.StringVar(&c.nginxBin, "nginx-bin", "", "nginx binary (default: nginx on PATH, else "+debianNginx+"); when missing the nginx yardstick is skipped")
	fs.DurationVar(&c.Timeout, "timeout", 30*time.Second, "per-request timeout")
	fs.DurationVar(&c.MockLatency, "mock-latency", 0, "mockllm --latency (0 = mock default)")
	fs.DurationVar(&c.MockTTFT, "mock-ttft", 0, "mockllm --ttft (0 = mock default)")
	fs.DurationVar(&c.MockChunkDelay, "mock-chunk-delay", 0, "mockllm --chunk-delay (0 = mock default)")
	fs.IntVar(&c.MockChunks, "mock-chunks", 0, "mockllm --chunks (0 = mock default)")
	fs.StringVar(&c.Model, "model", "gpt-4o-mini", "model name seeded and requested (default "+defaultAnthropicModel+" with an anthropic family)")
	fs.StringVar(&c.Family, "family", familyOpenAI, "wire format and lane: openai, anthropic-translated (OpenAI chat through sluice to an anthropic provider; direct: Anthropic Messages) or anthropic-raw (Anthropic Messages both ways)")
	fs.IntVar(&c.MaxTokens, "max-tokens", 32, "max_tokens in each request")
	fs.BoolVar(&c.AccessLog, "access-log", false, "turn sluice's access log on (written to a file in the temp dir)")
	fs.StringVar(&c.LogLevel, "log-level", "warn", "SLUICE_LOG_LEVEL for sluice")
	fs.StringVar(&c.RedisURL, "redis-url", "", "REDIS_URL for sluice (empty = in-process quotas)")
	fs.IntVar(&c.model.deployments, "deployments", 1, "deployments of the benchmark model, all on the mock (prices rising by 1% each), so the balancer picks among them")
	modelJSON := fs.String("model-json", "", `extra fields of the benchmark model as JSON, e.g. '{"strategy":"least_busy","hedge":{"enabled":true}}'`)
	limits := fs.String("key-limits", "", `quota fields of the benchmark key as JSON, e.g. '{"rpm":100000000,"tpm":100000000,"budget":{"usd":1000000}}' (empty = no quotas)`)
	fs.IntVar(&c.LoadProcs, "load-procs", 0, "GOMAXPROCS of the load process (0 = Go default)")
	fs.BoolVar(&c.Quick, "quick", false, "2 s per phase (unless its duration is given), short warm-ups, 200 open streams (smoke test)")
	fs.StringVar(&c.jsonOut, "json", "", "also write the results as JSON to this file")
	fs.StringVar(&c.repo, "repo", "", "module root to build from (default: found with 'go env GOMOD')")
	fs.StringVar(&c.sluiceBin, "sluice-bin", "", "use this sluice binary instead of building one")
	fs.StringVar(&c.mockllmBin, "mockllm-bin", "", "use this mockllm binary instead of building one")
	fs.BoolVar(&c.keep, "keep", false, "keep the temp dir (logs, database, nginx.conf) and print its path")
	skip := fs.String("skip", "", "comma-separated phases or targets to skip: closed (both closed loops), closed-stream, open, stream (both stream rates), stream-high, open-streams; nginx, goproxy, sluice")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	c.skip = map[string]bool{}
	for s := range strings.SplitSeq(*skip, ",") {
		s = strings.TrimSpace(s)
		switch s {
		case "":
		case phaseClosed, phaseClosedStream, phaseOpen, phaseStream, phaseStreamHigh, phaseOpenStreams,
			targetNginx, targetGoProxy, targetSluice:
			c.skip[s] = true
		default:
			return c, fmt.Errorf("--skip: unknown phase or target %q", s)
		}
	}
	if c.skip[phaseClosed] {
		c.skip[phaseClosedStream] = true
	}
	if c.skip[phaseStream] {
		c.skip[phaseStreamHigh] = true
	}
	if c.StreamHighRate == 0 {
		c.skip[phaseStreamHigh] = true
	}
	if c.model.deployments < 1 || c.model.deployments > 100 {
		return c, fmt.Errorf("--deployments: must be from 1 to 100")
	}
	if *modelJSON != "" {
		if err := json.Unmarshal([]byte(*modelJSON), &c.model.extra); err != nil {
			return c, fmt.Errorf("--model-json: not a JSON object: %v", err)
		}
	}
	if *limits != "" {
		if err := json.Unmarshal([]byte(*limits), &c.keyLimits); err != nil {
			return c, fmt.Errorf("--key-limits: not a JSON object: %v", err)
		}
	}
	switch c.Family {
	case familyOpenAI:
	case familyAnthropicTranslated, familyAnthropicRaw:
		if !set["model"] {
			c.Model = defaultAnthropicModel
		}
	default:
		return c, fmt.Errorf("unknown --family %q: want %s, %s or %s", c.Family, familyOpenAI, familyAnthropicTranslated, familyAnthropicRaw)
	}
	if c.Quick {
		for name, d := range map[string]*time.Duration{"duration": &c.Duration, "open-duration": &c.OpenDuration, "stream-duration": &c.StreamDuration} {
			if !set[name] {
				*d = 2 * time.Second
			}
		}
		if !set["warmup"] {
			c.Warmup = min(c.Warmup, 300*time.Millisecond)
		}
		if !set["open-streams"] {
			*openStreams = "200"
		}
	}
	var err error
	if c.OpenStreams, err = parseCounts(*openStreams); err != nil {
		return c, fmt.Errorf("--open-streams: %v", err)
	}
	if len(c.OpenStreams) == 0 {
		c.skip[phaseOpenStreams] = true
	}
	if c.Conns <= 0 || c.Rate <= 0 || c.StreamRate <= 0 || c.StreamHighRate < 0 || c.Duration <= 0 || c.OpenDuration <= 0 || c.StreamDuration <= 0 {
		return c, errors.New("conns, rates and durations must be positive")
	}
	if c.Rounds < 1 || c.Rounds > 100 {
		return c, errors.New("--rounds: must be from 1 to 100")
	}
	if c.OpenStreamsDelay <= 0 || c.OpenStreamsDelay > time.Minute {
		return c, errors.New("--open-streams-chunk-delay: must be positive and at most 1m")
	}
	if c.OpenConns <= 0 {
		c.OpenConns = autoConns(c.Rate)
	}
	if c.StreamConns <= 0 {
		c.StreamConns = autoConns(c.StreamRate)
	}
	c.StreamHighConns = autoConns(c.StreamHighRate)
	return c, nil
}

// maxOpenStreams bounds one --open-streams figure.
const maxOpenStreams = 1_000_000

// parseCounts reads a comma-separated list of stream counts; "0" or "" is
// none. The list is sorted, duplicates dropped.
func parseCounts(s string) ([]int, error) {
	var out []int
	for f := range strings.SplitSeq(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 0 || n > maxOpenStreams {
			return nil, fmt.Errorf("want counts from 0 to %d, got %q", maxOpenStreams, f)
		}
		if n > 0 {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// autoConns sizes an open-loop pool: a quarter of a second's requests, at
// least 32 and at most 512, so a slow response does not hold up the
// timetable (and if every connection is busy, the wait is still measured).
func autoConns(rate float64) int {
	return max(32, min(512, int(rate/4)))
}

// Results is everything one harness run measured.
type Results struct {
	Settings  map[string]any `json:"settings"`
	GoVersion string         `json:"go_version"`
	CPUs      int            `json:"cpus"`
	// Targets measured, in order; Skipped says why others were not.
	Targets      []string          `json:"targets"`
	Skipped      map[string]string `json:"skipped_targets,omitempty"`
	NginxVersion string            `json:"nginx_version,omitempty"`
	Closed       *Phase            `json:"closed_loop,omitempty"`
	ClosedStream *Phase            `json:"closed_loop_stream,omitempty"`
	Open         *Phase            `json:"open_loop,omitempty"`
	Stream       *Phase            `json:"stream,omitempty"`
	StreamHigh   *Phase            `json:"stream_high,omitempty"`
	OpenStreams  *OpenStreams      `json:"open_streams,omitempty"`
	// Memory of each target's server process(es): idle after the warm-up
	// and after the last phase.
	Memory map[string]*TargetMemory `json:"memory"`
	// Sluice's, as before the yardsticks (same as memory.sluice).
	MemIdle  Memory    `json:"sluice_memory_idle"`
	MemAfter Memory    `json:"sluice_memory_after"`
	Started  time.Time `json:"started"`
}

// TargetMemory is one target's memory at idle and after the load.
type TargetMemory struct {
	Idle  Memory `json:"idle"`
	After Memory `json:"after"`
}

// Phase is one measurement made against every target. A target left out
// (skipped, or its load failed) has no entry.
type Phase struct {
	Direct  *LoadResult `json:"direct,omitempty"`
	Nginx   *LoadResult `json:"nginx,omitempty"`
	GoProxy *LoadResult `json:"goproxy,omitempty"`
	Sluice  *LoadResult `json:"sluice,omitempty"`
	// As before the yardsticks: CPU time the mock (direct) and sluice used
	// per request, in µs, and the load process's; the same figures are in
	// each target's server_cpu_us_per_req and load_cpu_us_per_req.
	DirectCPUPerReqUS     float64 `json:"direct_server_cpu_us_per_req"`
	SluiceCPUPerReqUS     float64 `json:"sluice_cpu_us_per_req"`
	DirectLoadCPUPerReqUS float64 `json:"direct_load_cpu_us_per_req"`
	SluiceLoadCPUPerReqUS float64 `json:"sluice_load_cpu_us_per_req"`
}

// get returns the result for a target, nil when not measured.
func (p *Phase) get(name string) *LoadResult {
	if p == nil {
		return nil
	}
	switch name {
	case targetDirect:
		return p.Direct
	case targetNginx:
		return p.Nginx
	case targetGoProxy:
		return p.GoProxy
	case targetSluice:
		return p.Sluice
	}
	return nil
}

// set stores the result for a target.
func (p *Phase) set(name string, r *LoadResult) {
	switch name {
	case targetDirect:
		p.Direct = r
		p.DirectCPUPerReqUS, p.DirectLoadCPUPerReqUS = r.ServerCPUPerReqUS, r.LoadCPUPerReqUS
	case targetNginx:
		p.Nginx = r
	case targetGoProxy:
		p.GoProxy = r
	case targetSluice:
		p.Sluice = r
		p.SluiceCPUPerReqUS, p.SluiceLoadCPUPerReqUS = r.ServerCPUPerReqUS, r.LoadCPUPerReqUS
	}
}

// harnessMain runs the benchmark and returns the exit code.
func harnessMain(args []string, stdout, stderr io.Writer) int {
	cfg, err := parseFlags(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "sluice-bench: %v\n", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// Every phase stops by itself; this bounds the whole run regardless.
	total := time.Duration(cfg.Rounds) * 4 * (2*cfg.Duration + cfg.OpenDuration + 2*cfg.StreamDuration + 4*cfg.Warmup)
	for _, n := range cfg.OpenStreams {
		total += 4 * (time.Minute + time.Duration(n)*10*time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(ctx, 2*total+10*time.Minute)
	defer cancel()

	res, err := runHarness(ctx, cfg, stderr)
	if err != nil {
		if ctx.Err() != nil {
			fmt.Fprintf(stderr, "sluice-bench: stopped: %v\n", context.Cause(ctx))
			return 130
		}
		fmt.Fprintf(stderr, "sluice-bench: %v\n", err)
		return 1
	}
	writeMarkdown(stdout, res)
	if cfg.jsonOut != "" {
		b, err := json.MarshalIndent(res, "", "  ")
		if err == nil {
			err = os.WriteFile(cfg.jsonOut, append(b, '\n'), 0o644)
		}
		if err != nil {
			fmt.Fprintf(stderr, "sluice-bench: write %s: %v\n", cfg.jsonOut, err)
			return 1
		}
	}
	return 0
}

// runHarness builds and starts the processes, seeds Sluice and runs the
// phases. Children are stopped and the temp dir removed before it returns.
func runHarness(ctx context.Context, cfg config, logw io.Writer) (*Results, error) {
	logf := func(format string, a ...any) { fmt.Fprintf(logw, "sluice-bench: "+format+"\n", a...) }
	res := &Results{Settings: settingsOf(cfg), GoVersion: runtime.Version(), CPUs: runtime.NumCPU(), Started: time.Now().UTC(),
		Skipped: map[string]string{}, Memory: map[string]*TargetMemory{}}

	tmp, err := os.MkdirTemp("", "sluice-bench-")
	if err != nil {
		return nil, err
	}
	if cfg.keep {
		logf("temp dir (kept): %s", tmp)
	} else {
		defer os.RemoveAll(tmp)
	}
	self := cfg.selfBin
	if self == "" {
		if self, err = os.Executable(); err != nil {
			return nil, err
		}
	}

	// Children start in the temp dir: relative binary paths are made absolute.
	sluiceBin, mockBin := absPath(cfg.sluiceBin), absPath(cfg.mockllmBin)
	needSluice := !cfg.skip[targetSluice]
	if (needSluice && sluiceBin == "") || mockBin == "" {
		repo := cfg.repo
		if repo == "" {
			if repo, err = moduleRoot(ctx); err != nil {
				return nil, err
			}
		}
		if mockBin == "" {
			mockBin = filepath.Join(tmp, "mockllm")
			logf("building ./cmd/mockllm")
			if err := goBuild(ctx, repo, "./cmd/mockllm", mockBin); err != nil {
				return nil, err
			}
		}
		if needSluice && sluiceBin == "" {
			sluiceBin = filepath.Join(tmp, "sluice")
			logf("building ./cmd/sluice")
			if err := goBuild(ctx, repo, "./cmd/sluice", sluiceBin); err != nil {
				return nil, err
			}
		}
	}

	mockAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	mockArgs := []string{"--listen", mockAddr, "--api-key", mockKey, "--quiet"}
	if cfg.MockLatency > 0 {
		mockArgs = append(mockArgs, "--latency", cfg.MockLatency.String())
	}
	if cfg.MockTTFT > 0 {
		mockArgs = append(mockArgs, "--ttft", cfg.MockTTFT.String())
	}
	if cfg.MockChunkDelay > 0 {
		mockArgs = append(mockArgs, "--chunk-delay", cfg.MockChunkDelay.String())
	}
	if cfg.MockChunks > 0 {
		mockArgs = append(mockArgs, "--chunks", strconv.Itoa(cfg.MockChunks))
	}
	mock, err := startProc("mockllm", mockBin, mockArgs, cleanEnv(), tmp, filepath.Join(tmp, "mockllm.log"))
	if err != nil {
		return nil, err
	}
	defer mock.stop(5 * time.Second)
	if err := waitHTTP(ctx, mock, "http://"+mockAddr+"/healthz", 30*time.Second); err != nil {
		return nil, err
	}

	directLane, sluiceLane := lanes(cfg)
	direct := endpoint{name: targetDirect, addr: mockAddr, lane: directLane, auth: directLane.credential(mockKey), server: &server{p: mock}}
	if cfg.Family != familyOpenAI {
		if err := waitRoute(ctx, direct, 5*time.Second); err != nil {
			return nil, fmt.Errorf("mock not answering the direct lane: %w", err)
		}
	}
	eps := []endpoint{direct}

	// The yardsticks: plain proxies to the mock, spoken to exactly as the
	// mock is (its lane and its key, passed through).
	if cfg.skip[targetNginx] {
		res.Skipped[targetNginx] = "--skip"
	} else if ep, version, err := startNginxTarget(ctx, cfg, tmp, mockAddr, direct); err != nil {
		logf("%v", err)
		res.Skipped[targetNginx] = err.Error()
	} else {
		defer ep.server.p.stop(5 * time.Second)
		res.NginxVersion = version
		eps = append(eps, ep)
	}
	if cfg.skip[targetGoProxy] {
		res.Skipped[targetGoProxy] = "--skip"
	} else {
		addr, err := freeAddr()
		if err != nil {
			return nil, err
		}
		env := append(cleanEnv(), roleEnv+"=goproxy")
		gp, err := startProc("goproxy", self, []string{"goproxy", "--listen", addr, "--upstream", "http://" + mockAddr}, env, tmp, filepath.Join(tmp, "goproxy.log"))
		if err != nil {
			return nil, err
		}
		defer gp.stop(5 * time.Second)
		if err := waitHTTP(ctx, gp, "http://"+addr+"/healthz", 15*time.Second); err != nil {
			return nil, err
		}
		ep := direct
		ep.name, ep.addr, ep.server = targetGoProxy, addr, &server{p: gp}
		eps = append(eps, ep)
	}

	var sl *proc
	var pacedModel string
	if cfg.skip[targetSluice] {
		res.Skipped[targetSluice] = "--skip"
	} else {
		proxyAddr, err := freeAddr()
		if err != nil {
			return nil, err
		}
		adminAddr, err := freeAddr()
		if err != nil {
			return nil, err
		}
		adminKey, err := randomHex(32)
		if err != nil {
			return nil, err
		}
		accessLog := "off"
		if cfg.AccessLog {
			accessLog = filepath.Join(tmp, "access.log")
		}
		dataDir := filepath.Join(tmp, "data")
		env := append(cleanEnv(),
			"SLUICE_LISTEN="+proxyAddr,
			"SLUICE_ADMIN_LISTEN="+adminAddr,
			"SLUICE_ADMIN_KEY="+adminKey,
			"SLUICE_DATA_DIR="+dataDir,
			"DATABASE_URL=",
			"REDIS_URL="+cfg.RedisURL,
			"SLUICE_ACCESS_LOG="+accessLog,
			"SLUICE_LOG_LEVEL="+cfg.LogLevel,
			"GIN_MODE=release", // production mode, whatever sluice's own default
		)
		sl, err = startProc("sluice", sluiceBin, []string{"serve"}, env, tmp, filepath.Join(tmp, "sluice.log"))
		if err != nil {
			return nil, err
		}
		defer sl.stop(10 * time.Second)
		if err := waitHTTP(ctx, sl, "http://"+adminAddr+"/readyz", 60*time.Second); err != nil {
			return nil, err
		}
		if err := waitHTTP(ctx, sl, "http://"+proxyAddr+"/healthz", 10*time.Second); err != nil {
			return nil, err
		}
		a := &admin{base: "http://" + adminAddr, key: adminKey, client: &http.Client{Timeout: 10 * time.Second}}
		key, err := seed(ctx, a, providerSpec(cfg.Family, "http://"+mockAddr, mockKey), cfg.Model, cfg.model, cfg.keyLimits)
		if err != nil {
			return nil, fmt.Errorf("seed: %w (sluice log tail:\n%s)", err, sl.logTail(2000))
		}
		through := endpoint{name: targetSluice, addr: proxyAddr, lane: sluiceLane, auth: sluiceLane.credential(key), server: &server{p: sl}}
		if err := waitRoute(ctx, through, 15*time.Second); err != nil {
			return nil, fmt.Errorf("sluice route not ready: %w (sluice log tail:\n%s)", err, sl.logTail(2000))
		}
		if !cfg.skip[phaseOpenStreams] {
			// Sluice sends the provider's own headers, not the client's
			// X-Mock-*: held streams go to a second provider on the same
			// mock whose static headers pace them.
			pacedModel = cfg.Model + "-paced"
			p := providerSpec(cfg.Family, "http://"+mockAddr, mockKey)
			p["name"] = "mock-paced"
			p["headers"] = pacingHeaders(cfg, slices.Max(cfg.OpenStreams))
			if err := seedModel(ctx, a, p, pacedModel); err != nil {
				return nil, fmt.Errorf("seed the paced model: %w", err)
			}
		}
		eps = append(eps, through)
	}
	for _, ep := range eps {
		res.Targets = append(res.Targets, ep.name)
	}

	r := &runner{self: self, cfg: cfg, logf: logf, mockAddr: mockAddr, fdLimit: fdLimit()}
	r.warmUp(ctx, eps)
	for _, ep := range eps {
		m, err := ep.server.memory()
		if err != nil {
			logf("memory of %s: %v", ep.name, err)
		}
		res.Memory[ep.name] = &TargetMemory{Idle: m}
	}

	if !cfg.skip[phaseOpenStreams] {
		if res.OpenStreams, err = r.openStreams(ctx, eps, pacedModel); err != nil {
			return nil, err
		}
	}
	type phaseRun struct {
		key   string
		title string
		args  []string
		strm  bool
		out   **Phase
	}
	phases := []phaseRun{
		{phaseClosed, "closed loop", []string{"--mode", modeClosed, "--conns", strconv.Itoa(cfg.Conns),
			"--duration", cfg.Duration.String(), "--warmup", cfg.Warmup.String()}, false, &res.Closed},
		{phaseClosedStream, "closed loop, streams", []string{"--mode", modeClosed, "--conns", strconv.Itoa(cfg.Conns), "--stream",
			"--duration", cfg.Duration.String(), "--warmup", cfg.Warmup.String()}, true, &res.ClosedStream},
		{phaseOpen, "open loop", []string{"--mode", modeOpen, "--conns", strconv.Itoa(cfg.OpenConns),
			"--duration", cfg.OpenDuration.String(), "--rate", ftoa(cfg.Rate)}, false, &res.Open},
		{phaseStream, "streaming", []string{"--mode", modeOpen, "--conns", strconv.Itoa(cfg.StreamConns), "--stream",
			"--duration", cfg.StreamDuration.String(), "--rate", ftoa(cfg.StreamRate)}, true, &res.Stream},
		{phaseStreamHigh, "streaming, high rate", []string{"--mode", modeOpen, "--conns", strconv.Itoa(cfg.StreamHighConns), "--stream",
			"--duration", cfg.StreamDuration.String(), "--rate", ftoa(cfg.StreamHighRate)}, true, &res.StreamHigh},
	}
	for _, ph := range phases {
		if cfg.skip[ph.key] {
			continue
		}
		if *ph.out, err = r.phase(ctx, ph.title, ph.args, ph.strm, eps); err != nil {
			return nil, err
		}
	}
	for _, ep := range eps {
		m, err := ep.server.memory()
		if err != nil {
			logf("memory of %s: %v", ep.name, err)
		}
		res.Memory[ep.name].After = m
	}
	if tm := res.Memory[targetSluice]; tm != nil {
		res.MemIdle, res.MemAfter = tm.Idle, tm.After
	}
	if sl != nil && sl.exited() {
		return nil, fmt.Errorf("sluice exited during the run (%v); log tail:\n%s", sl.err, sl.logTail(2000))
	}
	return res, nil
}

// startNginxTarget finds and starts nginx in front of the mock. Any
// failure is returned as the line to print (the run goes on without it).
func startNginxTarget(ctx context.Context, cfg config, tmp, mockAddr string, direct endpoint) (endpoint, string, error) {
	bin, err := findNginx(cfg.nginxBin)
	if err != nil {
		return endpoint{}, "", err
	}
	addr, err := freeAddr()
	if err != nil {
		return endpoint{}, "", err
	}
	conns := 65536
	if l := fdLimit(); l > 0 {
		conns = int(min(l, 1<<20))
	}
	p, err := startNginx(ctx, bin, nginxSettings{Dir: filepath.Join(tmp, "nginx"), Listen: addr, Upstream: mockAddr, WorkerConns: conns})
	if err != nil {
		return endpoint{}, "", fmt.Errorf("nginx (%s) failed to start, skipping it: %v", bin, err)
	}
	version := ""
	if out, err := exec.CommandContext(ctx, bin, "-v").CombinedOutput(); err == nil {
		version = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(string(out)), "nginx version:"))
	}
	ep := direct
	ep.name, ep.addr, ep.server = targetNginx, addr, &server{p: p, tree: true}
	return ep, version, nil
}

// absPath returns p made absolute ("" stays "").
func absPath(p string) string {
	if p == "" {
		return p
	}
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}

// freeAddr returns 127.0.0.1:<a free port>.
func freeAddr() (string, error) {
	port, err := freePort()
	if err != nil {
		return "", err
	}
	return "127.0.0.1:" + strconv.Itoa(port), nil
}

// endpoint is one side of a comparison.
type endpoint struct {
	name string
	addr string
	lane
	auth   string  // the value of lane.authHeader
	server *server // whose CPU time and memory are charged to this target
}

// lane is how one side of a comparison is spoken to.
type lane struct {
	path       string   // request path
	authHeader string   // header carrying the credential
	headers    []string // extra "Name: value" headers, not secret
	sse        string   // dialect of streamed answers
	plain      []byte   // non-streamed request body
	stream     []byte   // streamed request body
}

// body returns the streamed or the non-streamed request body.
func (l lane) body(stream bool) []byte {
	if stream {
		return l.stream
	}
	return l.plain
}

// credential returns the value of l.authHeader for a key.
func (l lane) credential(key string) string {
	if l.authHeader == "Authorization" {
		return "Bearer " + key
	}
	return key
}

// lanes returns how the mock (direct) and Sluice (through) are spoken to
// for cfg.Family.
func lanes(cfg config) (direct, through lane) {
	plain, stream := requestBodies(cfg)
	openai := lane{path: "/v1/chat/completions", authHeader: "Authorization", sse: sseOpenAI, plain: plain, stream: stream}
	plain, stream = anthropicBodies(cfg)
	anthropic := lane{path: "/v1/messages", authHeader: "X-Api-Key", headers: []string{"Anthropic-Version: " + anthropicVersion},
		sse: sseAnthropic, plain: plain, stream: stream}
	switch cfg.Family {
	case familyAnthropicTranslated:
		return anthropic, openai
	case familyAnthropicRaw:
		return anthropic, anthropic
	}
	return openai, openai
}

// providerSpec is the provider seeded for a family: the mock behind
// OpenAI's surface (base URL with /v1) or Anthropic's (the bare origin).
func providerSpec(family, mockURL, mockKey string) map[string]any {
	if family == familyAnthropicTranslated || family == familyAnthropicRaw {
		return map[string]any{"name": "mock", "type": "anthropic", "base_url": mockURL, "api_key": mockKey}
	}
	return map[string]any{"name": "mock", "type": "openai-compatible", "base_url": mockURL + "/v1", "api_key": mockKey}
}

// runner starts load processes.
type runner struct {
	self     string
	cfg      config
	logf     func(string, ...any)
	mockAddr string
	fdLimit  uint64 // open files per process (0 = unknown)
}

// isYardstick reports whether a target is one of the plain proxies, whose
// failure leaves it out of a phase instead of ending the run.
func isYardstick(name string) bool { return name == targetNginx || name == targetGoProxy }

// phase runs the same load against every target, cfg.Rounds times, in
// order in even rounds and in reverse in odd ones; stream selects the
// streamed request bodies. Each target's rounds are merged.
func (r *runner) phase(ctx context.Context, title string, args []string, stream bool, eps []endpoint) (*Phase, error) {
	rounds := map[string][]LoadResult{}
	srvCPU := map[string]float64{}
	loadCPU := map[string]float64{}
	failed := map[string]bool{}
	for round := range r.cfg.Rounds {
		order := slices.Clone(eps)
		if round%2 == 1 {
			slices.Reverse(order)
		}
		for _, ep := range order {
			if failed[ep.name] {
				continue
			}
			lr, sc, lc, err := r.load(ctx, title, args, stream, ep)
			if err != nil {
				if !isYardstick(ep.name) || ctx.Err() != nil {
					return nil, err
				}
				r.logf("%v; leaving %s out of this phase", err, ep.name)
				failed[ep.name] = true
				continue
			}
			rounds[ep.name] = append(rounds[ep.name], lr)
			srvCPU[ep.name] += sc
			loadCPU[ep.name] += lc
		}
	}
	p := &Phase{}
	for _, ep := range eps {
		if failed[ep.name] || len(rounds[ep.name]) == 0 {
			continue
		}
		m := mergeRounds(rounds[ep.name])
		m.ServerCPUPerReqUS, m.LoadCPUPerReqUS = perReq(srvCPU[ep.name], m), perReq(loadCPU[ep.name], m)
		p.set(ep.name, &m)
	}
	return p, nil
}

// perReq divides a CPU time in µs by the number of requests sent.
func perReq(cpuUS float64, r LoadResult) float64 {
	if r.Requests == 0 || cpuUS <= 0 {
		return 0
	}
	return round1(cpuUS / float64(r.Requests))
}

// warmUp sends each target a short open loop of plain and streamed
// requests (not measured), so that the idle memory and the first phase see
// warm processes with their upstream connections open.
func (r *runner) warmUp(ctx context.Context, eps []endpoint) {
	d := max(r.cfg.Warmup, 200*time.Millisecond)
	for _, ep := range eps {
		for _, stream := range []bool{false, true} {
			args := []string{"--mode", modeOpen, "--conns", "32", "--duration", d.String(), "--rate", "200"}
			if stream {
				args = append(args, "--stream")
			}
			if _, _, _, err := r.load(ctx, "warm-up", args, stream, ep); err != nil {
				r.logf("%v", err)
			}
		}
	}
}

// load runs one load process against ep and returns its result, the CPU
// time (µs) ep's server used meanwhile and the load process's own CPU time.
func (r *runner) load(ctx context.Context, phase string, args []string, stream bool, ep endpoint) (LoadResult, float64, float64, error) {
	r.logf("%s: %s (%s)", phase, ep.name, ep.addr)
	full := append(append([]string{"load", "--addr", ep.addr, "--body", string(ep.body(stream)),
		"--timeout", r.cfg.Timeout.String()}, args...), ep.loadArgs()...)
	cmd := r.loadCmd(ctx, ep, full)
	var out, errb bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &errb

	before, _ := ep.server.cpuTime()
	err := cmd.Run()
	after, _ := ep.server.cpuTime()
	if err != nil {
		return LoadResult{}, 0, 0, fmt.Errorf("%s %s: load process: %v: %s", phase, ep.name, err, strings.TrimSpace(errb.String()))
	}
	var lr LoadResult
	if err := json.Unmarshal(out.Bytes(), &lr); err != nil {
		return LoadResult{}, 0, 0, fmt.Errorf("%s %s: load output: %w", phase, ep.name, err)
	}
	if lr.Errors > 0 {
		r.logf("%s %s: %d errors, first: %s", phase, ep.name, lr.Errors, lr.FirstError)
	}
	var loadCPU float64
	if st := cmd.ProcessState; st != nil {
		loadCPU = float64((st.UserTime() + st.SystemTime()).Microseconds())
	}
	time.Sleep(300 * time.Millisecond) // let the servers settle between runs
	return lr, float64((after - before).Microseconds()), loadCPU, nil
}

// loadCmd returns the command of a load process against ep.
func (r *runner) loadCmd(ctx context.Context, ep endpoint, args []string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, r.self, args...)
	env := append(os.Environ(), roleEnv+"=load", authEnv+"="+ep.auth)
	if r.cfg.LoadProcs > 0 {
		env = append(env, "GOMAXPROCS="+strconv.Itoa(r.cfg.LoadProcs))
	}
	cmd.Env = env
	cmd.SysProcAttr = childAttr()
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// loadArgs returns the load subcommand's flags for l that differ from its
// defaults (none for the OpenAI lane).
func (l lane) loadArgs() []string {
	var a []string
	if l.path != "/v1/chat/completions" {
		a = append(a, "--path", l.path)
	}
	if l.authHeader != "Authorization" {
		a = append(a, "--auth-header", l.authHeader)
	}
	for _, h := range l.headers {
		a = append(a, "--header", h)
	}
	if l.sse != sseOpenAI {
		a = append(a, "--sse", l.sse)
	}
	return a
}

// anthropicBodies returns the Anthropic Messages equivalents of
// requestBodies: the same message, max_tokens and streaming.
func anthropicBodies(cfg config) (plain, stream []byte) {
	msg := []map[string]string{{"role": "user", "content": "Say hello in one short sentence."}}
	p, _ := json.Marshal(map[string]any{"model": cfg.Model, "max_tokens": cfg.MaxTokens, "messages": msg})
	s, _ := json.Marshal(map[string]any{"model": cfg.Model, "max_tokens": cfg.MaxTokens, "messages": msg, "stream": true})
	return p, s
}

// requestBodies returns the non-streaming and streaming chat bodies.
func requestBodies(cfg config) (plain, stream []byte) {
	msg := []map[string]string{{"role": "user", "content": "Say hello in one short sentence."}}
	p, _ := json.Marshal(map[string]any{"model": cfg.Model, "messages": msg, "max_tokens": cfg.MaxTokens})
	s, _ := json.Marshal(map[string]any{"model": cfg.Model, "messages": msg, "max_tokens": cfg.MaxTokens,
		"stream": true, "stream_options": map[string]bool{"include_usage": true}})
	return p, s
}

// moduleRoot finds the directory of the main module's go.mod.
func moduleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("not inside a Go module; run from the sluice repository or pass --repo")
	}
	return filepath.Dir(gomod), nil
}

// goBuild builds pkg (relative to repo) into out.
func goBuild(ctx context.Context, repo, pkg, out string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, pkg)
	cmd.Dir = repo
	cmd.Env = os.Environ()
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %v\n%s", pkg, err, b)
	}
	return nil
}

// cleanEnv is the harness's environment without Sluice settings, so the
// children only see what the harness sets.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "SLUICE_") || k == "DATABASE_URL" || k == "REDIS_URL" {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// randomHex returns n random bytes, hex-encoded.
func randomHex(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

func ftoa(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

// settingsOf lists the settings that shaped the numbers, for the JSON output.
func settingsOf(c config) map[string]any {
	return map[string]any{
		"conns": c.Conns, "duration": c.Duration.String(), "warmup": c.Warmup.String(),
		"rate": c.Rate, "open_duration": c.OpenDuration.String(), "open_conns": c.OpenConns,
		"stream_rate": c.StreamRate, "stream_duration": c.StreamDuration.String(), "stream_conns": c.StreamConns,
		"timeout": c.Timeout.String(), "mock_latency": c.MockLatency.String(), "mock_ttft": c.MockTTFT.String(),
		"mock_chunk_delay": c.MockChunkDelay.String(), "mock_chunks": c.MockChunks, "model": c.Model, "family": c.Family,
		"max_tokens": c.MaxTokens, "access_log": c.AccessLog, "log_level": c.LogLevel,
		"redis": c.RedisURL != "", "load_gomaxprocs": c.LoadProcs, "quick": c.Quick,
		"stream_high_rate": c.StreamHighRate, "stream_high_conns": c.StreamHighConns, "rounds": c.Rounds,
		"open_streams": c.OpenStreams, "open_streams_chunk_delay": c.OpenStreamsDelay.String(),
	}
}

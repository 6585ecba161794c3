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

// config is the harness's flags.
type config struct {
	Conns          int
	Duration       time.Duration
	Warmup         time.Duration
	Rate           float64
	OpenDuration   time.Duration
	OpenConns      int
	StreamRate     float64
	StreamDuration time.Duration
	StreamConns    int
	Timeout        time.Duration
	MockLatency    time.Duration
	MockTTFT       time.Duration
	MockChunkDelay time.Duration
	MockChunks     int
	Model          string
	Family         string
	MaxTokens      int
	AccessLog      bool
	LogLevel       string
	RedisURL       string
	LoadProcs      int
	Quick          bool

	jsonOut    string
	keyLimits  map[string]any // --key-limits
	model      modelSeed      // --deployments, --model-json
	repo       string
	sluiceBin  string
	mockllmBin string
	keep       bool
	skip       string
}

// parseFlags reads the harness flags; --quick shortens every phase to 2 s.
func parseFlags(args []string, stderr io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("sluice-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: go run ./cmd/sluice-bench [flags]\n\n"+
			"Builds and starts mockllm and sluice on loopback, then measures throughput,\n"+
			"latency, streaming time to first token and memory, direct vs through sluice.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	fs.IntVar(&c.Conns, "conns", 64, "closed loop: concurrent connections")
	fs.DurationVar(&c.Duration, "duration", 10*time.Second, "closed loop: measured duration")
	fs.DurationVar(&c.Warmup, "warmup", time.Second, "closed loop: unmeasured warm-up before each run")
	fs.Float64Var(&c.Rate, "rate", 200, "open loop: requests per second")
	fs.DurationVar(&c.OpenDuration, "open-duration", 10*time.Second, "open loop: duration")
	fs.IntVar(&c.OpenConns, "open-conns", 0, "open loop: connection pool size (0 = automatic)")
	fs.Float64Var(&c.StreamRate, "stream-rate", 50, "streaming: requests per second")
	fs.DurationVar(&c.StreamDuration, "stream-duration", 5*time.Second, "streaming: duration")
	fs.IntVar(&c.StreamConns, "stream-conns", 0, "streaming: connection pool size (0 = automatic)")
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
	fs.BoolVar(&c.Quick, "quick", false, "2 s per phase and short warm-ups (smoke test)")
	fs.StringVar(&c.jsonOut, "json", "", "also write the results as JSON to this file")
	fs.StringVar(&c.repo, "repo", "", "module root to build from (default: found with 'go env GOMOD')")
	fs.StringVar(&c.sluiceBin, "sluice-bin", "", "use this sluice binary instead of building one")
	fs.StringVar(&c.mockllmBin, "mockllm-bin", "", "use this mockllm binary instead of building one")
	fs.BoolVar(&c.keep, "keep", false, "keep the temp dir (logs, database) and print its path")
	fs.StringVar(&c.skip, "skip", "", "comma-separated phases to skip: closed,open,stream")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q", fs.Arg(0))
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
		modelSet := false
		fs.Visit(func(f *flag.Flag) { modelSet = modelSet || f.Name == "model" })
		if !modelSet {
			c.Model = defaultAnthropicModel
		}
	default:
		return c, fmt.Errorf("unknown --family %q: want %s, %s or %s", c.Family, familyOpenAI, familyAnthropicTranslated, familyAnthropicRaw)
	}
	if c.Quick {
		c.Duration, c.OpenDuration, c.StreamDuration = 2*time.Second, 2*time.Second, 2*time.Second
		c.Warmup = min(c.Warmup, 300*time.Millisecond)
	}
	if c.Conns <= 0 || c.Rate <= 0 || c.StreamRate <= 0 || c.Duration <= 0 || c.OpenDuration <= 0 || c.StreamDuration <= 0 {
		return c, errors.New("conns, rates and durations must be positive")
	}
	if c.OpenConns <= 0 {
		c.OpenConns = autoConns(c.Rate)
	}
	if c.StreamConns <= 0 {
		c.StreamConns = autoConns(c.StreamRate)
	}
	return c, nil
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
	Closed    *PhasePair     `json:"closed_loop,omitempty"`
	Open      *PhasePair     `json:"open_loop,omitempty"`
	Stream    *PhasePair     `json:"stream,omitempty"`
	MemIdle   Memory         `json:"sluice_memory_idle"`
	MemAfter  Memory         `json:"sluice_memory_after"`
	Started   time.Time      `json:"started"`
}

// PhasePair is one measurement made direct to the mock and through Sluice.
type PhasePair struct {
	Direct LoadResult `json:"direct"`
	Sluice LoadResult `json:"sluice"`
	// CPU time the server under test used per successful request, in µs:
	// the mock for Direct, sluice (excluding the mock) for Sluice.
	DirectCPUPerReqUS float64 `json:"direct_server_cpu_us_per_req"`
	SluiceCPUPerReqUS float64 `json:"sluice_cpu_us_per_req"`
	// CPU time the load process used per request, in µs.
	DirectLoadCPUPerReqUS float64 `json:"direct_load_cpu_us_per_req"`
	SluiceLoadCPUPerReqUS float64 `json:"sluice_load_cpu_us_per_req"`
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
	total := cfg.Duration + cfg.OpenDuration + cfg.StreamDuration + 3*cfg.Warmup
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
	res := &Results{Settings: settingsOf(cfg), GoVersion: runtime.Version(), CPUs: runtime.NumCPU(), Started: time.Now().UTC()}

	tmp, err := os.MkdirTemp("", "sluice-bench-")
	if err != nil {
		return nil, err
	}
	if cfg.keep {
		logf("temp dir (kept): %s", tmp)
	} else {
		defer os.RemoveAll(tmp)
	}

	sluiceBin, mockBin := cfg.sluiceBin, cfg.mockllmBin
	if sluiceBin == "" || mockBin == "" {
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
		if sluiceBin == "" {
			sluiceBin = filepath.Join(tmp, "sluice")
			logf("building ./cmd/sluice")
			if err := goBuild(ctx, repo, "./cmd/sluice", sluiceBin); err != nil {
				return nil, err
			}
		}
	}

	mockPort, err := freePort()
	if err != nil {
		return nil, err
	}
	proxyPort, err := freePort()
	if err != nil {
		return nil, err
	}
	adminPort, err := freePort()
	if err != nil {
		return nil, err
	}
	mockAddr := "127.0.0.1:" + strconv.Itoa(mockPort)
	proxyAddr := "127.0.0.1:" + strconv.Itoa(proxyPort)
	adminAddr := "127.0.0.1:" + strconv.Itoa(adminPort)

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
	sl, err := startProc("sluice", sluiceBin, []string{"serve"}, env, tmp, filepath.Join(tmp, "sluice.log"))
	if err != nil {
		return nil, err
	}
	defer sl.stop(10 * time.Second)

	if err := waitHTTP(ctx, mock, "http://"+mockAddr+"/healthz", 30*time.Second); err != nil {
		return nil, err
	}
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
	directLane, sluiceLane := lanes(cfg)
	direct := endpoint{name: "direct", addr: mockAddr, lane: directLane, auth: directLane.credential(mockKey), server: mock}
	through := endpoint{name: "sluice", addr: proxyAddr, lane: sluiceLane, auth: sluiceLane.credential(key), server: sl}
	if err := waitRoute(ctx, through, 15*time.Second); err != nil {
		return nil, fmt.Errorf("sluice route not ready: %w (sluice log tail:\n%s)", err, sl.logTail(2000))
	}
	if cfg.Family != familyOpenAI {
		if err := waitRoute(ctx, direct, 5*time.Second); err != nil {
			return nil, fmt.Errorf("mock not answering the direct lane: %w", err)
		}
	}
	if res.MemIdle, err = readMemory(sl.pid()); err != nil {
		logf("memory: %v", err)
	}

	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	r := &runner{self: self, cfg: cfg, logf: logf}
	skip := map[string]bool{}
	for s := range strings.SplitSeq(cfg.skip, ",") {
		skip[strings.TrimSpace(s)] = true
	}

	if !skip["closed"] {
		args := []string{"--mode", modeClosed, "--conns", strconv.Itoa(cfg.Conns),
			"--duration", cfg.Duration.String(), "--warmup", cfg.Warmup.String()}
		if res.Closed, err = r.pair(ctx, "closed loop", args, false, direct, through); err != nil {
			return nil, err
		}
	}
	if !skip["open"] {
		args := []string{"--mode", modeOpen, "--conns", strconv.Itoa(cfg.OpenConns),
			"--duration", cfg.OpenDuration.String(), "--rate", ftoa(cfg.Rate)}
		if res.Open, err = r.pair(ctx, "open loop", args, false, direct, through); err != nil {
			return nil, err
		}
	}
	if !skip["stream"] {
		args := []string{"--mode", modeOpen, "--conns", strconv.Itoa(cfg.StreamConns), "--stream",
			"--duration", cfg.StreamDuration.String(), "--rate", ftoa(cfg.StreamRate)}
		if res.Stream, err = r.pair(ctx, "streaming", args, true, direct, through); err != nil {
			return nil, err
		}
	}
	if res.MemAfter, err = readMemory(sl.pid()); err != nil {
		logf("memory: %v", err)
	}
	if sl.exited() {
		return nil, fmt.Errorf("sluice exited during the run (%v); log tail:\n%s", sl.err, sl.logTail(2000))
	}
	return res, nil
}

// endpoint is one side of a comparison.
type endpoint struct {
	name string
	addr string
	lane
	auth   string // the value of lane.authHeader
	server *proc  // whose CPU time is charged to this side
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
	self string
	cfg  config
	logf func(string, ...any)
}

// pair runs the same load against direct and through, one after the other;
// stream selects the streamed request bodies.
func (r *runner) pair(ctx context.Context, phase string, args []string, stream bool, direct, through endpoint) (*PhasePair, error) {
	p := &PhasePair{}
	var err error
	var srvCPU, loadCPU float64
	if p.Direct, srvCPU, loadCPU, err = r.load(ctx, phase, args, stream, direct); err != nil {
		return nil, err
	}
	p.DirectCPUPerReqUS, p.DirectLoadCPUPerReqUS = perReq(srvCPU, p.Direct), perReq(loadCPU, p.Direct)
	if p.Sluice, srvCPU, loadCPU, err = r.load(ctx, phase, args, stream, through); err != nil {
		return nil, err
	}
	p.SluiceCPUPerReqUS, p.SluiceLoadCPUPerReqUS = perReq(srvCPU, p.Sluice), perReq(loadCPU, p.Sluice)
	return p, nil
}

// perReq divides a CPU time in µs by the number of requests sent.
func perReq(cpuUS float64, r LoadResult) float64 {
	if r.Requests == 0 || cpuUS <= 0 {
		return 0
	}
	return round1(cpuUS / float64(r.Requests))
}

// load runs one load process against ep and returns its result, the CPU
// time (µs) ep's server used meanwhile and the load process's own CPU time.
func (r *runner) load(ctx context.Context, phase string, args []string, stream bool, ep endpoint) (LoadResult, float64, float64, error) {
	r.logf("%s: %s (%s)", phase, ep.name, ep.addr)
	full := append(append([]string{"load", "--addr", ep.addr, "--body", string(ep.body(stream)),
		"--timeout", r.cfg.Timeout.String()}, args...), ep.loadArgs()...)
	cmd := exec.CommandContext(ctx, r.self, full...)
	env := append(os.Environ(), roleEnv+"=load", authEnv+"="+ep.auth)
	if r.cfg.LoadProcs > 0 {
		env = append(env, "GOMAXPROCS="+strconv.Itoa(r.cfg.LoadProcs))
	}
	cmd.Env = env
	var out, errb bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &errb
	cmd.SysProcAttr = childAttr()
	cmd.WaitDelay = 5 * time.Second

	before, _ := cpuTime(ep.server.pid())
	err := cmd.Run()
	after, _ := cpuTime(ep.server.pid())
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
	}
}

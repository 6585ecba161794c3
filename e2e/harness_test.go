package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // PostgreSQL driver for schema setup
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	_ "modernc.org/sqlite" // read usage_records from the gateway's SQLite file
)

// binaries holds the paths of the binaries TestMain builds.
type binaries struct{ sluice, mockllm string }

// bins is set once by TestMain before any test runs and only read after.
var bins binaries

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "sluice-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	root, err := filepath.Abs("..")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	bins = binaries{sluice: filepath.Join(dir, "sluice"), mockllm: filepath.Join(dir, "mockllm")}
	for _, b := range []struct{ out, pkg string }{{bins.sluice, "./cmd/sluice"}, {bins.mockllm, "./cmd/mockllm"}} {
		cmd := exec.Command("go", "build", "-o", b.out, b.pkg)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "e2e: go build %s: %v\n%s", b.pkg, err, out)
			return 1
		}
	}
	return m.Run()
}

// syncBuffer is a bytes.Buffer safe for a child process writer and test readers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// randHex returns n random bytes as hex.
func randHex(t testing.TB, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("rand: %v", err)
	}
	return hex.EncodeToString(b)
}

// freeAddr returns a currently free 127.0.0.1 address.
func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	defer l.Close()
	return l.Addr().String()
}

// proc is a child process with captured output.
type proc struct {
	name   string
	cmd    *exec.Cmd
	stdout *syncBuffer
	stderr *syncBuffer
	done   chan struct{}
	err    error // valid after done is closed
}

func startProc(t testing.TB, name, bin string, args, env []string) *proc {
	t.Helper()
	p := &proc{name: name, stdout: &syncBuffer{}, stderr: &syncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env = env
	p.cmd.Stdout = p.stdout
	p.cmd.Stderr = p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() { p.stop(10 * time.Second) })
	return p
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM and waits up to grace, then kills.
func (p *proc) stop(grace time.Duration) {
	if p.exited() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

func (p *proc) output() string { return p.stdout.String() + p.stderr.String() }

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// ---- mockllm ----

// mockLLM is a running cmd/mockllm.
type mockLLM struct {
	*proc
	URL string // http://127.0.0.1:port
}

// mockStats is GET /_mock/stats.
type mockStats struct {
	Requests    int64             `json:"requests"`
	Completed   int64             `json:"completed"`
	Canceled    int64             `json:"canceled"`
	Aborted     int64             `json:"aborted"`
	InFlight    int64             `json:"in_flight"`
	LastHeaders map[string]string `json:"last_headers"`
	LastBody    string            `json:"last_body"`
}

// startMock starts mockllm on a free port with extra flags.
func startMock(t testing.TB, flags ...string) *mockLLM {
	t.Helper()
	args := append([]string{"--listen", "127.0.0.1:0"}, flags...)
	p := startProc(t, "mockllm", bins.mockllm, args, os.Environ())
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		out := p.stderr.String()
		if i := strings.Index(out, "listening on http://"); i >= 0 {
			rest := out[i+len("listening on "):]
			if j := strings.IndexByte(rest, '\n'); j >= 0 {
				return &mockLLM{proc: p, URL: strings.TrimSpace(rest[:j])}
			}
		}
		if p.exited() {
			t.Fatalf("mockllm exited: %v\n%s", p.err, p.output())
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("mockllm did not start:\n%s", p.output())
	return nil
}

func (m *mockLLM) stats(t testing.TB) mockStats {
	t.Helper()
	resp, err := http.Get(m.URL + "/_mock/stats")
	if err != nil {
		t.Fatalf("mock stats: %v", err)
	}
	defer resp.Body.Close()
	var s mockStats
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		t.Fatalf("mock stats: %v", err)
	}
	return s
}

// ---- sluice ----

// gwOptions configures a gateway process.
type gwOptions struct {
	DatabaseURL  string // "" = SQLite in DataDir
	RedisURL     string
	DataDir      string // "" = fresh t.TempDir()
	MaxBodyBytes int64
	AdminKey     string // "" = fresh random key
	Env          []string
}

// gateway is a running sluice.
type gateway struct {
	*proc
	t         testing.TB
	opts      gwOptions
	Proxy     string // http://127.0.0.1:P
	Admin     string // http://127.0.0.1:Q
	AdminKey  string
	DataDir   string
	AccessLog string

	mu          sync.Mutex
	adminBodies []string // every admin response body, for secret checks
}

// startGateway starts sluice and waits for /readyz on both listeners.
func startGateway(t testing.TB, o gwOptions) *gateway {
	t.Helper()
	if o.DataDir == "" {
		o.DataDir = t.TempDir()
	}
	if o.AdminKey == "" {
		o.AdminKey = randHex(t, 32)
	}
	g := &gateway{t: t, opts: o, AdminKey: o.AdminKey, DataDir: o.DataDir}
	g.AccessLog = filepath.Join(o.DataDir, "access.log")
	for attempt := 0; ; attempt++ {
		pAddr, aAddr := freeAddr(t), freeAddr(t)
		env := append(os.Environ(),
			"SLUICE_LISTEN="+pAddr,
			"SLUICE_ADMIN_LISTEN="+aAddr,
			"SLUICE_TLS_LISTEN=127.0.0.1:0",
			"SLUICE_ADMIN_KEY="+o.AdminKey,
			"SLUICE_DATA_DIR="+o.DataDir,
			"SLUICE_ACCESS_LOG="+g.AccessLog,
			"SLUICE_SHUTDOWN_TIMEOUT=20s",
			"DATABASE_URL="+o.DatabaseURL,
			"REDIS_URL="+o.RedisURL,
			"REDIS_CONN_STRING=",
		)
		if o.MaxBodyBytes > 0 {
			env = append(env, fmt.Sprintf("SLUICE_MAX_BODY_BYTES=%d", o.MaxBodyBytes))
		}
		env = append(env, o.Env...)
		p := startProc(t, "sluice", bins.sluice, []string{"serve"}, env)
		g.proc, g.Proxy, g.Admin = p, "http://"+pAddr, "http://"+aAddr
		err := g.waitReady(20 * time.Second)
		if err == nil {
			t.Cleanup(func() {
				if t.Failed() {
					t.Logf("sluice %s output (tail):\n%s", g.Proxy, tail(p.output(), 3000))
				}
			})
			return g
		}
		// A port taken between freeAddr and the bind: retry with new ports.
		if attempt < 2 && p.exited() && strings.Contains(p.output(), "address already in use") {
			continue
		}
		t.Fatalf("sluice not ready: %v\noutput:\n%s", err, tail(p.output(), 4000))
	}
}

func (g *gateway) waitReady(timeout time.Duration) error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(timeout)
	for _, base := range []string{g.Proxy, g.Admin} {
		for {
			resp, err := client.Get(base + "/readyz")
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					break
				}
				err = fmt.Errorf("status %d", resp.StatusCode)
			}
			if g.exited() {
				return fmt.Errorf("sluice exited (%v)", g.err)
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s/readyz: %v", base, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return nil
}

// logs returns everything the process wrote plus the access log.
func (g *gateway) logs() string {
	b, _ := os.ReadFile(g.AccessLog)
	return g.output() + "\n" + string(b)
}

// adminDo sends an admin request. body may be nil, []byte or a value to encode.
func (g *gateway) adminDo(t testing.TB, method, path string, body any) (int, []byte) {
	t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		r = bytes.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		r = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, g.Admin+path, r)
	if err != nil {
		t.Fatalf("admin request: %v", err)
	}
	if r != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("X-API-KEY", g.AdminKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read: %v", method, path, err)
	}
	g.mu.Lock()
	g.adminBodies = append(g.adminBodies, string(data))
	g.mu.Unlock()
	return resp.StatusCode, data
}

// adminOK is adminDo that fails the test unless the status is 2xx, and
// decodes the answer into out when not nil.
func (g *gateway) adminOK(t testing.TB, method, path string, body, out any) {
	t.Helper()
	code, data := g.adminDo(t, method, path, body)
	if code/100 != 2 {
		t.Fatalf("%s %s: status %d: %s", method, path, code, data)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("%s %s: decode %s: %v", method, path, data, err)
		}
	}
}

// provider is the body of POST /admin/providers.
type provider struct {
	Name     string            `json:"name"`
	Type     string            `json:"type"`
	BaseURL  string            `json:"base_url"`
	APIKey   string            `json:"api_key,omitempty"`
	Headers  map[string]string `json:"headers,omitempty"`
	Timeouts *timeouts         `json:"timeouts,omitempty"`
}

type timeouts struct {
	Connect   string `json:"connect,omitempty"`
	FirstByte string `json:"first_byte,omitempty"`
	Idle      string `json:"idle,omitempty"`
}

// addProvider creates an openai-compatible provider pointing at base (a mock URL without /v1).
func (g *gateway) addProvider(t testing.TB, p provider) {
	t.Helper()
	if p.Type == "" {
		p.Type = "openai-compatible"
	}
	g.adminOK(t, http.MethodPost, "/admin/providers", p, nil)
}

// deployment is one entry of a model's deployments.
type deployment struct {
	Provider    string  `json:"provider"`
	Model       string  `json:"model"`
	Weight      int     `json:"weight"`
	InputPrice  float64 `json:"input_price_per_mtok"`
	OutputPrice float64 `json:"output_price_per_mtok"`
}

// addModel creates a model served by the given providers (upstream model
// name = name, default prices).
func (g *gateway) addModel(t testing.TB, name string, providers ...string) {
	t.Helper()
	deps := make([]deployment, 0, len(providers))
	for _, p := range providers {
		deps = append(deps, deployment{Provider: p, Model: name, Weight: 1, InputPrice: 0.15, OutputPrice: 0.6})
	}
	g.adminOK(t, http.MethodPost, "/admin/models", map[string]any{"name": name, "deployments": deps}, nil)
}

// createdKey is the answer of POST /admin/keys.
type createdKey struct {
	ID     string `json:"id"`
	Key    string `json:"key"`
	Prefix string `json:"prefix"`
}

// addKey creates a Sluice key; models nil = unrestricted.
func (g *gateway) addKey(t testing.TB, name string, models []string) createdKey {
	t.Helper()
	body := map[string]any{"name": name}
	if models != nil {
		body["models"] = models
	}
	var k createdKey
	g.adminOK(t, http.MethodPost, "/admin/keys", body, &k)
	if k.ID == "" || !strings.HasPrefix(k.Key, "sk-") {
		t.Fatalf("POST /admin/keys: unexpected answer %+v", k)
	}
	return k
}

// client returns an openai-go client for the proxy with key.
func (g *gateway) client(key string, opts ...option.RequestOption) *openai.Client {
	base := []option.RequestOption{
		option.WithBaseURL(g.Proxy + "/v1/"),
		option.WithAPIKey(key),
		option.WithMaxRetries(0),
		option.WithRequestTimeout(30 * time.Second),
	}
	c := openai.NewClient(append(base, opts...)...)
	return &c
}

// usageRow is one item of GET /admin/usage.
type usageRow struct {
	Group            string  `json:"group"`
	Requests         int64   `json:"requests"`
	PromptTokens     int64   `json:"prompt_tokens"`
	CompletionTokens int64   `json:"completion_tokens"`
	CachedTokens     int64   `json:"cached_tokens"`
	Cost             float64 `json:"cost"`
	Errors           int64   `json:"errors"`
}

// usage returns GET /admin/usage?group_by=by for the last hour (and a minute ahead).
func (g *gateway) usage(t testing.TB, by string) []usageRow {
	t.Helper()
	q := url.Values{}
	q.Set("group_by", by)
	q.Set("from", time.Now().Add(-time.Hour).UTC().Format(time.RFC3339))
	q.Set("to", time.Now().Add(time.Minute).UTC().Format(time.RFC3339))
	code, data := g.adminDo(t, http.MethodGet, "/admin/usage?"+q.Encode(), nil)
	if code != http.StatusOK {
		t.Fatalf("GET /admin/usage: status %d: %s", code, data)
	}
	var env struct {
		Items []usageRow `json:"items"`
	}
	if err := json.Unmarshal(data, &env); err != nil {
		t.Fatalf("GET /admin/usage: decode %s: %v", data, err)
	}
	return env.Items
}

// waitUsage polls /admin/usage until ok accepts the row of group, or fails after 4 s.
func (g *gateway) waitUsage(t testing.TB, by, group string, ok func(usageRow) bool) usageRow {
	t.Helper()
	deadline := time.Now().Add(4 * time.Second)
	var last []usageRow
	for {
		last = g.usage(t, by)
		for _, r := range last {
			if r.Group == group && ok(r) {
				return r
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("usage group_by=%s: no acceptable row for %q within 4s; rows: %+v", by, group, last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// metrics returns the /metrics text from the admin listener.
func (g *gateway) metrics(t testing.TB) string {
	t.Helper()
	code, data := g.adminDo(t, http.MethodGet, "/metrics", nil)
	if code != http.StatusOK {
		t.Fatalf("GET /metrics: status %d: %.300s", code, data)
	}
	return string(data)
}

// usageRecord is one row of usage_records read from the SQLite file.
type usageRecord struct {
	RequestID        string // the gateway's id
	ClientRequestID  string // the client's X-Request-Id
	Model, Provider  string
	PromptTokens     int64
	CompletionTokens int64
	HTTPStatus       int64
	Status           string
	ErrorType        string
	Stream           bool
	Estimated        bool
}

// sqliteUsage reads usage_records straight from the gateway's SQLite file.
func (g *gateway) sqliteUsage(t testing.TB) []usageRecord {
	t.Helper()
	dsn := "file:" + filepath.Join(g.DataDir, "sluice.db") + "?mode=ro&_pragma=busy_timeout(5000)"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		t.Fatalf("open sqlite: %v", err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT request_id, client_request_id, model, provider, prompt_tokens, completion_tokens, http_status, status, error_type, stream, estimated FROM usage_records ORDER BY ts`)
	if err != nil {
		t.Fatalf("query usage_records: %v", err)
	}
	defer rows.Close()
	var out []usageRecord
	for rows.Next() {
		var r usageRecord
		if err := rows.Scan(&r.RequestID, &r.ClientRequestID, &r.Model, &r.Provider, &r.PromptTokens, &r.CompletionTokens, &r.HTTPStatus, &r.Status, &r.ErrorType, &r.Stream, &r.Estimated); err != nil {
			t.Fatalf("scan usage_records: %v", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("usage_records: %v", err)
	}
	return out
}

// waitRecord polls the SQLite usage rows until one has client request id
// id (the X-Request-Id the test sent), or fails after 4 s.
func (g *gateway) waitRecord(t testing.TB, id string) usageRecord {
	t.Helper()
	deadline := time.Now().Add(4 * time.Second)
	for {
		for _, r := range g.sqliteUsage(t) {
			if r.ClientRequestID == id {
				return r
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no usage row for request %q within 4s; rows: %+v", id, g.sqliteUsage(t))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// ---- fixtures ----

// fixture is a gateway with one mock provider "mock", model gpt-4o-mini on
// it and an unrestricted key.
type fixture struct {
	gw   *gateway
	mock *mockLLM
	key  createdKey
}

func newFixture(t testing.TB, o gwOptions, mockFlags ...string) *fixture {
	t.Helper()
	m := startMock(t, mockFlags...)
	g := startGateway(t, o)
	g.addProvider(t, provider{Name: "mock", BaseURL: m.URL + "/v1", APIKey: "sk-upstream-" + randHex(t, 8)})
	g.addModel(t, "gpt-4o-mini", "mock")
	k := g.addKey(t, "demo", nil)
	return &fixture{gw: g, mock: m, key: k}
}

// ---- services ----

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// serviceUnavailable skips or fails (SLUICE_REQUIRE_SERVICES=1) the test.
func serviceUnavailable(t testing.TB, what string, err error) {
	t.Helper()
	if os.Getenv("SLUICE_REQUIRE_SERVICES") == "1" {
		t.Fatalf("%s unreachable: %v", what, err)
	}
	t.Skipf("%s unreachable: %v", what, err)
}

// freshPostgres creates a new schema in SLUICE_TEST_DATABASE_URL and returns
// a URL whose search_path selects it. The schema is dropped at cleanup.
func freshPostgres(t testing.TB) string {
	t.Helper()
	base := envOr("SLUICE_TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test?sslmode=disable")
	db, err := sql.Open("pgx", base)
	if err != nil {
		serviceUnavailable(t, "PostgreSQL", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		serviceUnavailable(t, "PostgreSQL", err)
	}
	schema := "sluice_e2e_" + randHex(t, 6)
	if _, err := db.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		db.Close()
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, _ = db.ExecContext(ctx, "DROP SCHEMA "+schema+" CASCADE")
		db.Close()
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("SLUICE_TEST_DATABASE_URL: invalid URL")
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// redisURL returns SLUICE_TEST_REDIS_URL after checking it answers PING.
func redisURL(t testing.TB) string {
	t.Helper()
	raw := envOr("SLUICE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatalf("SLUICE_TEST_REDIS_URL: invalid URL")
	}
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), "6379")
	}
	conn, err := net.DialTimeout("tcp", host, 2*time.Second)
	if err != nil {
		serviceUnavailable(t, "Redis", err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
	if u.User != nil {
		// Authenticated Redis: let sluice's own /readyz judge it.
		return raw
	}
	if _, err := conn.Write([]byte("PING\r\n")); err != nil {
		serviceUnavailable(t, "Redis", err)
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "+PONG") {
		serviceUnavailable(t, "Redis", fmt.Errorf("PING answered %q, %v", line, err))
	}
	return raw
}

// ---- client helpers ----

// testCtx returns a context bounded by d and cancelled at cleanup.
func testCtx(t testing.TB, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// chatParams is a one-message chat request for model.
func chatParams(model, text string) openai.ChatCompletionNewParams {
	return openai.ChatCompletionNewParams{
		Model:    openai.ChatModel(model),
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage(text)},
	}
}

// wantAPIError fails unless err is an *openai.Error with status (and code, when not "").
func wantAPIError(t testing.TB, err error, status int, code string) *openai.Error {
	t.Helper()
	if err == nil {
		t.Fatalf("want API error %d %q, got success", status, code)
	}
	var apierr *openai.Error
	if !errors.As(err, &apierr) {
		t.Fatalf("want *openai.Error %d %q, got %T: %v", status, code, err, err)
	}
	if apierr.StatusCode != status || (code != "" && apierr.Code != code) {
		t.Fatalf("want %d %q, got %d code=%q type=%q message=%q", status, code, apierr.StatusCode, apierr.Code, apierr.Type, apierr.Message)
	}
	if apierr.Message == "" || apierr.Type == "" {
		t.Errorf("error shape incomplete: %s", apierr.RawJSON())
	}
	return apierr
}

// addRoute creates provider name on base (a mock URL) with extra headers
// and timeouts, and a model of the same name deployed on it.
func (g *gateway) addRoute(t testing.TB, name, base string, headers map[string]string, to *timeouts) {
	t.Helper()
	g.addProvider(t, provider{Name: name, BaseURL: base + "/v1", APIKey: "sk-upstream-" + randHex(t, 8), Headers: headers, Timeouts: to})
	g.addModel(t, name, name)
}

// bodyRecorder is an openai-go middleware that keeps a copy of every
// response body (streams included, as they are read).
type bodyRecorder struct {
	mu     sync.Mutex
	bodies []*syncBuffer
}

func (b *bodyRecorder) middleware() option.RequestOption {
	return option.WithMiddleware(func(req *http.Request, next option.MiddlewareNext) (*http.Response, error) {
		resp, err := next(req)
		if err != nil || resp == nil || resp.Body == nil {
			return resp, err
		}
		buf := &syncBuffer{}
		b.mu.Lock()
		b.bodies = append(b.bodies, buf)
		b.mu.Unlock()
		resp.Body = struct {
			io.Reader
			io.Closer
		}{io.TeeReader(resp.Body, buf), resp.Body}
		return resp, nil
	})
}

func (b *bodyRecorder) all() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var sb strings.Builder
	for _, x := range b.bodies {
		sb.WriteString(x.String())
		sb.WriteByte('\n')
	}
	return sb.String()
}

func (b *bodyRecorder) last() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.bodies) == 0 {
		return ""
	}
	return b.bodies[len(b.bodies)-1].String()
}

package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
)

// quotaCluster is n gateways sharing one PostgreSQL schema and one Redis,
// with a mock provider behind the model "m" at the given prices.
type quotaCluster struct {
	gws  []*gateway
	mock *mockLLM
}

// newQuotaCluster starts n gateways on a fresh schema and redis.
// quotaTimeout is SLUICE_QUOTA_TIMEOUT: the exactness tests raise it so
// that a CI machine starved by the whole suite running in parallel is not
// taken for a failing Redis (every timeout is a fail-open decision, and
// fail-open is not exact); the outage test keeps the default.
func newQuotaCluster(t *testing.T, n int, redis, quotaTimeout string, inPrice, outPrice float64, mockFlags ...string) *quotaCluster {
	t.Helper()
	m := startMock(t, mockFlags...)
	shared := gwOptions{DatabaseURL: freshPostgres(t), RedisURL: redis, AdminKey: randHex(t, 32),
		Env: []string{"SLUICE_ENCRYPTION_KEY=" + randHex(t, 32), "SLUICE_ACCESS_LOG=off"}}
	if quotaTimeout != "" {
		shared.Env = append(shared.Env, "SLUICE_QUOTA_TIMEOUT="+quotaTimeout)
	}
	qc := &quotaCluster{mock: m}
	for range n {
		qc.gws = append(qc.gws, startGateway(t, shared))
	}
	a := qc.gws[0]
	a.addProvider(t, provider{Name: "mock", BaseURL: m.URL + "/v1", APIKey: "sk-upstream-" + randHex(t, 8)})
	a.adminOK(t, http.MethodPost, "/admin/models", map[string]any{"name": "m", "deployments": []deployment{
		{Provider: "mock", Model: "m", Weight: 1, InputPrice: inPrice, OutputPrice: outPrice}}}, nil)
	return qc
}

// limitedKey creates a key with the given limit fields.
func (qc *quotaCluster) limitedKey(t *testing.T, name string, limits map[string]any) createdKey {
	t.Helper()
	body := map[string]any{"name": name}
	for k, v := range limits {
		body[k] = v
	}
	var k createdKey
	qc.gws[0].adminOK(t, http.MethodPost, "/admin/keys", body, &k)
	for _, g := range qc.gws {
		g.waitKeyUsable(t, k.Key)
	}
	return k
}

// waitKeyUsable waits until g accepts key (GET /v1/models answers 200):
// a key created through one replica reaches the others within a second.
func (g *gateway) waitKeyUsable(t testing.TB, key string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		req, _ := http.NewRequest(http.MethodGet, g.Proxy+"/v1/models", nil)
		req.Header.Set("Authorization", "Bearer "+key)
		code := 0
		if resp, err := http.DefaultClient.Do(req); err == nil {
			code = resp.StatusCode
			resp.Body.Close()
		}
		if code == http.StatusOK {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("key not usable on %s within 5s (status %d)", g.Proxy, code)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// burstOutcome counts the answers of a burst.
type burstOutcome struct {
	ok, limited, other atomic.Int64
	mu                 sync.Mutex
	otherErr           []string
	firstLimit         *openai.Error
}

// burst sends n concurrent chat requests spread over the gateways and
// returns what came back and how long the burst took.
func (qc *quotaCluster) burst(t *testing.T, key string, n int, params openai.ChatCompletionNewParams) (*burstOutcome, time.Duration) {
	t.Helper()
	ctx := testCtx(t, 2*time.Minute)
	var out burstOutcome
	clients := make([]*openai.Client, len(qc.gws))
	for i, g := range qc.gws {
		clients[i] = g.client(key, option.WithRequestTimeout(90*time.Second))
	}
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			_, err := clients[i%len(clients)].Chat.Completions.New(ctx, params)
			var apierr *openai.Error
			switch {
			case err == nil:
				out.ok.Add(1)
			case errors.As(err, &apierr) && apierr.StatusCode == http.StatusTooManyRequests:
				out.limited.Add(1)
				out.mu.Lock()
				if out.firstLimit == nil {
					out.firstLimit = apierr
				}
				out.mu.Unlock()
			default:
				out.other.Add(1)
				out.mu.Lock()
				if len(out.otherErr) < 5 {
					out.otherErr = append(out.otherErr, describe(err))
				}
				out.mu.Unlock()
			}
		})
	}
	t0 := time.Now()
	close(start)
	wg.Wait()
	return &out, time.Since(t0)
}

// TestQuotaRPMExactAcrossReplicas: three gateways on one Redis admit a
// burst of 500 concurrent requests against RPM 100 at most 100 plus the
// refill during the burst, and no fewer than 100.
func TestQuotaRPMExactAcrossReplicas(t *testing.T) {
	t.Parallel()
	qc := newQuotaCluster(t, 3, redisURL(t), "5s", 0.15, 0.6)
	k := qc.limitedKey(t, "rpm100", map[string]any{"rpm": 100})
	out, took := qc.burst(t, k.Key, 500, chatParams("m", "hello"))
	refill := int64(math.Ceil(took.Seconds() * 100 / 60))
	t.Logf("RPM 100, 500 concurrent over 3 replicas in %s: %d admitted, %d limited, %d other (refill allowance %d)",
		took.Round(time.Millisecond), out.ok.Load(), out.limited.Load(), out.other.Load(), refill)
	for _, g := range qc.gws {
		m := g.metrics(t)
		t.Logf("%s: quota checks ≤1ms %v, ≤10ms %v, ≤50ms %v, all %v; fail-open %v", g.Proxy,
			metricValue(m, `sluice_quota_check_seconds_bucket{le="0.001"}`), metricValue(m, `sluice_quota_check_seconds_bucket{le="0.01"}`),
			metricValue(m, `sluice_quota_check_seconds_bucket{le="0.05"}`), metricValue(m, `sluice_quota_check_seconds_count`),
			metricValue(m, `sluice_quota_decisions_total{result="admitted_fail_open"}`))
	}
	if out.other.Load() != 0 {
		t.Fatalf("unexpected errors: %v", out.otherErr)
	}
	if out.ok.Load() < 100 || out.ok.Load() > 100+refill {
		t.Fatalf("admitted %d, want between 100 and %d", out.ok.Load(), 100+refill)
	}
	e := out.firstLimit
	h := e.Response.Header
	ra, _ := strconv.Atoi(h.Get("Retry-After"))
	if e.Type != "rate_limit_error" || e.Code != "rate_limit_exceeded" || ra < 1 || ra > 60 ||
		h.Get("X-Ratelimit-Limit-Requests") != "100" || h.Get("X-Ratelimit-Remaining-Requests") != "0" || h.Get("X-Ratelimit-Reset-Requests") == "" {
		t.Fatalf("429: type %q code %q headers %v body %s", e.Type, e.Code, h, e.RawJSON())
	}
	// Admitted answers carry the headers too.
	var resp *http.Response
	time.Sleep(1300 * time.Millisecond) // two requests' worth of refill
	if _, err := qc.gws[1].client(k.Key).Chat.Completions.New(testCtx(t, 30*time.Second), chatParams("m", "again"), option.WithResponseInto(&resp)); err != nil {
		t.Fatalf("after refill: %v", describe(err))
	}
	if rem, err := strconv.Atoi(resp.Header.Get("X-Ratelimit-Remaining-Requests")); resp.Header.Get("X-Ratelimit-Limit-Requests") != "100" || err != nil || rem > 3 {
		t.Fatalf("headers of an admitted answer: %v", resp.Header)
	}
}

// TestQuotaTPMExactAcrossReplicas: TPM 10,000 with 500-token
// reservations admits at most 20 (plus refill) across three replicas.
func TestQuotaTPMExactAcrossReplicas(t *testing.T) {
	t.Parallel()
	// Slow answers: every admission of the burst is decided before any
	// settlement gives unused tokens back.
	qc := newQuotaCluster(t, 3, redisURL(t), "5s", 0.15, 0.6, "--latency", "4s")
	// Calibrate: what does this prompt reserve besides max_tokens?
	cal := qc.limitedKey(t, "calibrate", map[string]any{"tpm": 1_000_000})
	var resp *http.Response
	p := chatParams("m", "hello")
	p.MaxTokens = openai.Int(100)
	if _, err := qc.gws[0].client(cal.Key).Chat.Completions.New(testCtx(t, 30*time.Second), p, option.WithResponseInto(&resp)); err != nil {
		t.Fatal(describe(err))
	}
	rem, err := strconv.Atoi(resp.Header.Get("X-Ratelimit-Remaining-Tokens"))
	if err != nil {
		t.Fatalf("x-ratelimit-remaining-tokens: %v (headers %v)", err, resp.Header)
	}
	prompt := 1_000_000 - rem - 100
	if prompt <= 0 || prompt >= 100 {
		t.Fatalf("prompt reservation %d", prompt)
	}
	k := qc.limitedKey(t, "tpm10k", map[string]any{"tpm": 10_000})
	p.MaxTokens = openai.Int(int64(500 - prompt)) // 500 tokens reserved per request
	out, took := qc.burst(t, k.Key, 500, p)
	refill := int64(math.Ceil(took.Seconds() * 10_000 / 60 / 500))
	t.Logf("TPM 10000 with 500-token reservations, 500 concurrent over 3 replicas in %s: %d admitted, %d limited, %d other (refill allowance %d)",
		took.Round(time.Millisecond), out.ok.Load(), out.limited.Load(), out.other.Load(), refill)
	if out.other.Load() != 0 {
		t.Fatalf("unexpected errors: %v", out.otherErr)
	}
	if out.ok.Load() < 20 || out.ok.Load() > 20+refill {
		t.Fatalf("admitted %d, want between 20 and %d", out.ok.Load(), 20+refill)
	}
	if e := out.firstLimit; e.Response.Header.Get("X-Ratelimit-Limit-Tokens") != "10000" {
		t.Fatalf("429 headers %v", e.Response.Header)
	}
}

// quotaRedisKey is the Redis hash of a key's quota counters (quota.Subject.Tag).
func quotaRedisKey(keyID string) string {
	h := sha256.Sum256([]byte(keyID))
	return "sluice:q:{key:" + hex.EncodeToString(h[:10]) + "}"
}

// TestQuotaBudgetHoldsAcrossReplicas: a $1 budget spent from three
// replicas ends at no more than $1.00, the refusal is insufficient_quota
// (which the official SDK does not retry), the spend survives its
// counters vanishing from Redis (rebuilt from the usage records), and
// GET /admin/keys/{id} shows it.
func TestQuotaBudgetHoldsAcrossReplicas(t *testing.T) {
	t.Parallel()
	// $0.002 per prompt token, $0.01 per completion token: with
	// max_tokens 10 a request reserves about $0.12 and costs about $0.06.
	qc := newQuotaCluster(t, 3, redisURL(t), "5s", 2000, 10_000)
	k := qc.limitedKey(t, "budget", map[string]any{"budget": map[string]any{"usd": 1, "period": "month"}})
	p := chatParams("m", "hello budget")
	p.MaxTokens = openai.Int(10)
	var ok, limited int
	for round := 0; round < 10 && limited == 0; round++ {
		out, _ := qc.burst(t, k.Key, 12, p)
		if out.other.Load() != 0 {
			t.Fatalf("unexpected errors: %v", out.otherErr)
		}
		ok += int(out.ok.Load())
		if out.limited.Load() > 0 {
			limited += int(out.limited.Load())
			e := out.firstLimit
			if e.Type != "insufficient_quota" || e.Code != "insufficient_quota" || e.Response.Header.Get("X-Should-Retry") != "false" {
				t.Fatalf("budget refusal: %s headers %v", e.RawJSON(), e.Response.Header)
			}
		}
	}
	if limited == 0 {
		t.Fatal("the budget never refused")
	}
	// Settled requests gave back what they reserved beyond their cost:
	// use it up one request at a time, on every replica in turn.
	for i := 0; ; i++ {
		_, err := qc.gws[i%3].client(k.Key).Chat.Completions.New(testCtx(t, 30*time.Second), p)
		if err != nil {
			wantAPIError(t, err, http.StatusTooManyRequests, "insufficient_quota")
			break
		}
		ok++
		if i > 50 {
			t.Fatal("the budget never ran out")
		}
	}
	spent := func() float64 {
		var row usageRow
		for _, r := range qc.gws[0].usage(t, "key") {
			if r.Group == k.ID {
				row = r
			}
		}
		return row.Cost
	}
	// Every admitted request is recorded; the sum is within the budget.
	qc.gws[0].waitUsage(t, "key", k.ID, func(r usageRow) bool { return r.Requests-r.Errors >= int64(ok) })
	total := spent()
	t.Logf("$1 budget: %d admitted, %d refused, $%.6f spent", ok, limited, total)
	if total > 1.0 || total < 0.85 {
		t.Fatalf("spent $%.6f of a $1 budget, want ≤ $1.00 (and most of it used)", total)
	}

	// The official SDK obeys x-should-retry: false: one attempt only.
	before := qc.mock.stats(t)
	c := qc.gws[2].client(k.Key, option.WithMaxRetries(3))
	_, err := c.Chat.Completions.New(testCtx(t, 30*time.Second), p)
	wantAPIError(t, err, http.StatusTooManyRequests, "insufficient_quota")
	if after := qc.mock.stats(t); after.Requests != before.Requests {
		t.Fatalf("a refused request reached the upstream")
	}

	// Lose the counters (a flushed or restarted Redis): the budget is
	// rebuilt from the usage records, not reset.
	rdb := dialRedis(t, redisURL(t))
	rdb.do(t, "DEL", quotaRedisKey(k.ID), quotaRedisKey(k.ID)+":r")
	_, err = qc.gws[1].client(k.Key).Chat.Completions.New(testCtx(t, 30*time.Second), p)
	wantAPIError(t, err, http.StatusTooManyRequests, "insufficient_quota")
	if !containsMetric(t, qc.gws[1], "sluice_quota_budget_rebuilds_total") {
		t.Fatal("no rebuild counted")
	}

	// The admin API shows the consumption.
	var view struct {
		Quota struct {
			Budget struct {
				Period   string  `json:"period"`
				LimitUSD float64 `json:"limit_usd"`
				SpentUSD float64 `json:"spent_usd"`
			} `json:"budget"`
		} `json:"quota"`
	}
	qc.gws[0].adminOK(t, http.MethodGet, "/admin/keys/"+k.ID, nil, &view)
	if b := view.Quota.Budget; b.Period != "month" || b.LimitUSD != 1 || math.Abs(b.SpentUSD-total) > 0.0001 {
		t.Fatalf("GET /admin/keys/{id} quota: %+v, usage records say $%.6f", b, total)
	}
}

func containsMetric(t *testing.T, g *gateway, name string) bool {
	return metricValue(g.metrics(t), name) > 0
}

// redisConn is a minimal RESP client for test setup (no go-redis in e2e).
type redisConn struct{ c net.Conn }

func dialRedis(t *testing.T, raw string) *redisConn {
	t.Helper()
	u := raw[len("redis://"):]
	if i := strings.IndexByte(u, '/'); i >= 0 {
		u = u[:i]
	}
	c, err := net.DialTimeout("tcp", u, 2*time.Second)
	if err != nil {
		t.Fatalf("redis: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return &redisConn{c: c}
}

func (r *redisConn) do(t *testing.T, args ...string) string {
	t.Helper()
	b := fmt.Appendf(nil, "*%d\r\n", len(args))
	for _, a := range args {
		b = fmt.Appendf(b, "$%d\r\n%s\r\n", len(a), a)
	}
	_ = r.c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := r.c.Write(b); err != nil {
		t.Fatalf("redis write: %v", err)
	}
	var buf [512]byte
	n, err := r.c.Read(buf[:])
	if err != nil {
		t.Fatalf("redis read: %v", err)
	}
	return string(buf[:n])
}

// privateRedis runs a redis-server of its own on a free port, which the
// test may kill and restart.
type privateRedis struct {
	t    *testing.T
	addr string
	cmd  *exec.Cmd
}

func startPrivateRedis(t *testing.T, addr string) *privateRedis {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		serviceUnavailable(t, "redis-server binary", err)
	}
	_, port, _ := net.SplitHostPort(addr)
	cmd := exec.Command(bin, "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", t.TempDir())
	if err := cmd.Start(); err != nil {
		t.Fatalf("redis-server: %v", err)
	}
	r := &privateRedis{t: t, addr: addr, cmd: cmd}
	t.Cleanup(r.kill)
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("private redis-server not up: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (r *privateRedis) kill() {
	if r.cmd != nil && r.cmd.Process != nil {
		_ = r.cmd.Process.Signal(os.Kill)
		_ = r.cmd.Wait()
		r.cmd = nil
	}
}

// TestQuotaRedisOutage: Redis gone for 10 s under load. Rate limits fail
// open (no 500s, no refusals beyond the local share), budgets fail closed
// with 503 and Retry-After, every request is still recorded, and within
// 2 s of Redis returning budgets are admitted again, their spend rebuilt
// from the usage records (the restarted Redis is empty).
func TestQuotaRedisOutage(t *testing.T) {
	t.Parallel()
	addr := freeAddr(t)
	rs := startPrivateRedis(t, addr)
	qc := newQuotaCluster(t, 2, "redis://"+addr+"/0", "", 0.15, 0.6)
	rate := qc.limitedKey(t, "rate", map[string]any{"rpm": 100_000})
	budget := qc.limitedKey(t, "budget", map[string]any{"budget": map[string]any{"usd": 100}})

	type tally struct{ ok, unavailable, other atomic.Int64 }
	var rateT, budgetT tally
	var otherErrs sync.Map
	var lastBudget503, firstBudgetOKAfter atomic.Int64 // unix nanos
	var redisBack atomic.Int64
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	var wg sync.WaitGroup
	send := func(g *gateway, key string, tl *tally, isBudget bool) {
		c := g.client(key, option.WithRequestTimeout(10*time.Second))
		for ctx.Err() == nil {
			_, err := c.Chat.Completions.New(context.Background(), chatParams("m", "outage"))
			now := time.Now().UnixNano()
			var apierr *openai.Error
			switch {
			case err == nil:
				tl.ok.Add(1)
				if isBudget && redisBack.Load() != 0 && firstBudgetOKAfter.Load() == 0 {
					firstBudgetOKAfter.CompareAndSwap(0, now)
				}
			case errors.As(err, &apierr) && apierr.StatusCode == http.StatusServiceUnavailable && apierr.Code == "quota_unavailable":
				tl.unavailable.Add(1)
				if isBudget {
					lastBudget503.Store(now)
				}
				if apierr.Response.Header.Get("Retry-After") == "" {
					otherErrs.Store("503 without Retry-After", true)
				}
			default:
				tl.other.Add(1)
				otherErrs.Store(describe(err), true)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	for _, g := range qc.gws {
		wg.Go(func() { send(g, rate.Key, &rateT, false) })
		wg.Go(func() { send(g, budget.Key, &budgetT, true) })
	}
	time.Sleep(time.Second)
	rs.kill()
	down := time.Now()
	time.Sleep(10 * time.Second)
	startPrivateRedis(t, addr) // the new one is killed at cleanup
	redisBack.Store(time.Now().UnixNano())
	back := time.Now()
	time.Sleep(4 * time.Second)
	stop()
	wg.Wait()
	t.Logf("outage %s: rate key %d ok / %d 503 / %d other; budget key %d ok / %d 503 / %d other",
		back.Sub(down).Round(time.Millisecond), rateT.ok.Load(), rateT.unavailable.Load(), rateT.other.Load(),
		budgetT.ok.Load(), budgetT.unavailable.Load(), budgetT.other.Load())
	otherErrs.Range(func(k, _ any) bool { t.Errorf("unexpected answer: %v", k); return true })
	if rateT.unavailable.Load() != 0 {
		t.Errorf("a fail-open rate limit answered 503 %d times", rateT.unavailable.Load())
	}
	if budgetT.unavailable.Load() == 0 {
		t.Errorf("a fail-closed budget was never refused during the outage")
	}
	first := firstBudgetOKAfter.Load()
	if first == 0 {
		t.Fatalf("the budget never recovered after Redis returned")
	}
	recovered := time.Duration(first - back.UnixNano())
	t.Logf("budget admitted again %s after Redis returned", recovered.Round(time.Millisecond))
	if recovered > 2*time.Second {
		t.Errorf("recovery took %s, want ≤ 2s", recovered)
	}
	// Every replica has recovered within 2 s: no 503 after that.
	if l := time.Duration(lastBudget503.Load() - back.UnixNano()); l > 2*time.Second {
		t.Errorf("the last 503 came %s after Redis returned, want ≤ 2s", l)
	} else {
		t.Logf("last 503 %s after Redis returned", l.Round(time.Millisecond))
	}
	// No usage record lost: every answer of both keys is recorded.
	total := func(tl *tally) int64 { return tl.ok.Load() + tl.unavailable.Load() + tl.other.Load() }
	for _, c := range []struct {
		id string
		tl *tally
	}{{rate.ID, &rateT}, {budget.ID, &budgetT}} {
		qc.gws[0].waitUsage(t, "key", c.id, func(r usageRow) bool { return r.Requests == total(c.tl) })
	}
	for _, g := range qc.gws {
		m := g.metrics(t)
		t.Logf("%s: fail_open=%v fail_closed=%v", g.Proxy, metricValue(m, `sluice_quota_fail_open_total{limit="rate"}`), metricValue(m, "sluice_quota_fail_closed_total"))
	}
}

package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluice-ai/sluice/llm"
	"github.com/sluice-ai/sluice/server"
	"github.com/sluice-ai/sluice/store"
)

const (
	uiAdminKey      = "ui-test-admin-key-0123456789abcdef0123"
	uiEncryptionKey = "abababababababababababababababababababababababababababababababab"
	goodModel       = "gpt-4o-mini"
	goodUpstream    = "gpt-4o-mini-2024-07-18"
	badModel        = "claude-haiku"
	badUpstream     = "broken-upstream"
)

// TestDashboardInBrowser boots the real server on SQLite, seeds providers,
// models, keys and usage (live proxy requests plus backdated rows), then
// drives headless Chromium through the dashboard: sign-in, KPI cards, chart,
// tables, deployment health, range switch, sign-out and a rejected key. It
// fails on any console error, uncaught exception or CSP violation, and
// saves screenshots to $TMPDIR.
func TestDashboardInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test skipped in -short mode")
	}
	bin := findChromium()
	if bin == "" {
		if os.Getenv("SLUICE_REQUIRE_SERVICES") == "1" {
			t.Fatal("chromium not found (install Debian's chromium or set SLUICE_CHROMIUM)")
		}
		t.Skip("chromium not found (install Debian's chromium or set SLUICE_CHROMIUM)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	dir := t.TempDir()
	adm, proxy := startServer(t, ctx, dir)
	keys := seed(t, adm, proxy)
	want := seedHistory(t, ctx, dir, keys)

	// Health, as the page will read it.
	var health struct {
		Items []struct {
			Deployment, Model, Provider string
			UpstreamModel               string `json:"upstream_model"`
			Healthy                     bool
			Successes, Failures         int64
		}
	}
	getJSON(t, adm+"/admin/health", &health)
	if len(health.Items) != 2 || health.Items[0].Model != badModel || !strings.HasPrefix(health.Items[1].Deployment, "dep_") || health.Items[1].UpstreamModel != goodUpstream ||
		health.Items[1].Provider != "openai-main" || health.Items[1].Successes != 6 || health.Items[0].Failures == 0 {
		t.Fatalf("/admin/health = %+v", health.Items)
	}

	p := launchChromium(t, ctx, bin)
	p.navigate(ctx, adm+"/ui/")
	p.waitFor(ctx, `document.body.dataset.view === "login" && !document.querySelector("#login").hidden`, `document.body.innerText`, 10*time.Second)

	// Sign in.
	p.typeInto(ctx, "#admin-key", uiAdminKey)
	p.click(ctx, "#login-submit")
	kpi := `document.querySelector("#kpi-requests .value").textContent`
	p.waitFor(ctx, kpi+` === `+strconv.Quote(strconv.Itoa(want.day)), kpi, 20*time.Second)
	checkDashboard(t, ctx, p, 24)
	checkLatencyCards(t, ctx, p, adm, want)
	checkRequestLog(t, ctx, p, keys, want)
	if issues := p.takeIssues(); len(issues) > 0 {
		t.Fatalf("browser errors after sign-in: %v", issues)
	}

	// The key lives in sessionStorage only: not in the URL, not in localStorage.
	var storage struct {
		Session, URL string
		Local        int
	}
	p.eval(ctx, `({session: sessionStorage.getItem("sluice.adminKey"), url: location.href, local: localStorage.length})`, &storage)
	if storage.Session != uiAdminKey || strings.Contains(storage.URL, uiAdminKey) || storage.Local != 0 {
		t.Fatalf("key storage: session=%t url=%q localStorage=%d", storage.Session == uiAdminKey, storage.URL, storage.Local)
	}

	// A reload keeps the session.
	p.navigate(ctx, adm+"/ui/")
	p.waitFor(ctx, `document.body.dataset.view === "dash" && `+kpi+` === `+strconv.Quote(strconv.Itoa(want.day)), kpi, 20*time.Second)

	// 30 days: daily buckets and the whole history.
	p.click(ctx, `[data-range="30d"]`)
	p.waitFor(ctx, kpi+` === `+strconv.Quote(strconv.Itoa(want.month)), kpi, 20*time.Second)
	checkDashboard(t, ctx, p, 30)
	p.screenshot(ctx, filepath.Join(os.TempDir(), "sluice-ui-30d.png"), 1280)
	p.click(ctx, `[data-range="7d"]`)
	p.waitFor(ctx, kpi+` === `+strconv.Quote(strconv.Itoa(want.week)), kpi, 20*time.Second)
	checkDashboard(t, ctx, p, 7)
	p.click(ctx, `[data-range="24h"]`)
	p.waitFor(ctx, kpi+` === `+strconv.Quote(strconv.Itoa(want.day)), kpi, 20*time.Second)
	if issues := p.takeIssues(); len(issues) > 0 {
		t.Fatalf("browser errors after switching ranges: %v", issues)
	}

	shots := os.TempDir()
	desktop := filepath.Join(shots, "sluice-ui-desktop.png")
	mobile := filepath.Join(shots, "sluice-ui-mobile.png")
	p.screenshot(ctx, desktop, 1280)
	p.screenshot(ctx, mobile, 390)

	// Sign out, then a wrong key shows the login error.
	p.click(ctx, "#signout")
	p.waitFor(ctx, `document.body.dataset.view === "login" && sessionStorage.getItem("sluice.adminKey") === null`, `document.body.dataset.view`, 5*time.Second)
	p.typeInto(ctx, "#admin-key", "not-the-admin-key-not-the-admin-key")
	p.click(ctx, "#login-submit")
	loginErr := `document.querySelector("#login-error")`
	p.waitFor(ctx, `!`+loginErr+`.hidden && /rejected/.test(`+loginErr+`.textContent) && document.querySelector("#dash").hidden`,
		loginErr+`.textContent`, 10*time.Second)
	var session any
	p.eval(ctx, `sessionStorage.getItem("sluice.adminKey")`, &session)
	if session != nil {
		t.Fatal("a rejected key stays in sessionStorage")
	}
	p.screenshot(ctx, filepath.Join(shots, "sluice-ui-login-error.png"), 1280)
	// The only errors allowed now are the browser's own notes about the 401s.
	for _, is := range p.takeIssues() {
		if is.Kind != "log.network" || !strings.Contains(is.Text, "401") {
			t.Fatalf("browser error after the wrong key: %v", is)
		}
	}
	t.Logf("screenshots: %s, %s", desktop, mobile)
}

// checkDashboard asserts the chart and tables once data is rendered.
func checkDashboard(t *testing.T, ctx context.Context, p *page, buckets int) {
	t.Helper()
	var got struct {
		Buckets, In, Out                int
		Models, Providers, Keys, Health []string
		Cost, ErrRate                   string
		Banner                          bool
	}
	p.eval(ctx, `(() => {
		const col = (sel) => [...document.querySelectorAll(sel + " tbody tr")].map((tr) => tr.innerText.replace(/\s+/g, " ").trim());
		return {
			buckets: document.querySelectorAll("#chart svg g.bucket").length,
			in: document.querySelectorAll("#chart svg rect.bar-in").length,
			out: document.querySelectorAll("#chart svg rect.bar-out").length,
			models: col("#by-model"), providers: col("#by-provider"), keys: col("#by-key"), health: col("#health"),
			cost: document.querySelector("#kpi-cost .value").textContent,
			errRate: document.querySelector("#kpi-errors .value").textContent,
			banner: !document.querySelector("#banner").hidden,
		};
	})()`, &got)
	if got.Buckets != buckets || got.In == 0 || got.Out == 0 {
		t.Fatalf("chart: %d buckets (want %d), %d input bars, %d output bars", got.Buckets, buckets, got.In, got.Out)
	}
	// Tables are sorted by cost: the priced model first.
	if len(got.Models) != 2 || !strings.HasPrefix(got.Models[0], goodModel+" ") || !strings.HasPrefix(got.Models[1], badModel+" ") {
		t.Fatalf("model table: %q", got.Models)
	}
	if len(got.Providers) != 2 || !strings.HasPrefix(got.Providers[0], "openai-main ") {
		t.Fatalf("provider table: %q", got.Providers)
	}
	if len(got.Keys) != 2 || !strings.Contains(strings.Join(got.Keys, "|"), "frontend sk-") || !strings.Contains(strings.Join(got.Keys, "|"), "batch-jobs sk-") {
		t.Fatalf("key table: %q", got.Keys)
	}
	if len(got.Health) != 2 || !strings.HasPrefix(got.Health[0], badModel+" backup "+badUpstream+" dep_") || !strings.Contains(got.Health[0], " ejected ") ||
		!strings.HasPrefix(got.Health[1], goodModel+" openai-main "+goodUpstream+" dep_") || !strings.Contains(got.Health[1], " healthy ") {
		t.Fatalf("health table: %q", got.Health)
	}
	if !strings.HasPrefix(got.Cost, "$") || got.Cost == "$0.00" || !strings.HasSuffix(got.ErrRate, "%") || got.Banner {
		t.Fatalf("cost %q, error rate %q, error banner %t", got.Cost, got.ErrRate, got.Banner)
	}
}

// startServer runs server.New on SQLite in dir and returns the admin and
// proxy base URLs.
func startServer(t *testing.T, ctx context.Context, dir string) (adm, proxy string) {
	t.Helper()
	cfg := server.Config{AdminKey: uiAdminKey, DataDir: dir, EncryptionKey: uiEncryptionKey, AccessLog: "off", ShutdownTimeout: 5 * time.Second}
	srv, err := server.New(ctx, cfg, nil, server.Version{Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	pl, al := listen(t), listen(t)
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(runCtx, pl, al) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return "http://" + al.Addr().String(), "http://" + pl.Addr().String()
}

// seededKey is a Sluice key created through the admin API.
type seededKey struct{ ID, Prefix, Secret string }

// seed creates two providers (one always failing), two models and two keys,
// and sends 9 proxy requests: 6 that succeed and 3 that fail upstream.
func seed(t *testing.T, adm, proxy string) map[string]seededKey {
	t.Helper()
	up := upstream(t)
	for _, body := range []string{
		`{"name":"openai-main","type":"openai-compatible","base_url":"` + up + `/v1","api_key":"sk-upstream-main"}`,
		`{"name":"backup","type":"openai-compatible","base_url":"` + up + `/v1","api_key":"sk-upstream-backup"}`,
		`{"name":"` + goodModel + `","deployments":[{"provider":"openai-main","model":"` + goodUpstream + `","input_price_per_mtok":0.15,"output_price_per_mtok":0.6}]}`,
		`{"name":"` + badModel + `","deployments":[{"provider":"backup","model":"` + badUpstream + `"}]}`,
	} {
		path := "/admin/providers"
		if strings.Contains(body, "deployments") {
			path = "/admin/models"
		}
		if code, b := do(t, "POST", adm+path, body, "X-Api-Key", uiAdminKey); code != http.StatusCreated {
			t.Fatalf("POST %s: %d %s", path, code, b)
		}
	}
	keys := map[string]seededKey{}
	for _, name := range []string{"frontend", "batch-jobs"} {
		code, b := do(t, "POST", adm+"/admin/keys", `{"name":"`+name+`"}`, "X-Api-Key", uiAdminKey)
		var k struct{ ID, Prefix, Key string }
		if code != http.StatusCreated || json.Unmarshal(b, &k) != nil || k.Key == "" {
			t.Fatalf("create key %s: %d %s", name, code, b)
		}
		keys[name] = seededKey{ID: k.ID, Prefix: k.Prefix, Secret: k.Key}
	}
	send := func(key, model string, n, status int) {
		for range n {
			code, b := do(t, "POST", proxy+"/v1/chat/completions", `{"model":"`+model+`","messages":[{"role":"user","content":"hello there"}]}`,
				"Authorization", "Bearer "+keys[key].Secret)
			if (code == http.StatusOK) != (status == http.StatusOK) {
				t.Fatalf("chat %s via %s: %d %s", model, key, code, b)
			}
		}
	}
	send("frontend", goodModel, 4, http.StatusOK)
	send("batch-jobs", goodModel, 2, http.StatusOK)
	send("batch-jobs", badModel, 3, http.StatusBadGateway)

	// The recorder flushes in the background: wait for all 9 rows.
	deadline := time.Now().Add(15 * time.Second)
	for {
		var usage struct{ Items []store.UsageRow }
		getJSON(t, adm+"/admin/usage?group_by=model&from="+strconv.FormatInt(time.Now().Add(-time.Hour).Unix(), 10), &usage)
		var n int64
		for _, r := range usage.Items {
			n += r.Requests
		}
		if n == 9 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("usage rows after 15 s: %+v", usage.Items)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return keys
}

// totals are the request counts the dashboard must show per range, plus
// what the 24-hour request log and TTFT card must show.
type totals struct {
	day, week, month int
	dayStatus        map[string]int // requests per status in the last 24 hours
	dayTTFTP95       float64        // p95 TTFT over the streamed rows in the last 24 hours
}

// seedHistory writes backdated usage straight into the store (a second
// handle on the same SQLite file): one row per hour for the last 22 hours
// and a few rows per day for the last four weeks, none of them within an
// hour of a range boundary.
func seedHistory(t *testing.T, ctx context.Context, dir string, keys map[string]seededKey) totals {
	t.Helper()
	st, err := store.Open(ctx, store.Options{DataDir: dir, EncryptionKey: uiEncryptionKey})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Now().UTC()
	hour := now.Truncate(time.Hour)
	var recs []llm.Record
	var dayTTFT []float64
	want := totals{day: 9, week: 9, month: 9, dayStatus: map[string]int{llm.StatusOK: 6, llm.StatusError: 3}}
	add := func(ts time.Time, i int) {
		key := keys["frontend"]
		if i%3 == 0 {
			key = keys["batch-jobs"]
		}
		model, dep, provider, status, httpStatus := goodModel, "openai-main/"+goodUpstream, "openai-main", llm.StatusOK, 200
		prompt, completion := 800+(i*137)%2400, 150+(i*89)%900
		cost := (float64(prompt)*0.15 + float64(completion)*0.6) / 1e6
		// Every fourth row is streamed with a time to first token; a few
		// streams break and a few clients cancel.
		stream := i%4 == 1
		var ttft time.Duration
		if stream {
			ttft = time.Duration(50+(i*29)%400) * time.Millisecond
		}
		switch {
		case i%11 == 5:
			model, dep, provider, status, httpStatus = badModel, "backup/"+badUpstream, "backup", llm.StatusError, 502
			completion, cost = 0, 0
		case stream && i%3 == 2:
			status = llm.StatusStreamBroken
		case i%17 == 3:
			status, httpStatus = llm.StatusClientCancelled, 499
		}
		if now.Sub(ts) < 23*time.Hour {
			want.dayStatus[status]++
			if ttft > 0 {
				dayTTFT = append(dayTTFT, float64(ttft)/float64(time.Millisecond))
			}
		}
		recs = append(recs, llm.Record{
			Time: ts, KeyID: key.ID, KeyPrefix: key.Prefix, Endpoint: llm.EndpointChat, Model: model, Provider: provider, Deployment: dep, CostMicros: int64(cost*1e6 + 0.5), Latency: time.Duration(200+(i*53)%700) * time.Millisecond,
			TTFT: ttft, HTTPStatus: httpStatus, Status: status, Stream: stream, Usage: llm.Usage{PromptTokens: prompt, CompletionTokens: completion},
		})
	}
	for k := 1; k <= 22; k++ {
		for j := range 1 + k%3 {
			add(hour.Add(-time.Duration(k)*time.Hour+time.Duration(10+j)*time.Minute), k+j)
			want.day++
			want.week++
			want.month++
		}
	}
	day := now.Truncate(24 * time.Hour)
	for d := 2; d <= 28; d++ {
		n := 2 + (d*7)%9
		for j := range n {
			add(day.Add(-time.Duration(d)*24*time.Hour+time.Duration(2+j)*time.Hour), d*10+j)
			if d <= 6 {
				want.week++
			}
			want.month++
		}
	}
	if _, err := st.InsertUsage(ctx, recs); err != nil {
		t.Fatal(err)
	}
	// p95 by linear interpolation, the definition /admin/usage/summary uses.
	slices.Sort(dayTTFT)
	h := 0.95 * float64(len(dayTTFT)-1)
	lo, hi := dayTTFT[int(math.Floor(h))], dayTTFT[int(math.Ceil(h))]
	want.dayTTFTP95 = lo + (hi-lo)*(h-math.Floor(h))
	return want
}

// upstream is a tiny OpenAI-compatible backend: it answers the model
// badUpstream with a 500 and everything else with a fixed completion.
func upstream(t *testing.T) string {
	t.Helper()
	l := listen(t)
	s := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		if bytes.Contains(b, []byte(badUpstream)) {
			w.WriteHeader(http.StatusInternalServerError)
			fmt.Fprint(w, `{"error":{"message":"upstream exploded","type":"server_error","param":null,"code":null}}`)
			return
		}
		fmt.Fprint(w, `{"id":"c1","object":"chat.completion","created":1,"model":"`+goodUpstream+`","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1200,"completion_tokens":300,"total_tokens":1500}}`)
	})}
	go func() { _ = s.Serve(l) }()
	t.Cleanup(func() { s.Close() })
	return "http://" + l.Addr().String()
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// do sends a request with one header and returns the status and body.
func do(t *testing.T, method, u, body, hk, hv string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(hk, hv)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// getJSON GETs an admin URL with the admin key and decodes the body.
func getJSON(t *testing.T, u string, out any) {
	t.Helper()
	code, b := do(t, "GET", u, "", "X-Api-Key", uiAdminKey)
	if code != http.StatusOK {
		t.Fatalf("GET %s: %d %s", u, code, b)
	}
	if err := json.Unmarshal(b, out); err != nil {
		t.Fatalf("GET %s: %v: %s", u, err, b)
	}
}

// checkLatencyCards compares the latency and TTFT cards with
// /admin/usage/summary for the page's 24-hour window and the TTFT p95 with
// the value computed from the seeded rows.
func checkLatencyCards(t *testing.T, ctx context.Context, p *page, adm string, want totals) {
	t.Helper()
	var cards struct{ Latency, LatencySub, TTFT, TTFTSub string }
	p.eval(ctx, `({
		latency: document.querySelector("#kpi-latency .value").textContent,
		latencySub: document.querySelector("#kpi-latency .sub").textContent,
		ttft: document.querySelector("#kpi-ttft .value").textContent,
		ttftSub: document.querySelector("#kpi-ttft .sub").textContent,
	})`, &cards)
	// The page's window starts 23 hours before the current hour.
	from := time.Now().UTC().Truncate(time.Hour).Add(-23 * time.Hour)
	var sum struct {
		Requests   int      `json:"requests"`
		LatencyP50 *float64 `json:"latency_p50_ms"`
		LatencyP95 *float64 `json:"latency_p95_ms"`
		TTFTP95    *float64 `json:"ttft_p95_ms"`
	}
	getJSON(t, adm+"/admin/usage/summary?from="+strconv.FormatInt(from.Unix(), 10), &sum)
	if sum.Requests != want.day || sum.LatencyP50 == nil || sum.LatencyP95 == nil || sum.TTFTP95 == nil ||
		math.Abs(*sum.TTFTP95-want.dayTTFTP95) > 1e-9 {
		t.Fatalf("summary %+v, want %d requests and ttft p95 %v", sum, want.day, want.dayTTFTP95)
	}
	ms := func(v float64) string { return strconv.FormatFloat(math.Round(v), 'f', 0, 64) }
	if wantLat := ms(*sum.LatencyP50) + " / " + ms(*sum.LatencyP95) + " ms"; cards.Latency != wantLat || !strings.HasPrefix(cards.LatencySub, "p99 ") {
		t.Fatalf("latency card %q (%q), want %q", cards.Latency, cards.LatencySub, wantLat)
	}
	if wantTTFT := ms(want.dayTTFTP95) + " ms"; cards.TTFT != wantTTFT || !strings.HasSuffix(cards.TTFTSub, " streamed") {
		t.Fatalf("TTFT card %q (%q), want %q", cards.TTFT, cards.TTFTSub, wantTTFT)
	}
}

// reqTable reads the request log as rendered.
type reqTable struct {
	Rows    []string
	Badges  []string
	Info    string
	Prev    bool
	Next    bool
	Loading bool
	Page    string
}

func readRequests(ctx context.Context, p *page) reqTable {
	var got reqTable
	p.eval(ctx, `({
		rows: [...document.querySelectorAll("#requests tbody tr:not(.empty-row)")].map((tr) => tr.innerText.replace(/\s+/g, " ").trim()),
		badges: [...document.querySelectorAll("#requests tbody .badge")].map((b) => b.className + ":" + b.textContent),
		info: document.querySelector("#req-info").textContent,
		prev: document.querySelector("#req-prev").disabled,
		next: document.querySelector("#req-next").disabled,
		loading: document.body.dataset.reqLoading === "true",
		page: document.querySelector("#requests").dataset.page || "",
	})`, &got)
	return got
}

// checkRequestLog checks the 24-hour request log: the newest rows are the
// live proxy requests, it pages by 50, and the status filter narrows it.
func checkRequestLog(t *testing.T, ctx context.Context, p *page, keys map[string]seededKey, want totals) {
	t.Helper()
	info := func(first, last, total int) string {
		return strconv.Itoa(first) + "–" + strconv.Itoa(last) + " of " + strconv.Itoa(total)
	}
	infoJS := `document.querySelector("#req-info").textContent`
	if want.day <= 50 {
		t.Fatalf("seed more than 50 rows in 24 h (have %d) so the log pages", want.day)
	}
	p.waitFor(ctx, infoJS+` === `+strconv.Quote(info(1, 50, want.day)), infoJS, 10*time.Second)
	got := readRequests(ctx, p)
	if len(got.Rows) != 50 || !got.Prev || got.Next {
		t.Fatalf("page 1: %d rows, prev disabled %t, next disabled %t", len(got.Rows), got.Prev, got.Next)
	}
	// Newest first: the 9 live requests (3 failing batch-jobs requests, 2
	// batch-jobs and 4 frontend successes), then history. Requests in the
	// same millisecond tie, and ties are broken by the (random) request id,
	// so the 9 are compared as a multiset.
	wantLive := map[string]int{}
	for i := range 9 {
		key, model, status := "batch-jobs", goodModel, "ok 200"
		switch {
		case i < 3:
			model, status = badModel, "error 500"
		case i >= 5:
			key = "frontend"
		}
		wantLive[keys[key].Prefix+" "+model+" "+status]++
	}
	for i, r := range got.Rows[:9] {
		found := ""
		for k, n := range wantLive {
			f := strings.SplitN(k, " ", 3)
			if n > 0 && strings.Contains(r, " "+f[0]+" "+f[1]+" ") && strings.Contains(r, " "+f[2]+" ") && strings.HasSuffix(r, " no") {
				found = k
				break
			}
		}
		if found == "" {
			t.Fatalf("row %d = %q, not one of the live requests left %v", i, r, wantLive)
		}
		wantLive[found]--
	}
	priced := false // a successful live request shows its tokens and cost
	for _, r := range got.Rows[:9] {
		priced = priced || strings.Contains(r, " 1,200 300 $")
	}
	if !priced {
		t.Fatalf("tokens and cost: no live row shows 1,200 300 $…: %q", got.Rows[:9])
	}
	classes := map[string]string{}
	for _, b := range got.Badges {
		cls, text, _ := strings.Cut(b, ":")
		classes[text] = cls
	}
	if classes["ok"] != "badge badge-ok" || classes["error"] != "badge badge-bad" {
		t.Fatalf("badges: %v", classes)
	}

	// Page 2 holds the rest.
	p.click(ctx, "#req-next")
	p.waitFor(ctx, infoJS+` === `+strconv.Quote(info(51, want.day, want.day)), infoJS, 10*time.Second)
	got = readRequests(ctx, p)
	if len(got.Rows) != want.day-50 || got.Prev || !got.Next || got.Page != "2" {
		t.Fatalf("page 2: %+v", got)
	}
	p.click(ctx, "#req-prev")
	p.waitFor(ctx, infoJS+` === `+strconv.Quote(info(1, 50, want.day)), infoJS, 10*time.Second)

	// The status filter narrows the log to one status.
	for _, st := range []string{llm.StatusError, llm.StatusStreamBroken, llm.StatusClientCancelled} {
		n := want.dayStatus[st]
		if n == 0 || n > 50 {
			t.Fatalf("seed has %d %s rows in 24 h", n, st)
		}
		p.eval(ctx, `(() => { const s = document.querySelector("#req-status"); s.value = `+strconv.Quote(st)+`; s.dispatchEvent(new Event("change")); return true })()`, nil)
		p.waitFor(ctx, infoJS+` === `+strconv.Quote(info(1, n, n)), infoJS, 10*time.Second)
		got = readRequests(ctx, p)
		if len(got.Rows) != n || !got.Prev || !got.Next {
			t.Fatalf("%s: %d rows, want %d: %+v", st, len(got.Rows), n, got)
		}
		for _, b := range got.Badges {
			if !strings.HasSuffix(b, ":"+st) {
				t.Fatalf("%s filter shows %q", st, b)
			}
		}
		if st == llm.StatusStreamBroken && !strings.HasPrefix(got.Badges[0], "badge badge-warn:") {
			t.Fatalf("stream_broken badge: %q", got.Badges[0])
		}
	}
	p.eval(ctx, `(() => { const s = document.querySelector("#req-status"); s.value = ""; s.dispatchEvent(new Event("change")); return true })()`, nil)
	p.waitFor(ctx, infoJS+` === `+strconv.Quote(info(1, 50, want.day)), infoJS, 10*time.Second)
}

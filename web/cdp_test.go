package web_test

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// This file is a minimal Chrome DevTools Protocol client, enough to drive
// headless Chromium from a Go test without Node or a browser-automation
// module: launch, navigate, evaluate JavaScript, type, screenshot, and
// collect console errors and uncaught exceptions.

// findChromium returns the browser binary, or "" when there is none.
func findChromium() string {
	if p := os.Getenv("SLUICE_CHROMIUM"); p != "" {
		return p
	}
	for _, p := range []string{"/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"} {
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p
		}
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	return ""
}

// browserIssue is a console error, uncaught exception or log entry.
type browserIssue struct {
	Kind, Text, URL string
}

func (i browserIssue) String() string {
	if i.URL != "" {
		return i.Kind + ": " + i.Text + " (" + i.URL + ")"
	}
	return i.Kind + ": " + i.Text
}

// page is one Chromium tab driven over CDP.
type page struct {
	t    *testing.T
	conn *websocket.Conn

	mu      sync.Mutex
	nextID  int64
	pending map[int64]chan cdpMessage
	issues  []browserIssue
	closed  chan struct{}
}

type cdpMessage struct {
	ID     int64           `json:"id,omitempty"`
	Method string          `json:"method,omitempty"`
	Params json.RawMessage `json:"params,omitempty"`
	Result json.RawMessage `json:"result,omitempty"`
	Error  *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error,omitempty"`
}

var devtoolsRE = regexp.MustCompile(`DevTools listening on (ws://\S+)`)

// launchChromium starts headless Chromium with a fresh profile and returns
// its first tab. Everything is torn down with t.Cleanup.
func launchChromium(t *testing.T, ctx context.Context, bin string) *page {
	t.Helper()
	profile := t.TempDir()
	cmd := exec.Command(bin,
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-dev-shm-usage", "--disable-extensions", "--disable-default-apps",
		"--no-default-browser-check", "--no-proxy-server", "--hide-scrollbars", "--mute-audio",
		"--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
		"--user-data-dir="+profile, "--window-size=1280,900", "about:blank")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		select {
		case <-exited:
			return
		default:
		}
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	})

	// Chromium prints the browser endpoint on stderr; keep draining it after.
	wsURL := make(chan string, 1)
	var logMu sync.Mutex
	var logTail []string
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			if m := devtoolsRE.FindStringSubmatch(line); m != nil {
				select {
				case wsURL <- m[1]:
				default:
				}
			}
			logMu.Lock()
			logTail = append(logTail, line)
			if len(logTail) > 30 {
				logTail = logTail[1:]
			}
			logMu.Unlock()
		}
		_, _ = io.Copy(io.Discard, stderr)
	}()
	var browserURL string
	select {
	case browserURL = <-wsURL:
	case <-exited:
		logMu.Lock()
		defer logMu.Unlock()
		t.Fatalf("chromium exited before DevTools was ready:\n%s", strings.Join(logTail, "\n"))
	case <-time.After(30 * time.Second):
		t.Fatal("chromium did not print its DevTools endpoint within 30 s")
	case <-ctx.Done():
		t.Fatal(ctx.Err())
	}

	// The HTTP endpoint next to the browser socket lists the open tabs.
	host := strings.TrimPrefix(browserURL, "ws://")
	host = host[:strings.IndexByte(host, '/')]
	var targets []struct {
		Type, URL            string
		WebSocketDebuggerURL string `json:"webSocketDebuggerUrl"`
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+host+"/json/list", nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			err = json.NewDecoder(resp.Body).Decode(&targets)
			resp.Body.Close()
		}
		if err == nil && len(targets) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no tab in /json/list: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	var tabURL string
	for _, tg := range targets {
		if tg.Type == "page" {
			tabURL = tg.WebSocketDebuggerURL
			break
		}
	}
	if tabURL == "" {
		t.Fatalf("no page target in %+v", targets)
	}
	conn, _, err := websocket.Dial(ctx, tabURL, nil)
	if err != nil {
		t.Fatalf("dial DevTools: %v", err)
	}
	conn.SetReadLimit(256 << 20) // screenshots arrive as one base64 message
	p := &page{t: t, conn: conn, pending: map[int64]chan cdpMessage{}, closed: make(chan struct{})}
	go p.readLoop()
	t.Cleanup(func() { _ = conn.Close(websocket.StatusNormalClosure, "") })

	for _, m := range []string{"Page.enable", "Runtime.enable", "Log.enable"} {
		p.call(ctx, m, nil, nil)
	}
	return p
}

func (p *page) readLoop() {
	defer close(p.closed)
	for {
		_, b, err := p.conn.Read(context.Background())
		if err != nil {
			return
		}
		var m cdpMessage
		if json.Unmarshal(b, &m) != nil {
			continue
		}
		if m.ID != 0 {
			p.mu.Lock()
			ch := p.pending[m.ID]
			delete(p.pending, m.ID)
			p.mu.Unlock()
			if ch != nil {
				ch <- m
			}
			continue
		}
		p.event(m)
	}
}

// event records console errors, exceptions and error log entries.
func (p *page) event(m cdpMessage) {
	var issue *browserIssue
	switch m.Method {
	case "Runtime.consoleAPICalled":
		var ev struct {
			Type string `json:"type"`
			Args []struct {
				Value       any    `json:"value"`
				Description string `json:"description"`
			} `json:"args"`
		}
		if json.Unmarshal(m.Params, &ev) == nil && (ev.Type == "error" || ev.Type == "assert") {
			var parts []string
			for _, a := range ev.Args {
				if a.Description != "" {
					parts = append(parts, a.Description)
				} else {
					parts = append(parts, fmt.Sprint(a.Value))
				}
			}
			issue = &browserIssue{Kind: "console." + ev.Type, Text: strings.Join(parts, " ")}
		}
	case "Runtime.exceptionThrown":
		var ev struct {
			ExceptionDetails struct {
				Text      string `json:"text"`
				URL       string `json:"url"`
				Exception struct {
					Description string `json:"description"`
				} `json:"exception"`
			} `json:"exceptionDetails"`
		}
		if json.Unmarshal(m.Params, &ev) == nil {
			d := ev.ExceptionDetails
			issue = &browserIssue{Kind: "exception", Text: strings.TrimSpace(d.Text + " " + d.Exception.Description), URL: d.URL}
		}
	case "Log.entryAdded":
		var ev struct {
			Entry struct {
				Source string `json:"source"`
				Level  string `json:"level"`
				Text   string `json:"text"`
				URL    string `json:"url"`
			} `json:"entry"`
		}
		if json.Unmarshal(m.Params, &ev) == nil && ev.Entry.Level == "error" {
			issue = &browserIssue{Kind: "log." + ev.Entry.Source, Text: ev.Entry.Text, URL: ev.Entry.URL}
		}
	}
	if issue != nil {
		p.mu.Lock()
		p.issues = append(p.issues, *issue)
		p.mu.Unlock()
	}
}

// takeIssues returns and clears the recorded browser errors.
func (p *page) takeIssues() []browserIssue {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := p.issues
	p.issues = nil
	return out
}

// call sends a CDP command and decodes its result into out (if non-nil).
func (p *page) call(ctx context.Context, method string, params, out any) {
	p.t.Helper()
	if err := p.try(ctx, method, params, out); err != nil {
		p.t.Fatalf("%s: %v", method, err)
	}
}

func (p *page) try(ctx context.Context, method string, params, out any) error {
	p.mu.Lock()
	p.nextID++
	id := p.nextID
	ch := make(chan cdpMessage, 1)
	p.pending[id] = ch
	p.mu.Unlock()
	req := map[string]any{"id": id, "method": method}
	if params != nil {
		req["params"] = params
	}
	b, err := json.Marshal(req)
	if err != nil {
		return err
	}
	if err := p.conn.Write(ctx, websocket.MessageText, b); err != nil {
		return err
	}
	select {
	case m := <-ch:
		if m.Error != nil {
			return fmt.Errorf("CDP error %d: %s", m.Error.Code, m.Error.Message)
		}
		if out != nil {
			return json.Unmarshal(m.Result, out)
		}
		return nil
	case <-p.closed:
		return errors.New("DevTools connection closed")
	case <-ctx.Done():
		return ctx.Err()
	}
}

// eval runs a JavaScript expression (promises are awaited) and decodes its
// JSON value into out (if non-nil).
func (p *page) eval(ctx context.Context, expr string, out any) {
	p.t.Helper()
	if err := p.tryEval(ctx, expr, out); err != nil {
		p.t.Fatalf("eval %q: %v", expr, err)
	}
}

func (p *page) tryEval(ctx context.Context, expr string, out any) error {
	var res struct {
		Result struct {
			Value json.RawMessage `json:"value"`
		} `json:"result"`
		ExceptionDetails *struct {
			Text      string `json:"text"`
			Exception struct {
				Description string `json:"description"`
			} `json:"exception"`
		} `json:"exceptionDetails"`
	}
	err := p.try(ctx, "Runtime.evaluate", map[string]any{
		"expression": expr, "returnByValue": true, "awaitPromise": true, "userGesture": true,
	}, &res)
	if err != nil {
		return err
	}
	if e := res.ExceptionDetails; e != nil {
		return fmt.Errorf("%s %s", e.Text, e.Exception.Description)
	}
	if out != nil && len(res.Result.Value) > 0 {
		return json.Unmarshal(res.Result.Value, out)
	}
	return nil
}

// waitFor polls a JavaScript expression until it is truthy or timeout
// passes; describe is evaluated for the failure message.
func (p *page) waitFor(ctx context.Context, expr, describe string, timeout time.Duration) {
	p.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var ok bool
		err := p.tryEval(ctx, "Boolean("+expr+")", &ok)
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			var state string
			_ = p.tryEval(ctx, describe, &state)
			p.t.Fatalf("timed out waiting for %s (err %v); page: %s; browser issues: %v", expr, err, state, p.takeIssues())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// navigate loads url and waits for the load event.
func (p *page) navigate(ctx context.Context, url string) {
	p.t.Helper()
	var res struct {
		ErrorText string `json:"errorText"`
	}
	p.call(ctx, "Page.navigate", map[string]any{"url": url}, &res)
	if res.ErrorText != "" {
		p.t.Fatalf("navigate %s: %s", url, res.ErrorText)
	}
	p.waitFor(ctx, `document.readyState === "complete"`, `document.readyState`, 15*time.Second)
}

// typeInto focuses the element matching selector and types text as the
// keyboard would (Input.insertText fires input events).
func (p *page) typeInto(ctx context.Context, selector, text string) {
	p.t.Helper()
	sel, _ := json.Marshal(selector)
	p.eval(ctx, `(() => { const e = document.querySelector(`+string(sel)+`); e.focus(); e.value = ""; return true })()`, nil)
	p.call(ctx, "Input.insertText", map[string]any{"text": text}, nil)
}

// click clicks the element matching selector.
func (p *page) click(ctx context.Context, selector string) {
	p.t.Helper()
	sel, _ := json.Marshal(selector)
	p.eval(ctx, `document.querySelector(`+string(sel)+`).click()`, nil)
}

// screenshot resizes the viewport to width × the page height and writes a
// full-page PNG to path.
func (p *page) screenshot(ctx context.Context, path string, width int) {
	p.t.Helper()
	setSize := func(h int) {
		p.call(ctx, "Emulation.setDeviceMetricsOverride", map[string]any{
			"width": width, "height": h, "deviceScaleFactor": 1, "mobile": width < 600,
		}, nil)
	}
	// Let debounced resize handlers (the chart redraw) run before measuring.
	settle := `new Promise(r => setTimeout(() => requestAnimationFrame(() => requestAnimationFrame(() => r(true))), 400))`
	setSize(900)
	p.eval(ctx, settle, nil)
	var height int
	p.eval(ctx, `Math.ceil(document.documentElement.scrollHeight)`, &height)
	setSize(max(600, min(height, 8000)))
	p.eval(ctx, settle, nil)
	var shot struct {
		Data string `json:"data"`
	}
	p.call(ctx, "Page.captureScreenshot", map[string]any{"format": "png"}, &shot)
	png, err := base64.StdEncoding.DecodeString(shot.Data)
	if err != nil {
		p.t.Fatal(err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		p.t.Fatal(err)
	}
	p.call(ctx, "Emulation.clearDeviceMetricsOverride", nil, nil)
}

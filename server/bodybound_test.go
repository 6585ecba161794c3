package server

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

const bodyTestAdminKey = "0123456789abcdef0123456789abcdef-body"

// rawRequest sends head (request line and headers, without the blank line)
// plus the blank line and nothing else over a fresh TCP connection, and
// returns the answer read within wait, and whether the server then closed
// the connection within wait.
func rawRequest(t *testing.T, base, head string, wait time.Duration) (*http.Response, string, bool) {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(wait))
	if _, err := io.WriteString(conn, head+"\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("%q: no answer within %v: %v", head, wait, err)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%q: reading the answer: %v", head, err)
	}
	resp.Body.Close()
	_ = conn.SetDeadline(time.Now().Add(wait))
	_, err = br.ReadByte()
	return resp, string(b), err == io.EOF
}

func createProxyKey(t *testing.T, adm string) string {
	t.Helper()
	code, b := call(t, "POST", adm+"/admin/keys", `{"name":"k"}`, http.Header{"X-Api-Key": {bodyTestAdminKey}})
	if code != 201 {
		t.Fatalf("create key: %d %s", code, b)
	}
	var k struct{ Key string }
	if err := json.Unmarshal(b, &k); err != nil {
		t.Fatal(err)
	}
	return k.Key
}

// TestUnsentBodyAnsweredAtOnce: a request that declares a body and never
// sends it, on a path answered without reading the body (401, 404), gets
// its answer at once on both listeners, and the server closes the
// connection rather than waiting for the body. Before, no answer was ever
// sent: net/http waited to drain the body first, with no deadline.
func TestUnsentBodyAnsweredAtOnce(t *testing.T) {
	cfg := Config{AdminKey: bodyTestAdminKey, DataDir: t.TempDir(), AccessLog: "off", BodyReadTimeout: time.Minute, ShutdownTimeout: 5 * time.Second}
	r := serveTest(t, cfg)
	key := createProxyKey(t, r.admin)
	framings := map[string]string{"content-length": "Content-Length: 100", "chunked": "Transfer-Encoding: chunked"}
	cases := []struct {
		name, base, head string
		want             int
	}{
		{"proxy no key", r.proxy, "POST /v1/chat/completions HTTP/1.1\r\nHost: x", 401},
		{"proxy bad key", r.proxy, "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer sk-nope", 401},
		{"proxy unknown path", r.proxy, "POST /nope HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + key, 404},
		{"proxy GET with body", r.proxy, "GET /v1/models HTTP/1.1\r\nHost: x", 401},
		{"admin no key", r.admin, "POST /admin/providers HTTP/1.1\r\nHost: x", 401},
		{"admin unknown path no key", r.admin, "POST /nope HTTP/1.1\r\nHost: x", 401},
		{"admin unknown path", r.admin, "PUT /nope HTTP/1.1\r\nHost: x\r\nX-Api-Key: " + bodyTestAdminKey, 404},
	}
	for _, c := range cases {
		for fname, framing := range framings {
			t.Run(c.name+"/"+fname, func(t *testing.T) {
				resp, body, closed := rawRequest(t, c.base, c.head+"\r\n"+framing, 10*time.Second)
				if resp.StatusCode != c.want || !strings.Contains(body, `"error"`) {
					t.Fatalf("status %d body %s, want %d with an error body", resp.StatusCode, body, c.want)
				}
				if !resp.Close {
					t.Error("the answer must say Connection: close")
				}
				if !closed {
					t.Error("the server must close the connection after answering")
				}
			})
		}
	}
}

// TestUnsentBodyReadTimesOut: on paths that do read the body (an
// authenticated proxy or admin write), a body that never comes fails after
// BodyReadTimeout with a 408 in the API's own shape (the proxy said 499
// "client closed the request": the timeout also cancels the context).
func TestUnsentBodyReadTimesOut(t *testing.T) {
	cfg := Config{AdminKey: bodyTestAdminKey, DataDir: t.TempDir(), AccessLog: "off", BodyReadTimeout: 300 * time.Millisecond, ShutdownTimeout: 5 * time.Second}
	r := serveTest(t, cfg)
	key := createProxyKey(t, r.admin)
	cases := []struct{ name, base, head string }{
		{"proxy", r.proxy, "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + key},
		{"admin", r.admin, "POST /admin/providers HTTP/1.1\r\nHost: x\r\nX-Api-Key: " + bodyTestAdminKey},
	}
	for _, c := range cases {
		for _, framing := range []string{"Content-Length: 100", "Transfer-Encoding: chunked"} {
			t.Run(c.name+"/"+framing, func(t *testing.T) {
				resp, body, closed := rawRequest(t, c.base, c.head+"\r\n"+framing, 10*time.Second)
				if resp.StatusCode != 408 || !strings.Contains(body, `"request_timeout"`) {
					t.Fatalf("status %d body %s", resp.StatusCode, body)
				}
				if !closed {
					t.Error("the server must close the connection")
				}
			})
		}
	}
}

// TestShutdownWithUnsentBody: a connection that declared a body and sent
// none does not hold graceful shutdown for its whole timeout.
func TestShutdownWithUnsentBody(t *testing.T) {
	cfg := Config{AdminKey: bodyTestAdminKey, DataDir: t.TempDir(), AccessLog: "off", ShutdownTimeout: 30 * time.Second}
	r := serveTest(t, cfg)
	for _, base := range []string{r.proxy, r.admin} {
		conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		fmt.Fprint(conn, "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n")
	}
	// Let the server read the headers and run the handlers.
	if code, _ := call(t, "GET", r.proxy+"/healthz", "", nil); code != 200 {
		t.Fatal(code)
	}
	done := make(chan error, 1)
	go func() { done <- r.stop() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("shutdown still waiting after 10s (ShutdownTimeout 30s): a connection with an unsent body holds it")
	}
}

// TestStreamOutlivesBodyTimeout: the body-read deadline ends with the body,
// and write deadlines bound each write, not the answer;
// a streamed answer longer than BodyReadTimeout and WriteTimeout reaches
// the client whole.
func TestStreamOutlivesBodyTimeout(t *testing.T) {
	l := listen(t)
	up := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		for i := range 8 {
			fmt.Fprintf(w, "data: {\"id\":\"1\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"t%d\"}}]}\n\n", i)
			w.(http.Flusher).Flush()
			time.Sleep(150 * time.Millisecond)
		}
		fmt.Fprint(w, "data: {\"id\":\"1\",\"object\":\"chat.completion.chunk\",\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":8,\"total_tokens\":11}}\n\ndata: [DONE]\n\n")
	})}
	go up.Serve(l)
	t.Cleanup(func() { up.Close() })

	cfg := Config{AdminKey: bodyTestAdminKey, DataDir: t.TempDir(), AccessLog: "off", BodyReadTimeout: 200 * time.Millisecond, WriteTimeout: 200 * time.Millisecond, ShutdownTimeout: 5 * time.Second}
	r := serveTest(t, cfg)
	ah := http.Header{"X-Api-Key": {bodyTestAdminKey}}
	if code, b := call(t, "POST", r.admin+"/admin/providers", `{"name":"up","type":"openai-compatible","base_url":"http://`+l.Addr().String()+`/v1","api_key":"sk-upstream"}`, ah); code != 201 {
		t.Fatalf("create provider: %d %s", code, b)
	}
	if code, b := call(t, "POST", r.admin+"/admin/models", `{"name":"m","deployments":[{"provider":"up","model":"real"}]}`, ah); code != 201 {
		t.Fatalf("create model: %d %s", code, b)
	}
	key := createProxyKey(t, r.admin)
	code, body := call(t, "POST", r.proxy+"/v1/chat/completions", `{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}`,
		http.Header{"Authorization": {"Bearer " + key}, "Content-Type": {"application/json"}})
	if code != 200 {
		t.Fatalf("status %d %s", code, body)
	}
	if !strings.Contains(string(body), "t7") || !strings.HasSuffix(strings.TrimSpace(string(body)), "data: [DONE]") {
		t.Fatalf("stream cut short: %s", body)
	}
}

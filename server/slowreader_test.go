package server

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestPipelinedNonReaderCut: a client that pipelines requests and never
// reads the answers is disconnected once a write has waited WriteTimeout,
// on both listeners, without any credential. Before, net/http's flush of
// each answer had no deadline: the connection, its goroutine and any
// graceful shutdown waited forever.
func TestPipelinedNonReaderCut(t *testing.T) {
	cfg := Config{AdminKey: bodyTestAdminKey, DataDir: t.TempDir(), AccessLog: "off", CORSOrigins: []string{"*"},
		WriteTimeout: 200 * time.Millisecond, ShutdownTimeout: 5 * time.Second}
	r := serveTest(t, cfg)
	// Public answers of some size, so that the kernel buffers of both ends
	// fill: a CORS preflight echoes Access-Control-Request-Headers (2 KB,
	// its limit); the dashboard's script is over 20 KB.
	for _, c := range []struct {
		base, req string
		n         int
	}{
		{r.proxy, "OPTIONS /v1/chat/completions HTTP/1.1\r\nHost: x\r\nOrigin: https://a.example\r\nAccess-Control-Request-Method: POST\r\nAccess-Control-Request-Headers: " + strings.Repeat("x-a,", 500) + "\r\n\r\n", 10000},
		{r.admin, "GET /ui/app.js HTTP/1.1\r\nHost: x\r\n\r\n", 1000},
	} {
		base, req, n := c.base, c.req, c.n
		t.Run(base, func(t *testing.T) {
			t.Parallel()
			conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			go func() {
				w := bufio.NewWriterSize(conn, 64<<10)
				for range n {
					if _, err := w.WriteString(req); err != nil {
						return
					}
				}
				_ = w.Flush()
			}()
			time.Sleep(4 * time.Second) // the server blocks writing, then gives up
			_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second))
			br := bufio.NewReader(conn)
			got := 0
			for ; got < n; got++ {
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					break
				}
				resp.Body.Close()
			}
			if got == n {
				t.Fatalf("all %d answers were delivered: the server waited for the reader", n)
			}
		})
	}
}

// TestKeepAliveAfterFlushDeadline: the deadline boundFlush leaves for the
// final flush of one answer does not cut the next answer on the same
// connection, even one written while its handler runs (a model list larger
// than net/http's 4 KiB buffer).
func TestKeepAliveAfterFlushDeadline(t *testing.T) {
	cfg := Config{AdminKey: bodyTestAdminKey, DataDir: t.TempDir(), AccessLog: "off", WriteTimeout: 100 * time.Millisecond, ShutdownTimeout: 5 * time.Second}
	r := serveTest(t, cfg)
	ah := http.Header{"X-Api-Key": {bodyTestAdminKey}}
	if code, b := call(t, "POST", r.admin+"/admin/providers", `{"name":"up","type":"openai-compatible","base_url":"http://127.0.0.1:1/v1","api_key":"sk-upstream"}`, ah); code != 201 {
		t.Fatalf("create provider: %d %s", code, b)
	}
	for i := range 60 {
		body := fmt.Sprintf(`{"name":"model-with-a-long-name-%03d","deployments":[{"provider":"up","model":"real"}]}`, i)
		if code, b := call(t, "POST", r.admin+"/admin/models", body, ah); code != 201 {
			t.Fatalf("create model: %d %s", code, b)
		}
	}
	key := createProxyKey(t, r.admin)
	conn, err := net.Dial("tcp", strings.TrimPrefix(r.proxy, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	br := bufio.NewReader(conn)
	for i := range 3 {
		if _, err := conn.Write([]byte("GET /v1/models HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + key + "\r\n\r\n")); err != nil {
			t.Fatal(err)
		}
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("request %d on the connection: %v", i+1, err)
		}
		var list struct{ Data []any }
		err = json.NewDecoder(resp.Body).Decode(&list)
		resp.Body.Close()
		if resp.StatusCode != 200 || err != nil || len(list.Data) != 60 {
			t.Fatalf("request %d: %d %v, %d models", i+1, resp.StatusCode, err, len(list.Data))
		}
		time.Sleep(300 * time.Millisecond) // past the previous answer's deadline
	}
}

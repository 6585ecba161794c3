package server

import (
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestHTTP2UnsentBody: over HTTP/2 (the HTTPS listener), a request whose
// body never comes is answered too: at once where the body is not read
// (401), after BodyReadTimeout where it is (an authenticated request).
func TestHTTP2UnsentBody(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := writeSelfSigned(t, dir)
	l := listen(t)
	tlsAddr := l.Addr().String()
	l.Close()
	cfg := Config{AdminKey: bodyTestAdminKey, DataDir: dir, AccessLog: "off", TLSCert: certFile, TLSKey: keyFile, TLSListen: tlsAddr,
		BodyReadTimeout: 300 * time.Millisecond, ShutdownTimeout: 5 * time.Second}
	r := serveTest(t, cfg)
	key := createProxyKey(t, r.admin)
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, ForceAttemptHTTP2: true,
		DialContext: (&net.Dialer{}).DialContext,
	}}
	for i := 0; i < 50; i++ { // wait for the listener
		if resp, err := client.Get("https://" + tlsAddr + "/healthz"); err == nil {
			resp.Body.Close()
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, tt := range []struct {
		auth string
		want int
	}{{"", 401}, {"Bearer " + key, 408}} {
		pr, pw := io.Pipe() // a body that never comes
		defer pw.Close()
		req, _ := http.NewRequest("POST", "https://"+tlsAddr+"/v1/chat/completions", pr)
		if tt.auth != "" {
			req.Header.Set("Authorization", tt.auth)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%q: %v", tt.auth, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.ProtoMajor != 2 || resp.StatusCode != tt.want || !strings.Contains(string(b), `"error"`) {
			t.Fatalf("%q: %s %d %s", tt.auth, resp.Proto, resp.StatusCode, b)
		}
	}
}

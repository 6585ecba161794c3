package router

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluice-ai/sluice/llm"
)

// firstRead records the size of the buffer offered to its first Read.
type firstRead struct {
	r     io.Reader
	first int
}

func (f *firstRead) Read(p []byte) (int, error) {
	if f.first == 0 {
		f.first = len(p)
	}
	return f.r.Read(p)
}

func TestReadAllLimitedDoesNotReserveDeclaredLength(t *testing.T) {
	// A client declaring 64 MiB and sending 10 bytes must not cost 64 MiB.
	h := http.Header{"Content-Length": {strconv.Itoa(64 << 20)}}
	f := &firstRead{r: strings.NewReader("0123456789")}
	b, err := readAllLimited(f, h, 128<<20)
	if err != nil || string(b) != "0123456789" {
		t.Fatalf("got %q, %v", b, err)
	}
	if f.first > initialBodyBuf {
		t.Fatalf("first read offered %d bytes before any arrived (bound %d)", f.first, initialBodyBuf)
	}
}

func TestReadAllLimitedSizes(t *testing.T) {
	const limit = 1<<20 + 3
	for _, n := range []int{0, 1, 511, 512, 513, initialBodyBuf - 1, initialBodyBuf, initialBodyBuf + 1, 100 << 10, limit} {
		in := bytes.Repeat([]byte{'x'}, n)
		for _, h := range []http.Header{nil, {"Content-Length": {strconv.Itoa(n)}}, {"Content-Length": {"5"}}} {
			b, err := readAllLimited(iotestHalf(bytes.NewReader(in)), h, limit)
			if err != nil || !bytes.Equal(b, in) {
				t.Fatalf("n=%d h=%v: %d bytes, %v", n, h, len(b), err)
			}
		}
	}
	var mbe *http.MaxBytesError
	if _, err := readAllLimited(bytes.NewReader(make([]byte, limit+1)), nil, limit); !errors.As(err, &mbe) {
		t.Fatalf("limit+1 bytes: %v", err)
	}
}

// iotestHalf returns a reader that reads at most half of each buffer.
func iotestHalf(r io.Reader) io.Reader { return halfReader{r} }

type halfReader struct{ r io.Reader }

func (h halfReader) Read(p []byte) (int, error) {
	if len(p) > 1 {
		p = p[:len(p)/2]
	}
	return h.r.Read(p)
}

func gzipped(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func readBodyOf(body []byte, enc []string, limit int64) ([]byte, *llm.Error) {
	r := httptest.NewRequest("POST", "/v1/chat/completions", bytes.NewReader(body))
	if enc != nil {
		r.Header["Content-Encoding"] = enc
	}
	return readBody(httptest.NewRecorder(), r, limit, nil)
}

func TestReadBodyContentEncoding(t *testing.T) {
	const js = `{"model":"m"}`
	gz := gzipped(t, []byte(js))
	tests := []struct {
		name   string
		body   []byte
		enc    []string
		status int
		code   string
	}{
		{"none", []byte(js), nil, 0, ""},
		{"identity", []byte(js), []string{"identity"}, 0, ""},
		{"gzip", gz, []string{"gzip"}, 0, ""},
		{"GZIP", gz, []string{" GZIP "}, 0, ""},
		{"x-gzip", gz, []string{"x-gzip"}, 0, ""},
		{"gzip twice", gzipped(t, gz), []string{"gzip, gzip"}, 415, "unsupported_content_encoding"},
		{"two headers", gz, []string{"gzip", "gzip"}, 415, "unsupported_content_encoding"},
		{"deflate", gz, []string{"deflate"}, 415, "unsupported_content_encoding"},
		{"br", gz, []string{"br"}, 415, "unsupported_content_encoding"},
		{"zstd", gz, []string{"zstd"}, 415, "unsupported_content_encoding"},
		{"corrupt gzip", []byte(js), []string{"gzip"}, 400, ""},
		{"truncated gzip", gz[:len(gz)-6], []string{"gzip"}, 400, ""},
		{"bad checksum", append(append([]byte{}, gz[:len(gz)-8]...), 0, 0, 0, 0, 13, 0, 0, 0), []string{"gzip"}, 400, ""},
		{"trailing garbage", append(append([]byte{}, gz...), "xx"...), []string{"gzip"}, 400, ""},
		{"empty gzip", gzipped(t, nil), []string{"gzip"}, 400, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, e := readBodyOf(tt.body, tt.enc, 1<<20)
			if tt.status == 0 {
				if e != nil || string(b) != js {
					t.Fatalf("got %q, %v", b, e)
				}
				return
			}
			if e == nil || e.Status != tt.status || e.Code != tt.code || e.Type != "invalid_request_error" {
				t.Fatalf("got %q, %+v; want status %d code %q", b, e, tt.status, tt.code)
			}
		})
	}
}

func TestReadBodyGzipBombIsBounded(t *testing.T) {
	const limit = 1 << 20
	bomb := gzipped(t, make([]byte, 100<<20)) // 100 MiB of zeros, about 100 KB
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, e := readBodyOf(bomb, []string{"gzip"}, limit)
	runtime.ReadMemStats(&after)
	if e == nil || e.Status != http.StatusRequestEntityTooLarge || !strings.Contains(e.Message, "decompressed") {
		t.Fatalf("zip bomb: %+v", e)
	}
	if got := after.TotalAlloc - before.TotalAlloc; got > 16*limit {
		t.Fatalf("decoding the bomb allocated %d bytes for a %d-byte limit", got, limit)
	}
	// The compressed size is bounded by the same limit.
	big := make([]byte, 2*limit)
	for i := range big {
		big[i] = byte(i*7919 + i>>8)
	}
	if _, e := readBodyOf(gzipped(t, big), []string{"gzip"}, limit); e == nil || e.Status != 413 {
		t.Fatalf("incompressible 2 MiB: %+v", e)
	}
}

func TestProxyGzipBody(t *testing.T) {
	var got []byte
	var gotEnc string
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, _ = io.ReadAll(r.Body)
		gotEnc = r.Header.Get("Content-Encoding")
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, benchChatResponse)
	}))
	defer up.Close()
	srv, _ := newTestProxy(t, time.Second, up.URL)
	send := func(body []byte, enc string) (*http.Response, string) {
		req, _ := http.NewRequest("POST", srv.URL+"/v1/chat/completions", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+testKey)
		req.Header.Set("Content-Encoding", enc)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	resp, b := send(gzipped(t, []byte(`{"model":"m","messages":[]}`)), "gzip")
	if resp.StatusCode != 200 || string(got) != `{"model":"up-p0","messages":[]}` || gotEnc != "" {
		t.Fatalf("status %d %s; upstream got %q (encoding %q)", resp.StatusCode, b, got, gotEnc)
	}
	resp, b = send([]byte(`{"model":"m"}`), "br")
	if resp.StatusCode != 415 || !strings.Contains(b, `"code":"unsupported_content_encoding"`) || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("br: status %d %s", resp.StatusCode, b)
	}
}

package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"
)

// Errors returned by the response parser.
var (
	errMalformed = errors.New("malformed HTTP response")
	errTooLarge  = errors.New("HTTP response header line too long")
)

// SSE dialects the load generator reads streamed bodies in.
const (
	sseOpenAI    = "openai"    // chat completion chunks, ended by data: [DONE]
	sseAnthropic = "anthropic" // Messages events, ended by message_stop
)

// sseDialect is what the load generator looks for in a streamed body: a
// field whose non-empty string value is generated text (the first one marks
// the first token), and the stream's last event.
type sseDialect struct {
	token []byte
	done  []byte
}

// sseDialectOf returns the patterns of a dialect by name.
func sseDialectOf(name string) (sseDialect, bool) {
	switch name {
	case sseOpenAI:
		return sseDialect{token: []byte(`"content":"`), done: []byte("data: [DONE]")}, true
	case sseAnthropic:
		// The first text_delta; content_block_start's "text":"" is empty.
		return sseDialect{token: []byte(`"text":"`), done: []byte("event: message_stop")}, true
	}
	return sseDialect{}, false
}

// carryLen is how many trailing bytes of a streamed body are kept so that a
// pattern split across two reads is still found; longer than any pattern.
const carryLen = 32

// target is where and what the load generator sends: the dial address and the
// complete, pre-built bytes of one HTTP/1.1 request.
type target struct {
	addr    string
	request []byte
}

// newTarget pre-builds a POST of body to path on addr (host:port). Each of
// headers is a "Name: value" line sent as it is, in order; empty ones are
// skipped.
func newTarget(addr, path string, body []byte, headers ...string) target {
	var b bytes.Buffer
	fmt.Fprintf(&b, "POST %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: sluice-bench\r\n", path, addr)
	for _, h := range headers {
		if h != "" {
			fmt.Fprintf(&b, "%s\r\n", h)
		}
	}
	fmt.Fprintf(&b, "Content-Type: application/json\r\nAccept: */*\r\nContent-Length: %d\r\n\r\n", len(body))
	b.Write(body)
	return target{addr: addr, request: b.Bytes()}
}

// result is what one request/response exchange produced.
type result struct {
	status      int
	bodyBytes   int64
	firstToken  time.Time // streaming: when the first non-empty content arrived
	firstByte   time.Time // streaming: when the first body byte arrived
	sawDone     bool      // streaming: the stream's last event was seen
	overheadMS  float64   // value of x-sluice-overhead-ms, when present
	hasOverhead bool
}

// conn is one keep-alive HTTP/1.1 connection. It is not safe for concurrent use.
type conn struct {
	t       target
	nc      net.Conn
	br      *bufio.Reader
	timeout time.Duration
	stream  bool // scan bodies for the first token and the last event of sse
	sse     sseDialect
	scratch []byte
}

// newConn returns an unconnected conn; the first exchange dials. sse, when
// not nil, is the dialect streamed bodies are scanned in.
func newConn(t target, timeout time.Duration, sse *sseDialect) *conn {
	c := &conn{t: t, timeout: timeout, scratch: make([]byte, 0, 32<<10)}
	if sse != nil {
		c.stream, c.sse = true, *sse
	}
	return c
}

// dial connects if not connected.
func (c *conn) dial() error {
	if c.nc != nil {
		return nil
	}
	nc, err := net.DialTimeout("tcp", c.t.addr, c.timeout)
	if err != nil {
		return err
	}
	c.nc = nc
	if c.br == nil {
		c.br = bufio.NewReaderSize(nc, 32<<10)
	} else {
		c.br.Reset(nc)
	}
	return nil
}

// close drops the connection; the next exchange dials again.
func (c *conn) close() {
	if c.nc != nil {
		_ = c.nc.Close()
		c.nc = nil
	}
}

// do sends the pre-built request and reads the whole response. On any error
// the connection is closed so the next call starts clean.
func (c *conn) do() (result, error) {
	if err := c.dial(); err != nil {
		return result{}, err
	}
	if err := c.nc.SetDeadline(time.Now().Add(c.timeout)); err != nil {
		c.close()
		return result{}, err
	}
	if _, err := c.nc.Write(c.t.request); err != nil {
		c.close()
		return result{}, err
	}
	res, keep, err := c.readResponse()
	if err != nil || !keep {
		c.close()
	}
	return res, err
}

// readResponse parses one response from c.br: status line, headers, then a
// Content-Length, chunked or close-delimited body. keep reports whether the
// connection may be reused.
func (c *conn) readResponse() (res result, keep bool, err error) {
	br := c.br
	line, err := readLine(br)
	if err != nil {
		return res, false, err
	}
	// "HTTP/1.1 200 OK"
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' {
		return res, false, errMalformed
	}
	http10 := line[7] == '0'
	res.status, err = atoi(line[9:12])
	if err != nil {
		return res, false, errMalformed
	}
	contentLength := int64(-1)
	chunked := false
	keep = !http10
	for {
		line, err = readLine(br)
		if err != nil {
			return res, false, err
		}
		if len(line) == 0 {
			break
		}
		i := bytes.IndexByte(line, ':')
		if i <= 0 {
			return res, false, errMalformed
		}
		key, val := line[:i], bytes.TrimSpace(line[i+1:])
		switch {
		case bytes.EqualFold(key, []byte("Content-Length")):
			n, err := atoi(val)
			if err != nil {
				return res, false, errMalformed
			}
			contentLength = int64(n)
		case bytes.EqualFold(key, []byte("Transfer-Encoding")):
			chunked = containsFold(val, []byte("chunked"))
		case bytes.EqualFold(key, []byte("Connection")):
			if containsFold(val, []byte("close")) {
				keep = false
			} else if containsFold(val, []byte("keep-alive")) {
				keep = true
			}
		case bytes.EqualFold(key, []byte("X-Sluice-Overhead-Ms")):
			if f, err := strconv.ParseFloat(string(val), 64); err == nil {
				res.overheadMS, res.hasOverhead = f, true
			}
		}
	}
	noBody := res.status == 204 || res.status == 304 || (res.status >= 100 && res.status < 200)
	var carry []byte
	switch {
	case noBody:
	case chunked:
		for {
			line, err = readLine(br)
			if err != nil {
				return res, false, err
			}
			if i := bytes.IndexByte(line, ';'); i >= 0 { // chunk extension
				line = line[:i]
			}
			size, err := parseHex(bytes.TrimSpace(line))
			if err != nil {
				return res, false, err
			}
			if size == 0 {
				break
			}
			if carry, err = c.body(&res, size, carry); err != nil {
				return res, false, err
			}
			line, err = readLine(br) // CRLF after the chunk data
			if err != nil {
				return res, false, err
			}
			if len(line) != 0 {
				return res, false, errMalformed
			}
		}
		for { // trailers, ended by an empty line
			line, err = readLine(br)
			if err != nil {
				return res, false, err
			}
			if len(line) == 0 {
				break
			}
		}
	case contentLength >= 0:
		if _, err = c.body(&res, contentLength, carry); err != nil {
			return res, false, err
		}
	default: // delimited by close
		keep = false
		if _, err = c.body(&res, -1, carry); err != nil {
			return res, false, err
		}
	}
	return res, keep, nil
}

// body consumes n bytes of body data (n < 0: until EOF). In stream mode it
// scans the data for the first content token and for [DONE]; carry holds the
// tail of the previous piece so split patterns are still found.
func (c *conn) body(res *result, n int64, carry []byte) ([]byte, error) {
	br := c.br
	for n != 0 {
		if br.Buffered() == 0 {
			if _, err := br.Peek(1); err != nil {
				if n < 0 && err == io.EOF {
					return carry, nil
				}
				if err == io.EOF {
					err = io.ErrUnexpectedEOF
				}
				return carry, err
			}
		}
		k := br.Buffered()
		if n > 0 && int64(k) > n {
			k = int(n)
		}
		buf, _ := br.Peek(k)
		if c.stream {
			now := time.Now()
			if res.firstByte.IsZero() {
				res.firstByte = now
			}
			c.scratch = append(append(c.scratch[:0], carry...), buf...)
			if res.firstToken.IsZero() && hasToken(c.scratch, c.sse.token) {
				res.firstToken = now
			}
			if !res.sawDone && bytes.Contains(c.scratch, c.sse.done) {
				res.sawDone = true
			}
			k := len(c.scratch) - carryLen
			if k < 0 {
				k = 0
			}
			carry = append(carry[:0], c.scratch[k:]...)
		}
		if _, derr := br.Discard(len(buf)); derr != nil {
			return carry, derr
		}
		res.bodyBytes += int64(len(buf))
		if n > 0 {
			n -= int64(len(buf))
		}
	}
	return carry, nil
}

// hasToken reports whether b holds pattern (such as `"content":"`) followed
// by a character other than the closing quote, i.e. a non-empty delta.
func hasToken(b, pattern []byte) bool {
	for {
		i := bytes.Index(b, pattern)
		if i < 0 {
			return false
		}
		j := i + len(pattern)
		if j >= len(b) {
			return false
		}
		if b[j] != '"' {
			return true
		}
		b = b[j:]
	}
}

// readLine returns the next line without its CR LF. The slice is valid until
// the next read.
func readLine(br *bufio.Reader) ([]byte, error) {
	line, err := br.ReadSlice('\n')
	if err != nil {
		if errors.Is(err, bufio.ErrBufferFull) {
			return nil, errTooLarge
		}
		if err == io.EOF && len(line) > 0 {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, nil
}

// atoi parses a non-negative decimal number without allocating.
func atoi(b []byte) (int, error) {
	if len(b) == 0 || len(b) > 18 {
		return 0, errMalformed
	}
	n := 0
	for _, ch := range b {
		if ch < '0' || ch > '9' {
			return 0, errMalformed
		}
		n = n*10 + int(ch-'0')
	}
	return n, nil
}

// parseHex parses a chunk size.
func parseHex(b []byte) (int64, error) {
	if len(b) == 0 || len(b) > 15 {
		return 0, errMalformed
	}
	var n int64
	for _, ch := range b {
		var d byte
		switch {
		case ch >= '0' && ch <= '9':
			d = ch - '0'
		case ch >= 'a' && ch <= 'f':
			d = ch - 'a' + 10
		case ch >= 'A' && ch <= 'F':
			d = ch - 'A' + 10
		default:
			return 0, errMalformed
		}
		n = n<<4 | int64(d)
	}
	return n, nil
}

// containsFold reports whether sub is in b, ignoring ASCII case.
func containsFold(b, sub []byte) bool {
	for i := 0; i+len(sub) <= len(b); i++ {
		if bytes.EqualFold(b[i:i+len(sub)], sub) {
			return true
		}
	}
	return false
}

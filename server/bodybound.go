package server

import (
	"io"
	"net/http"
	"sync/atomic"
	"time"
)

// boundBody wraps a listener's handler so that every request body is read
// under a deadline from the first byte, authenticated or not: a client that
// declares a body and never sends it gets its answer (401, 404, 400 …) and
// loses the connection, instead of holding it while net/http waits to drain
// the body before writing the answer.
//
// For a request that declares a body (Content-Length > 0, or chunked) it
// sets the connection's read deadline to now+timeout and marks the answer
// "Connection: close", so net/http does not try to drain an unread body.
// When the handler reads the body to its end, both are undone: the answer
// may keep the connection alive, and the read deadline is cleared, so it
// cannot fire later during a long (streamed) answer — net/http's background
// read after the body would cancel the request's context. When the handler
// returns without having read the body, the read deadline moves to now, so
// the drain net/http attempts when closing the body fails at once.
//
// The body must be read on the handler's goroutine, before the answer's
// headers are written (net/http asks the same of HTTP/1 handlers).
func boundBody(h http.Handler, timeout time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength == 0 || r.Body == nil || r.Body == http.NoBody {
			h.ServeHTTP(w, r)
			return
		}
		rc := http.NewResponseController(w)
		_ = rc.SetReadDeadline(time.Now().Add(timeout))
		b := &eofBody{ReadCloser: r.Body, w: w, rc: rc}
		w.Header().Set("Connection", "close")
		r.Body = b
		h.ServeHTTP(w, r)
		if !b.eof.Load() {
			_ = rc.SetReadDeadline(time.Now())
		}
	})
}

// eofBody notices when the request body has been read to its end.
type eofBody struct {
	io.ReadCloser
	w   http.ResponseWriter
	rc  *http.ResponseController
	eof atomic.Bool
}

func (b *eofBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF && !b.eof.Swap(true) {
		_ = b.rc.SetReadDeadline(time.Time{})
		b.w.Header().Del("Connection")
	}
	return n, err
}

// boundFlush wraps the proxy listener's handler so that the end of every
// answer is written under a deadline: net/http flushes what the handler
// left buffered (a whole small answer, the end of a large one) after the
// handler returns, where the handler's own write deadlines no longer
// apply. A client that pipelines requests and never reads the answers
// would otherwise hold its connection, a goroutine and graceful shutdown
// forever. net/http clears the deadline once the answer is out, before
// the connection's next request; the handler sets its own for its writes
// (the router bounds each write, so streams of any length still work).
func boundFlush(h http.Handler, timeout time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() { _ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(timeout)) }()
		h.ServeHTTP(w, r)
	})
}

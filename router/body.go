package router

import (
	"compress/gzip"
	"errors"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/sluice-ai/sluice/llm"
)

// readBody reads the request body up to limit, answering 413 beyond it. A
// gzip-encoded body is decoded, and limit bounds the decoded bytes too, so
// a small compressed body cannot expand without bound; other encodings get
// 415.
//
// Every byte buffered is taken from held's budget first (nil: no budget);
// when the budget is spent the answer is 503 overloaded. The caller gives
// held back when the request ends, whatever readBody returned.
func readBody(w http.ResponseWriter, r *http.Request, limit int64, held *heldBytes) ([]byte, *llm.Error) {
	if r.ContentLength > limit {
		return nil, llm.Errorf(llm.KindTooLarge, "request body is larger than %d bytes", limit)
	}
	gz, cerr := contentEncoding(r.Header)
	if cerr != nil {
		return nil, cerr
	}
	src := &readErr{r: http.MaxBytesReader(w, r.Body, limit)}
	var body []byte
	var err error
	if gz {
		var zr *gzip.Reader
		if zr, err = gzip.NewReader(src); err == nil {
			body, err = readAllLimited(held.reader(zr), nil, limit)
		}
	} else {
		body, err = readAllLimited(held.reader(src), r.Header, limit)
	}
	if err != nil {
		var mbe *http.MaxBytesError
		switch {
		case errors.Is(err, errBudgetSpent):
			return nil, budgetError()
		case errors.As(err, &mbe) && (!gz || errors.As(src.err, &mbe)):
			return nil, llm.Errorf(llm.KindTooLarge, "request body is larger than %d bytes", limit)
		case errors.As(err, &mbe):
			return nil, llm.Errorf(llm.KindTooLarge, "request body is larger than %d bytes once decompressed", limit)
		case errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(src.err, os.ErrDeadlineExceeded):
			// Checked before the context: the read timeout cancels it too.
			e := llm.Errorf(llm.KindInvalidRequest, "the request body did not arrive in time")
			e.Status, e.Code = http.StatusRequestTimeout, "request_timeout"
			return nil, e
		case r.Context().Err() != nil:
			return nil, llm.Errorf(llm.KindCanceled, "client closed the request")
		case gz && src.err == nil:
			// The bytes arrived but are not gzip (or are cut short).
			e := llm.Errorf(llm.KindInvalidRequest, "request body is not valid gzip data")
			e.Err = err
			return nil, e
		}
		return nil, llm.Errorf(llm.KindInvalidRequest, "cannot read request body")
	}
	if len(body) == 0 {
		return nil, llm.Errorf(llm.KindInvalidRequest, "request body is empty; send a JSON object")
	}
	return body, nil
}

// bodyBudget bounds the request-body bytes all requests hold at once.
// Each body is bounded (MaxBodyBytes), but without this their sum is not:
// any key holder could open a thousand connections, send all but the last
// byte of a maximal body on each, and make the gateway hold gigabytes.
type bodyBudget struct {
	max  int64
	used atomic.Int64
}

// heldBytes is one request's share of a bodyBudget. Its methods are
// no-ops on nil.
type heldBytes struct {
	b *bodyBudget
	n int64
}

var errBudgetSpent = errors.New("request body budget spent")

// take reserves n bytes; false (nothing reserved) when that would spend
// more than the budget.
func (h *heldBytes) take(n int64) bool {
	if h == nil {
		return true
	}
	if h.b.used.Add(n) > h.b.max {
		h.b.used.Add(-n)
		return false
	}
	h.n += n
	return true
}

// release gives back everything h took.
func (h *heldBytes) release() {
	if h != nil && h.n > 0 {
		h.b.used.Add(-h.n)
		h.n = 0
	}
}

// reader returns r with every byte read taken from the budget first.
func (h *heldBytes) reader(r io.Reader) io.Reader {
	if h == nil {
		return r
	}
	return budgetReader{r: r, h: h}
}

type budgetReader struct {
	r io.Reader
	h *heldBytes
}

func (b budgetReader) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if n > 0 && !b.h.take(int64(n)) {
		return 0, errBudgetSpent
	}
	return n, err
}

func budgetError() *llm.Error {
	e := llm.Errorf(llm.KindUnavailable, "the gateway is holding too many request bodies at once; retry shortly")
	e.Code, e.RetryAfter = "overloaded", time.Second
	return e
}

// contentEncoding reports whether the body is gzip-encoded; an encoding
// other than gzip or identity, or more than one, is a 415.
func contentEncoding(h http.Header) (gzip bool, _ *llm.Error) {
	vs := h.Values("Content-Encoding")
	if len(vs) == 0 {
		return false, nil
	}
	v := ""
	if len(vs) == 1 {
		v = strings.ToLower(strings.TrimSpace(vs[0]))
	}
	switch v {
	case "identity":
		return false, nil
	case "gzip", "x-gzip":
		return true, nil
	}
	e := llm.Errorf(llm.KindInvalidRequest, "unsupported Content-Encoding %q: send the body uncompressed or gzip-encoded", truncate(strings.Join(vs, ", "), 64))
	e.Status, e.Code, e.Param = http.StatusUnsupportedMediaType, "unsupported_content_encoding", "Content-Encoding"
	return false, e
}

// readErr remembers the error of the reader it wraps, so a failure of the
// connection can be told from a failure of the decoder above it.
type readErr struct {
	r   io.Reader
	err error
}

func (r *readErr) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if err != nil && err != io.EOF {
		r.err = err
	}
	return n, err
}

// initialBodyBuf is the most readAllLimited allocates before bytes arrive:
// a declared Content-Length is a hint, never a reservation.
const initialBodyBuf = 16 << 10

// readAllLimited reads r into a buffer that starts small (at most
// initialBodyBuf, less when Content-Length in h says so) and grows as bytes
// arrive. More than limit bytes is an *http.MaxBytesError. h may be nil.
func readAllLimited(r io.Reader, h http.Header, limit int64) ([]byte, error) {
	n := int64(512)
	if cl, err := strconv.ParseInt(h.Get("Content-Length"), 10, 64); err == nil && cl >= 0 && cl <= limit {
		n = min(cl+1, initialBodyBuf) // one spare byte so EOF is seen without growing
	}
	buf := make([]byte, 0, n)
	for {
		if len(buf) == cap(buf) {
			if int64(len(buf)) > limit {
				return nil, &http.MaxBytesError{Limit: limit}
			}
			// Double, so that reading n bytes copies O(n) in all.
			grown := make([]byte, len(buf), min(2*int64(cap(buf)), limit+1))
			copy(grown, buf)
			buf = grown
		}
		m, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+m]
		if int64(len(buf)) > limit {
			return nil, &http.MaxBytesError{Limit: limit}
		}
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

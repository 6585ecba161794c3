package router

import (
	"errors"
	"io"
	"net/http"
	"strconv"

	"github.com/sluice-ai/sluice/llm"
)

// readBody reads the request body up to limit, answering 413 beyond it.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, *llm.Error) {
	if r.ContentLength > limit {
		return nil, llm.Errorf(llm.KindTooLarge, "request body is larger than %d bytes", limit)
	}
	body, err := readAllLimited(http.MaxBytesReader(w, r.Body, limit), r.Header, limit)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, llm.Errorf(llm.KindTooLarge, "request body is larger than %d bytes", limit)
		}
		if r.Context().Err() != nil {
			return nil, llm.Errorf(llm.KindCanceled, "client closed the request")
		}
		return nil, llm.Errorf(llm.KindInvalidRequest, "cannot read request body")
	}
	if len(body) == 0 {
		return nil, llm.Errorf(llm.KindInvalidRequest, "request body is empty; send a JSON object")
	}
	return body, nil
}

// readAllLimited reads r, sizing the buffer from Content-Length when known.
// More than limit bytes is an *http.MaxBytesError.
func readAllLimited(r io.Reader, h http.Header, limit int64) ([]byte, error) {
	n := int64(512)
	if cl, err := strconv.ParseInt(h.Get("Content-Length"), 10, 64); err == nil && cl >= 0 && cl <= limit {
		n = cl + 1 // one spare byte so EOF is seen without growing
	}
	buf := make([]byte, 0, n)
	for {
		if len(buf) == cap(buf) {
			if int64(len(buf)) > limit {
				return nil, &http.MaxBytesError{Limit: limit}
			}
			buf = append(buf, 0)[:len(buf)]
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

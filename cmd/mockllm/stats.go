package main

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// outcome is how a counted request ended.
type outcome int

const (
	// outcomeCompleted: the mock wrote its whole response (errors included).
	outcomeCompleted outcome = iota
	// outcomeCanceled: the client went away before the mock finished writing.
	outcomeCanceled
	// outcomeAborted: the mock dropped the connection on purpose
	// (X-Mock-Disconnect-After).
	outcomeAborted
)

// stats counts the model requests the mock served. /_mock/* and /healthz are
// not counted.
type stats struct {
	requests  atomic.Int64
	completed atomic.Int64
	canceled  atomic.Int64
	aborted   atomic.Int64
	inFlight  atomic.Int64

	mu          sync.Mutex
	lastHeaders http.Header // the request's own map; net/http never mutates it after reading
	lastBody    []byte      // owned by stats once recorded
}

// statsBody is the JSON shape of GET /_mock/stats.
type statsBody struct {
	Requests    int64             `json:"requests"`
	Completed   int64             `json:"completed"`
	Canceled    int64             `json:"canceled"`
	Aborted     int64             `json:"aborted"`
	InFlight    int64             `json:"in_flight"`
	LastHeaders map[string]string `json:"last_headers"`
	LastBody    string            `json:"last_body"`
}

// begin counts a request as started.
func (s *stats) begin() {
	s.requests.Add(1)
	s.inFlight.Add(1)
}

// end counts a request as finished with outcome o.
func (s *stats) end(o outcome) {
	s.inFlight.Add(-1)
	switch o {
	case outcomeCompleted:
		s.completed.Add(1)
	case outcomeCanceled:
		s.canceled.Add(1)
	case outcomeAborted:
		s.aborted.Add(1)
	}
}

// record remembers the last request's headers and body. body must not be
// modified afterwards.
func (s *stats) record(h http.Header, body []byte) {
	s.mu.Lock()
	s.lastHeaders, s.lastBody = h, body
	s.mu.Unlock()
}

// snapshot returns the current counters and last request.
func (s *stats) snapshot() statsBody {
	out := statsBody{
		Requests:    s.requests.Load(),
		Completed:   s.completed.Load(),
		Canceled:    s.canceled.Load(),
		Aborted:     s.aborted.Load(),
		InFlight:    s.inFlight.Load(),
		LastHeaders: map[string]string{},
	}
	s.mu.Lock()
	h, body := s.lastHeaders, s.lastBody
	s.mu.Unlock()
	for k, v := range h {
		out.LastHeaders[k] = strings.Join(v, ", ")
	}
	out.LastBody = string(body)
	return out
}

// reset zeroes the counters and forgets the last request. in_flight is left
// alone: it tracks live requests and would go negative.
func (s *stats) reset() {
	s.requests.Store(0)
	s.completed.Store(0)
	s.canceled.Store(0)
	s.aborted.Store(0)
	s.record(nil, nil)
}

// handleStats serves GET /_mock/stats.
func (m *mock) handleStats(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(m.stats.snapshot())
}

// handleReset serves POST /_mock/reset.
func (m *mock) handleReset(w http.ResponseWriter, _ *http.Request) {
	m.stats.reset()
	w.WriteHeader(http.StatusNoContent)
}

// handleForceStatus serves POST /_mock/status?code=N: every model request
// without its own X-Mock-Status answers N from now on (200 or 0: normal).
func (m *mock) handleForceStatus(w http.ResponseWriter, r *http.Request) {
	code, err := strconv.Atoi(r.URL.Query().Get("code"))
	if err != nil || (code != 0 && code != 200 && (code < 400 || code > 599)) {
		http.Error(w, "code must be 200, 0 or 400-599", http.StatusBadRequest)
		return
	}
	if code == 200 {
		code = 0
	}
	m.forced.Store(int32(code))
	w.WriteHeader(http.StatusNoContent)
}

package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// modeHold opens Conns streams at once and holds them (open-streams phase).
const modeHold = "hold"

// holdDialers bounds the streams being opened at the same moment, so no
// listen backlog overflows.
const holdDialers = 64

// maxHoldHead bounds the bytes read while waiting for a stream's status,
// headers and first event.
const maxHoldHead = 64 << 10

// HoldReady is what the load process reports once every stream has had its
// first event (or failed to).
type HoldReady struct {
	Open       int     `json:"open"`
	Failed     int     `json:"failed"`
	FirstError string  `json:"first_error,omitempty"`
	Seconds    float64 `json:"seconds"` // time to open them all
}

// HoldResult is what the load process reports after releasing the streams.
type HoldResult struct {
	HoldReady
	// EndedEarly counts open streams that ended (their last event, a
	// closed connection or an error) before they were released: a target
	// that cuts long streams shows here.
	EndedEarly int `json:"ended_early"`
}

// holdStream is one held stream and the goroutine draining it.
type holdStream struct {
	nc   net.Conn
	done chan struct{}
}

// runHold opens spec.Conns streams of spec.Target, each read until its
// first SSE event (streams not started within spec.Duration count as
// failed); then calls ready, drains every stream in the background
// until release is closed (or ctx is done), and closes them all. Each
// stream's opening is bounded by spec.Timeout.
func runHold(ctx context.Context, spec LoadSpec, ready func(HoldReady), release <-chan struct{}) (HoldResult, error) {
	if spec.Conns <= 0 {
		return HoldResult{}, errors.New("conns must be positive")
	}
	if spec.Timeout <= 0 {
		spec.Timeout = 30 * time.Second
	}
	start := time.Now()
	budget := start.Add(spec.Duration)
	streams := make([]*holdStream, spec.Conns)
	errs := make([]error, spec.Conns)
	var released atomic.Bool
	var endedEarly atomic.Int64
	if spec.SSE == "" {
		spec.SSE = sseOpenAI
	}
	sse, ok := sseDialectOf(spec.SSE)
	if !ok {
		return HoldResult{}, fmt.Errorf("unknown SSE dialect %q", spec.SSE)
	}
	sse.done = append(sse.done, '\n') // the whole last line, not its first bytes
	sem := make(chan struct{}, holdDialers)
	var wg sync.WaitGroup
	for i := range streams {
		if ctx.Err() != nil {
			errs[i] = ctx.Err()
			continue
		}
		sem <- struct{}{}
		if spec.Duration > 0 && time.Now().After(budget) {
			<-sem
			errs[i] = fmt.Errorf("not opened within %s", spec.Duration)
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			nc, br, err := openStream(spec, sse.done)
			if err != nil {
				errs[i] = err
				return
			}
			s := &holdStream{nc: nc, done: make(chan struct{})}
			streams[i] = s
			go func() {
				defer close(s.done)
				drainUntilEnd(br, sse.done)
				if !released.Load() {
					endedEarly.Add(1)
				}
			}()
		}()
	}
	wg.Wait()
	var r HoldResult
	for i, s := range streams {
		if s != nil {
			r.Open++
			continue
		}
		r.Failed++
		if r.FirstError == "" && errs[i] != nil {
			r.FirstError = errs[i].Error()
		}
	}
	r.Seconds = time.Since(start).Seconds()
	ready(r.HoldReady)
	select {
	case <-release:
	case <-ctx.Done():
	}
	released.Store(true)
	for _, s := range streams {
		if s != nil {
			_ = s.nc.Close()
		}
	}
	for _, s := range streams {
		if s != nil {
			<-s.done
		}
	}
	r.EndedEarly = int(endedEarly.Load())
	return r, nil
}

// drainUntilEnd reads a held stream until it ends: its last event (done)
// arrives, or the connection closes or fails.
func drainUntilEnd(br *bufio.Reader, done []byte) {
	buf := make([]byte, 4096)
	var carry []byte
	for {
		n, err := br.Read(buf)
		if n > 0 {
			window := append(carry, buf[:n]...)
			if bytes.Contains(window, done) {
				return
			}
			carry = append(carry[:0], window[max(0, len(window)-carryLen):]...)
		}
		if err != nil {
			return
		}
	}
}

// openStream dials, sends the request and reads the status line, the
// headers and the body up to the first SSE field line ("data:" or
// "event:"). It returns the connection with its deadline cleared and the
// reader positioned after that line; a stream whose first event is its
// last (done) is an error.
func openStream(spec LoadSpec, done []byte) (net.Conn, *bufio.Reader, error) {
	nc, err := net.DialTimeout("tcp", spec.Target.addr, spec.Timeout)
	if err != nil {
		return nil, nil, err
	}
	fail := func(err error) (net.Conn, *bufio.Reader, error) {
		_ = nc.Close()
		return nil, nil, err
	}
	if err := nc.SetDeadline(time.Now().Add(spec.Timeout)); err != nil {
		return fail(err)
	}
	if _, err := nc.Write(spec.Target.request); err != nil {
		return fail(err)
	}
	br := bufio.NewReaderSize(nc, 4096)
	read := 0
	line, err := readLine(br)
	if err != nil {
		return fail(err)
	}
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) {
		return fail(errMalformed)
	}
	status, err := atoi(line[9:12])
	if err != nil {
		return fail(errMalformed)
	}
	if status != 200 {
		return fail(fmt.Errorf("HTTP status %d", status))
	}
	inBody := false
	for {
		line, err := readLine(br)
		if err != nil {
			return fail(err)
		}
		if read += len(line) + 2; read > maxHoldHead {
			return fail(errors.New("no SSE event in the first 64 KiB"))
		}
		if !inBody {
			inBody = len(line) == 0
			continue
		}
		if bytes.HasPrefix(line, []byte("data:")) || bytes.HasPrefix(line, []byte("event:")) {
			if len(done) > 1 && bytes.Contains(line, done[:len(done)-1]) {
				return fail(errors.New("the stream ended at its first event"))
			}
			break
		}
	}
	if err := nc.SetDeadline(time.Time{}); err != nil {
		return fail(err)
	}
	return nc, br, nil
}

package router

import (
	"context"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-ai/sluice/llm"
	"github.com/sluice-ai/sluice/providers"
)

// idleWatch cancels an upstream call that stays quiet for d: every sign of
// life (touch, or a read through reader) restarts the clock. With a
// deadline it also cancels the call at the deadline however lively it is,
// on the same timer (no second timer or context per call).
//
// A sign of life costs one atomic store of the time, not a timer reset:
// the timer is armed for when the call would be quiet for d (or reach its
// deadline) if nothing happened, and when it fires it checks when the
// last activity was and, if the call was not quiet long enough, re-arms
// itself for the rest of the gap. A call that is never quiet thus wakes
// the timer about once per d, whatever its event rate.
type idleWatch struct {
	d        time.Duration
	base     time.Time    // the watch's start: last is measured from it, on the monotonic clock
	last     atomic.Int64 // nanoseconds after base of the last sign of life
	deadline atomic.Int64 // unix nanoseconds; 0: none
	cancel   context.CancelFunc
	t        *time.Timer
	fired    atomic.Bool // the watch cancelled the call: idle too long
	expired  atomic.Bool // the watch cancelled the call: deadline reached

	mu      sync.Mutex // orders the timer's re-arming: until, stop and check
	stopped bool
}

func watchIdle(d time.Duration, cancel context.CancelFunc) *idleWatch {
	w := &idleWatch{d: d, base: time.Now(), cancel: cancel}
	w.mu.Lock() // check, however soon it runs, finds w.t set
	w.t = time.AfterFunc(d, w.check)
	w.mu.Unlock()
	return w
}

// check runs when the timer fires: the call is cancelled if its deadline
// passed or it was quiet for d, else the timer is re-armed for what is
// left of the gap.
func (w *idleWatch) check() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopped {
		return
	}
	now := time.Now()
	if dl := w.deadline.Load(); dl != 0 && now.UnixNano() >= dl {
		w.expired.Store(true)
		w.cancel()
		return
	}
	if w.quiet(now) >= w.d {
		w.fired.Store(true)
		w.cancel()
		return
	}
	w.t.Reset(w.next(now))
}

// quiet is how long the call has been quiet at now.
func (w *idleWatch) quiet(now time.Time) time.Duration {
	return now.Sub(w.base) - time.Duration(w.last.Load())
}

// until sets a deadline: the call is cancelled then however lively.
func (w *idleWatch) until(t time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.deadline.Store(t.UnixNano())
	if !w.stopped {
		w.t.Reset(w.next(time.Now()))
	}
}

// next is the time from now until the watch must fire if nothing happens.
func (w *idleWatch) next(now time.Time) time.Duration {
	d := w.d - w.quiet(now)
	if dl := w.deadline.Load(); dl != 0 {
		d = min(d, time.Duration(dl-now.UnixNano()))
	}
	return d
}

// clearDeadline drops the deadline: from now on only quiet gaps count.
// The timer needs no change: when it fires it finds no deadline and
// re-arms for the rest of the quiet gap.
func (w *idleWatch) clearDeadline() { w.deadline.Store(0) }

// touch records a sign of life: the quiet gap starts again now.
func (w *idleWatch) touch() { w.last.Store(int64(time.Since(w.base))) }

// stop ends the watch; the call is never cancelled by it afterwards.
func (w *idleWatch) stop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.stopped = true
	w.t.Stop()
}

// reader returns r with every read counting as a sign of life.
func (w *idleWatch) reader(r io.Reader) io.Reader { return idleReader{r: r, w: w} }

type idleReader struct {
	r io.Reader
	w *idleWatch
}

func (r idleReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	r.w.touch()
	return n, err
}

// timeouter is implemented by providers that know their own timeouts.
type timeouter interface {
	Timeouts() llm.Timeouts
}

// timeoutsOf returns p's timeouts with defaults filled in: the router asks
// the provider, never the configuration, how long its upstream may stay
// quiet (Idle) and how long a non-streamed call may take (FirstByte).
func timeoutsOf(p providers.Provider) llm.Timeouts {
	if t, ok := p.(timeouter); ok {
		return t.Timeouts().WithDefaults()
	}
	return llm.Timeouts{}.WithDefaults()
}

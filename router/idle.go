package router

import (
	"context"
	"io"
	"sync/atomic"
	"time"

	"github.com/sluice-ai/sluice/llm"
	"github.com/sluice-ai/sluice/providers"
)

// idleWatch cancels an upstream call that stays quiet for d: every sign of
// life (reset, or a read through reader) restarts the clock. With a
// deadline it also cancels the call at the deadline however lively it is,
// on the same timer (no second timer or context per call).
type idleWatch struct {
	d        time.Duration
	deadline atomic.Int64 // unix nanoseconds; 0: none
	t        *time.Timer
	fired    atomic.Bool // the watch cancelled the call: idle too long
	expired  atomic.Bool // the watch cancelled the call: deadline reached
}

func watchIdle(d time.Duration, cancel context.CancelFunc) *idleWatch {
	w := &idleWatch{d: d}
	w.t = time.AfterFunc(d, func() {
		if dl := w.deadline.Load(); dl != 0 && time.Now().UnixNano() >= dl {
			w.expired.Store(true)
		} else {
			w.fired.Store(true)
		}
		cancel()
	})
	return w
}

// until sets a deadline: the call is cancelled then however lively.
func (w *idleWatch) until(t time.Time) {
	w.deadline.Store(t.UnixNano())
	w.t.Reset(w.next())
}

// next is the time until the watch must fire if nothing happens.
func (w *idleWatch) next() time.Duration {
	if dl := w.deadline.Load(); dl != 0 {
		return min(w.d, time.Duration(dl-time.Now().UnixNano()))
	}
	return w.d
}

// clearDeadline drops the deadline: from now on only quiet gaps count.
func (w *idleWatch) clearDeadline() { w.deadline.Store(0) }

func (w *idleWatch) reset() { w.t.Reset(w.next()) }
func (w *idleWatch) stop()  { w.t.Stop() }

// reader returns r with every read resetting the watch.
func (w *idleWatch) reader(r io.Reader) io.Reader { return idleReader{r: r, w: w} }

type idleReader struct {
	r io.Reader
	w *idleWatch
}

func (r idleReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	r.w.reset()
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

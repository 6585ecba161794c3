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
// life (reset, or a read through reader) restarts the clock.
type idleWatch struct {
	d     time.Duration
	t     *time.Timer
	fired atomic.Bool // the watch cancelled the call
}

func watchIdle(d time.Duration, cancel context.CancelFunc) *idleWatch {
	w := &idleWatch{d: d}
	w.t = time.AfterFunc(d, func() { w.fired.Store(true); cancel() })
	return w
}

func (w *idleWatch) reset() { w.t.Reset(w.d) }
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

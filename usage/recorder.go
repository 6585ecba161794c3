package usage

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluice-ai/sluice/llm"
)

// Sink stores usage records. InsertUsage must be idempotent per record id,
// so a retried batch never duplicates rows, and it returns how many rows it
// actually inserted: the others were already stored (a replayed batch or an
// id collision).
type Sink interface {
	InsertUsage(ctx context.Context, recs []llm.Record) (int, error)
}

// Options tunes a Recorder. Zero values take the defaults.
type Options struct {
	// QueueSize bounds the records waiting to be written. Default 100000.
	// The queue takes memory for what it holds (in chunks of BatchSize
	// records), not for QueueSize records up front.
	QueueSize int
	// BatchSize is the largest batch written at once. Default 1000.
	BatchSize int
	// FlushInterval is the longest a record waits for a batch. Default 200ms.
	FlushInterval time.Duration
	// Retries is how many times a failed batch is retried. Default 5.
	Retries int
	// RetryBackoff is the first wait between retries; it doubles. Default 200ms.
	RetryBackoff time.Duration
	// WriteTimeout bounds one write attempt. Default 30s.
	WriteTimeout time.Duration
	// DrainTimeout bounds the whole drain when the recorder stops: writing
	// what is queued, retries and backoff included. What is left when it
	// runs out is dropped and counted (reason "shutdown"). Default 10s.
	DrainTimeout time.Duration
	// LogInterval is the least time between two log lines about failed
	// writes and dropped records: failures are counted and summarised
	// rather than logged one by one (the metrics count every one).
	// Default 10s.
	LogInterval time.Duration
	Logger      *slog.Logger
	Registerer  prometheus.Registerer
}

// Recorder queues records and writes them in batches. Record never blocks.
// Its writer runs in Run, started by its owner; Close stops it and drains.
type Recorder struct {
	sink    Sink
	opts    Options
	queue   *queue
	done    chan struct{} // closed when the writer has returned
	started atomic.Bool
	stopped atomic.Bool // Close was called: Record drops (no lock on the hot path)
	// stop ends the writer's loop (Close); abort cuts the drain short
	// (Close's context ended).
	stop, abort         context.Context
	stopFunc, abortFunc context.CancelFunc

	dropped  *prometheus.CounterVec
	written  prometheus.Counter
	conflict prometheus.Counter
	clamped  prometheus.Counter
	failed   prometheus.Counter

	// Pending counts for the next summary log line.
	logMu   sync.Mutex
	lastLog time.Time
	pending struct {
		queueFull, writeFailed, shutdown, conflicts, errors atomic.Int64
	}
	lastErr atomic.Pointer[string]
}

// NewRecorder returns a Recorder writing to sink. Nothing is written until
// its owner calls Run; Close flushes.
func NewRecorder(sink Sink, o Options) *Recorder {
	if o.QueueSize <= 0 {
		o.QueueSize = 100000
	}
	if o.BatchSize <= 0 {
		o.BatchSize = 1000
	}
	if o.FlushInterval <= 0 {
		o.FlushInterval = 200 * time.Millisecond
	}
	if o.Retries <= 0 {
		o.Retries = 5
	}
	if o.RetryBackoff <= 0 {
		o.RetryBackoff = 200 * time.Millisecond
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = 30 * time.Second
	}
	if o.DrainTimeout <= 0 {
		o.DrainTimeout = 10 * time.Second
	}
	if o.LogInterval <= 0 {
		o.LogInterval = 10 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	r := &Recorder{
		sink:  sink,
		opts:  o,
		queue: newQueue(o.QueueSize, o.BatchSize),
		done:  make(chan struct{}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_usage_records_dropped_total",
			Help: "Usage records that could not be stored, by reason (queue_full, write_failed, shutdown).",
		}, []string{"reason"}),
		written: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sluice_usage_records_written_total",
			Help: "Usage rows actually inserted.",
		}),
		clamped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sluice_usage_records_clamped_total",
			Help: "Usage records whose upstream reported impossible usage (negative, or beyond what the request could use), stored with clamped figures.",
		}),
		conflict: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sluice_usage_records_conflicts_total",
			Help: "Usage records not inserted because a row with their id was already stored: a batch replayed after an unacknowledged commit, or an id collision.",
		}),
		failed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sluice_usage_write_errors_total",
			Help: "Failed attempts to write a batch of usage records (each may be retried).",
		}),
	}
	r.stop, r.stopFunc = context.WithCancel(context.Background())
	r.abort, r.abortFunc = context.WithCancel(context.Background())
	if o.Registerer != nil {
		o.Registerer.MustRegister(r.dropped, r.written, r.conflict, r.clamped, r.failed)
	}
	for _, reason := range []string{"queue_full", "write_failed", "shutdown"} {
		r.dropped.WithLabelValues(reason)
	}
	return r
}

// Record queues rec. When the queue is full, or the recorder has stopped,
// the record is dropped and counted; the request it describes is never
// slowed down.
func (r *Recorder) Record(rec llm.Record) {
	if rec.Clamped {
		r.clamped.Inc()
	}
	if r.stopped.Load() {
		r.drop("shutdown", 1)
		return
	}
	switch r.queue.push(&rec) {
	case pushFull:
		r.drop("queue_full", 1)
	case pushClosed:
		r.drop("shutdown", 1)
	}
}

// Run writes queued records in batches until ctx ends or Close is called,
// then drains the queue within Options.DrainTimeout and returns. Its owner
// calls it once, on a goroutine it waits for; later calls return at once.
func (r *Recorder) Run(ctx context.Context) {
	if !r.started.CompareAndSwap(false, true) {
		return
	}
	defer close(r.done)
	r.run(ctx)
}

// Close stops the writer and waits until what was queued is written, the
// drain budget (Options.DrainTimeout) is spent, or ctx ends; in the latter
// cases the rest is dropped and counted. Records passed to Record after
// Close are dropped. When Run was never called, Close drains itself.
func (r *Recorder) Close(ctx context.Context) error {
	r.stopped.Store(true)
	r.stopFunc()
	if r.started.CompareAndSwap(false, true) {
		stopAbort := context.AfterFunc(ctx, r.abortFunc)
		defer stopAbort()
		r.run(r.stop)
		close(r.done)
		return ctx.Err()
	}
	select {
	case <-r.done:
		return nil
	case <-ctx.Done():
		r.abortFunc() // the writer gives up at once and counts the rest
		return ctx.Err()
	}
}

// run is the writer: the loop, then the drain.
func (r *Recorder) run(ctx context.Context) {
	live, cancel := context.WithCancel(ctx)
	defer cancel()
	stopLive := context.AfterFunc(r.stop, cancel)
	defer stopLive()

	t := time.NewTicker(r.opts.FlushInterval)
	defer t.Stop()
	var batch []llm.Record // a batch interrupted by the stop, for the drain
	idle := 0              // flush ticks in a row that found nothing to write
loop:
	for {
		tick := false
		select {
		case <-r.queue.ready: // a chunk is full: write the full ones
		case <-t.C: // and then the partial one
			tick = true
		case <-live.Done():
			break loop
		}
		var wrote bool
		if batch, wrote = r.writeQueued(live, tick); batch != nil {
			break loop
		}
		if wrote {
			idle = 0
		} else if tick {
			if idle++; idle == idleTicks {
				r.queue.trim() // idle: no spare chunk kept either
			}
		}
		if tick {
			r.logSummary(false)
		}
	}
	// From here on Record drops (and counts) rather than queue records no
	// one would write.
	r.stopped.Store(true)
	r.drain(batch)
	r.logSummary(true)
}

// idleTicks is how many flush ticks in a row without a record make the
// writer drop the queue's spare chunks (10 s at the default interval), so
// an idle gateway holds no record memory at all, while one that records
// even a few a second reuses its spares rather than allocate a chunk for
// each batch.
const idleTicks = 50

// writeQueued writes the full chunks queued, oldest first, and then, when
// partial is true, the one being filled. It returns the batch it was
// writing when ctx ended (nil otherwise) and whether it wrote anything.
func (r *Recorder) writeQueued(ctx context.Context, partial bool) (interrupted []llm.Record, wrote bool) {
	for {
		c := r.queue.pop(false)
		if c == nil && partial {
			c, partial = r.queue.pop(true), false
		}
		if c == nil {
			return nil, wrote
		}
		if !r.write(ctx, c) {
			return c, wrote
		}
		wrote = true
		r.queue.recycle(c)
	}
}

// drain writes batch and everything still queued within the drain budget;
// what is left when the budget or Close's context runs out is counted as
// dropped. The queue is closed on the way out: a record that passed
// Record's stopped check just before the stop is written or counted, never
// left behind.
func (r *Recorder) drain(batch []llm.Record) {
	ctx, cancel := context.WithTimeout(context.Background(), r.opts.DrainTimeout)
	defer cancel()
	stopAbort := context.AfterFunc(r.abort, cancel)
	defer stopAbort()
	for {
		if len(batch) == 0 {
			batch = r.queue.pop(true)
		}
		if len(batch) == 0 {
			if r.queue.close() == 0 {
				return
			}
			continue // records pushed before the close: write them too
		}
		if !r.write(ctx, batch) {
			r.drop("shutdown", len(batch)+r.queue.discard())
			return
		}
		r.queue.recycle(batch)
		batch = nil
	}
}

// write stores batch, retrying with exponential backoff. It returns false,
// keeping the batch, when ctx ends first; otherwise the batch is written or
// dropped (and counted) after Options.Retries retries.
func (r *Recorder) write(ctx context.Context, batch []llm.Record) bool {
	backoff := r.opts.RetryBackoff
	for attempt := 0; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, r.opts.WriteTimeout)
		n, err := r.sink.InsertUsage(actx, batch)
		cancel()
		if err == nil {
			r.written.Add(float64(n))
			if c := len(batch) - n; c > 0 {
				r.conflict.Add(float64(c))
				r.pending.conflicts.Add(int64(c))
			}
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		r.failed.Inc()
		r.pending.errors.Add(1)
		msg := err.Error()
		r.lastErr.Store(&msg)
		if attempt >= r.opts.Retries {
			r.drop("write_failed", len(batch))
			return true
		}
		w := time.NewTimer(backoff)
		select {
		case <-w.C:
		case <-ctx.Done():
			w.Stop()
			return false
		}
		backoff *= 2
	}
}

// drop counts n dropped records for the metric and the next summary.
func (r *Recorder) drop(reason string, n int) {
	if n <= 0 {
		return
	}
	r.dropped.WithLabelValues(reason).Add(float64(n))
	switch reason {
	case "queue_full":
		r.pending.queueFull.Add(int64(n))
	case "write_failed":
		r.pending.writeFailed.Add(int64(n))
	default:
		r.pending.shutdown.Add(int64(n))
	}
}

// logSummary logs, at most once per Options.LogInterval (or now when
// final), one line with the failures and drops counted since the last one:
// a database outage is a line every few seconds, not one per record.
func (r *Recorder) logSummary(final bool) {
	r.logMu.Lock()
	defer r.logMu.Unlock()
	now := time.Now()
	if !final && now.Sub(r.lastLog) < r.opts.LogInterval {
		return
	}
	p := &r.pending
	qf, wf, sd := p.queueFull.Swap(0), p.writeFailed.Swap(0), p.shutdown.Swap(0)
	cf, errs := p.conflicts.Swap(0), p.errors.Swap(0)
	if qf+wf+sd+cf+errs == 0 {
		return
	}
	r.lastLog = now
	attrs := []any{"dropped_queue_full", qf, "dropped_write_failed", wf, "dropped_shutdown", sd,
		"conflicts", cf, "write_errors", errs}
	if e := r.lastErr.Swap(nil); e != nil {
		attrs = append(attrs, "last_err", *e)
	}
	if qf+wf+sd > 0 {
		r.opts.Logger.Error("usage records dropped", attrs...)
	} else {
		r.opts.Logger.Warn("usage writes failing or conflicting", attrs...)
	}
}

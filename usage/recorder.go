package usage

import (
	"context"
	"log/slog"
	"sync"
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
	QueueSize int
	// BatchSize is the largest batch written at once. Default 1000.
	BatchSize int
	// FlushInterval is the longest a record waits for a batch. Default 200ms.
	FlushInterval time.Duration
	// Retries is how many times a failed batch is retried. Default 5.
	Retries int
	// RetryBackoff is the first wait between retries; it doubles. Default 200ms.
	RetryBackoff time.Duration
	Logger       *slog.Logger
	Registerer   prometheus.Registerer
}

// Recorder queues records and writes them in batches. Record never blocks.
type Recorder struct {
	sink     Sink
	opts     Options
	queue    chan llm.Record
	done     chan struct{}
	stop     chan struct{}
	once     sync.Once
	dropped  *prometheus.CounterVec
	written  prometheus.Counter
	conflict prometheus.Counter
	clamped  prometheus.Counter
	failed   prometheus.Counter
}

// NewRecorder starts a Recorder writing to sink. Close it to flush.
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
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	r := &Recorder{
		sink:  sink,
		opts:  o,
		queue: make(chan llm.Record, o.QueueSize),
		done:  make(chan struct{}),
		stop:  make(chan struct{}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_usage_records_dropped_total",
			Help: "Usage records that could not be stored, by reason (queue_full, write_failed).",
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
	if o.Registerer != nil {
		o.Registerer.MustRegister(r.dropped, r.written, r.conflict, r.clamped, r.failed)
	}
	r.dropped.WithLabelValues("queue_full")
	r.dropped.WithLabelValues("write_failed")
	go r.run()
	return r
}

// Record queues rec. When the queue is full the record is dropped and
// counted; the request it describes is never slowed down.
func (r *Recorder) Record(rec llm.Record) {
	if rec.Clamped {
		r.clamped.Inc()
	}
	select {
	case r.queue <- rec:
	default:
		r.dropped.WithLabelValues("queue_full").Inc()
		r.opts.Logger.Warn("usage queue full: record dropped", "request_id", rec.ID)
	}
}

// Close stops accepting the background loop's ticks, writes everything
// queued and returns when done or when ctx ends. Records passed to Record
// after Close starts may be lost.
func (r *Recorder) Close(ctx context.Context) error {
	r.once.Do(func() { close(r.stop) })
	select {
	case <-r.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (r *Recorder) run() {
	defer close(r.done)
	t := time.NewTicker(r.opts.FlushInterval)
	defer t.Stop()
	batch := make([]llm.Record, 0, r.opts.BatchSize)
	flush := func() {
		if len(batch) > 0 {
			r.write(batch)
			batch = batch[:0]
		}
	}
	for {
		select {
		case rec := <-r.queue:
			batch = append(batch, rec)
			if len(batch) >= r.opts.BatchSize {
				flush()
			}
		case <-t.C:
			flush()
		case <-r.stop:
			for {
				select {
				case rec := <-r.queue:
					batch = append(batch, rec)
					if len(batch) >= r.opts.BatchSize {
						flush()
					}
				default:
					flush()
					return
				}
			}
		}
	}
}

func (r *Recorder) write(batch []llm.Record) {
	backoff := r.opts.RetryBackoff
	for attempt := 0; ; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		n, err := r.sink.InsertUsage(ctx, batch)
		cancel()
		if err == nil {
			r.written.Add(float64(n))
			if c := len(batch) - n; c > 0 {
				r.conflict.Add(float64(c))
				r.opts.Logger.Warn("usage records already stored: not inserted again", "records", c, "attempt", attempt+1)
			}
			return
		}
		r.failed.Inc()
		if attempt >= r.opts.Retries {
			r.dropped.WithLabelValues("write_failed").Add(float64(len(batch)))
			r.opts.Logger.Error("usage batch dropped after retries", "records", len(batch), "err", err)
			return
		}
		r.opts.Logger.Warn("usage batch write failed; retrying", "records", len(batch), "attempt", attempt+1, "err", err)
		time.Sleep(backoff)
		backoff *= 2
	}
}

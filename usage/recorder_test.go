package usage

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sluice-ai/sluice/llm"
)

type memSink struct {
	mu    sync.Mutex
	rows  map[string]llm.Record
	fails int // fail this many calls first
	calls int
}

func (m *memSink) InsertUsage(_ context.Context, recs []llm.Record) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls++
	if m.fails > 0 {
		m.fails--
		return 0, errors.New("db down")
	}
	n := 0
	for _, r := range recs {
		if _, ok := m.rows[r.ID]; !ok {
			m.rows[r.ID] = r
			n++
		}
	}
	return n, nil
}

func (m *memSink) count() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.rows)
}

func TestRecorderFlushesOnClose(t *testing.T) {
	sink := &memSink{rows: map[string]llm.Record{}}
	r := NewRecorder(sink, Options{FlushInterval: time.Hour, BatchSize: 7})
	for i := range 100 {
		r.Record(llm.Record{ID: fmt.Sprint(i)})
	}
	if err := r.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := sink.count(); got != 100 {
		t.Fatalf("rows = %d, want 100", got)
	}
}

func TestRecorderRetriesThenSucceeds(t *testing.T) {
	sink := &memSink{rows: map[string]llm.Record{}, fails: 2}
	r := NewRecorder(sink, Options{FlushInterval: 10 * time.Millisecond, RetryBackoff: time.Millisecond})
	r.Record(llm.Record{ID: "a"})
	if err := r.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if sink.count() != 1 {
		t.Fatalf("record lost after transient failures")
	}
}

func TestRecorderCountsDrops(t *testing.T) {
	reg := prometheus.NewRegistry()
	sink := &memSink{rows: map[string]llm.Record{}, fails: 1000}
	r := NewRecorder(sink, Options{FlushInterval: time.Millisecond, Retries: 1, RetryBackoff: time.Millisecond, Registerer: reg})
	r.Record(llm.Record{ID: "a"})
	r.Record(llm.Record{ID: "b"})
	if err := r.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := testutil.ToFloat64(r.dropped.WithLabelValues("write_failed")); got != 2 {
		t.Fatalf("dropped = %v, want 2", got)
	}
}

func TestRecorderQueueFull(t *testing.T) {
	block := make(chan struct{})
	sink := blockingSink{block}
	r := NewRecorder(sink, Options{QueueSize: 1, BatchSize: 1, FlushInterval: time.Millisecond})
	for i := range 10 {
		r.Record(llm.Record{ID: fmt.Sprint(i)})
	}
	if got := testutil.ToFloat64(r.dropped.WithLabelValues("queue_full")); got < 1 {
		t.Fatalf("queue_full drops = %v, want > 0", got)
	}
	close(block)
	if err := r.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}

type blockingSink struct{ c chan struct{} }

func (b blockingSink) InsertUsage(ctx context.Context, recs []llm.Record) (int, error) {
	<-b.c
	return len(recs), nil
}

// TestRecorderCountsRowsInserted checks that the written metric counts rows
// the sink actually inserted and that records it skipped (already stored)
// are counted apart, never silently: ten records with one id leave one
// row, one written and nine conflicts.
func TestRecorderCountsRowsInserted(t *testing.T) {
	sink := &memSink{rows: map[string]llm.Record{}}
	r := NewRecorder(sink, Options{FlushInterval: time.Hour})
	for range 10 {
		r.Record(llm.Record{ID: "same"})
	}
	r.Record(llm.Record{ID: "other"})
	if err := r.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := testutil.ToFloat64(r.written); got != 2 {
		t.Errorf("written = %v, want 2 (rows inserted)", got)
	}
	if got := testutil.ToFloat64(r.conflict); got != 9 {
		t.Errorf("conflicts = %v, want 9", got)
	}
}

// failingSink fails every write until its context ends.
type failingSink struct{ calls atomic.Int64 }

func (f *failingSink) InsertUsage(ctx context.Context, _ []llm.Record) (int, error) {
	f.calls.Add(1)
	return 0, errors.New("db down")
}

// TestRecorderCloseBoundedWhileSinkFails is the regression test of issue 5,
// item 7 (usage part): the writer slept uninterruptibly between retries,
// so Close with the database down waited out every backoff. Now the drain
// has one budget and the backoff ends with it; what is left is counted.
func TestRecorderCloseBoundedWhileSinkFails(t *testing.T) {
	sink := &failingSink{}
	r := NewRecorder(sink, Options{FlushInterval: time.Millisecond, BatchSize: 2, Retries: 1000,
		RetryBackoff: time.Hour, DrainTimeout: 50 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() { r.Run(ctx) })
	for i := range 5 {
		r.Record(llm.Record{ID: fmt.Sprint(i)})
	}
	for sink.calls.Load() == 0 { // the writer is in its hour-long backoff
		time.Sleep(time.Millisecond)
	}
	closed := make(chan error, 1)
	go func() { closed <- r.Close(context.Background()) }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second): // the old code waits an hour
		t.Fatal("Close did not return while the sink was failing")
	}
	wg.Wait()
	if got := testutil.ToFloat64(r.dropped.WithLabelValues("shutdown")); got != 5 {
		t.Errorf("dropped{shutdown} = %v, want 5", got)
	}
	// Records after Close are counted, not queued for nobody.
	r.Record(llm.Record{ID: "late"})
	if got := testutil.ToFloat64(r.dropped.WithLabelValues("shutdown")); got != 6 {
		t.Errorf("dropped{shutdown} after a late record = %v, want 6", got)
	}
}

// TestRecorderCloseCtxCutsDrain checks that Close's own context also cuts
// the drain short, even with a long drain budget.
func TestRecorderCloseCtxCutsDrain(t *testing.T) {
	r := NewRecorder(&failingSink{}, Options{Retries: 1000, RetryBackoff: time.Hour, DrainTimeout: time.Hour})
	var wg sync.WaitGroup
	wg.Go(func() { r.Run(context.Background()) })
	r.Record(llm.Record{ID: "a"})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := r.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Close = %v, want deadline exceeded", err)
	}
	wg.Wait() // the writer returns once aborted
	if got := testutil.ToFloat64(r.dropped.WithLabelValues("shutdown")); got != 1 {
		t.Errorf("dropped{shutdown} = %v, want 1", got)
	}
}

// TestRecorderRunStopsWithContext checks that the owner's context ends the
// writer, after it has written what was queued.
func TestRecorderRunStopsWithContext(t *testing.T) {
	sink := &memSink{rows: map[string]llm.Record{}}
	r := NewRecorder(sink, Options{FlushInterval: time.Hour})
	for i := range 10 {
		r.Record(llm.Record{ID: fmt.Sprint(i)})
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r.Run(ctx) // returns after draining
	if sink.count() != 10 {
		t.Fatalf("rows = %d, want 10", sink.count())
	}
	r.Run(context.Background()) // a second Run returns at once
	if err := r.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// countHandler counts log records and sums their dropped_* attributes.
type countHandler struct {
	mu      sync.Mutex
	lines   int
	dropped int64
}

func (h *countHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *countHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *countHandler) WithGroup(string) slog.Handler            { return h }
func (h *countHandler) Handle(_ context.Context, rec slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.lines++
	rec.Attrs(func(a slog.Attr) bool {
		if strings.HasPrefix(a.Key, "dropped_") {
			h.dropped += a.Value.Int64()
		}
		return true
	})
	return nil
}

// TestRecorderLogsSummaries is the regression test of the log flood: with
// the database down the old recorder logged a line per failed attempt and
// per dropped record. Now failures are summed into at most one line per
// LogInterval, and the lines still account for every dropped record.
func TestRecorderLogsSummaries(t *testing.T) {
	h := &countHandler{}
	r := NewRecorder(&failingSink{}, Options{QueueSize: 100, BatchSize: 1, FlushInterval: time.Millisecond,
		Retries: 1, RetryBackoff: time.Microsecond, LogInterval: time.Hour, Logger: slog.New(h)})
	var wg sync.WaitGroup
	wg.Go(func() { r.Run(context.Background()) })
	const n = 500
	for i := range n {
		r.Record(llm.Record{ID: fmt.Sprint(i)})
	}
	if err := r.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	dropped := testutil.ToFloat64(r.dropped.WithLabelValues("write_failed")) + testutil.ToFloat64(r.dropped.WithLabelValues("queue_full"))
	if dropped != n {
		t.Fatalf("dropped = %v, want %d", dropped, n)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.lines > 2 {
		t.Errorf("%d log lines for %d dropped records, want at most 2 (first failure, final summary)", h.lines, n)
	}
	if h.dropped != n {
		t.Errorf("log lines account for %d dropped records, want %d", h.dropped, n)
	}
}

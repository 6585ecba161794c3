package usage

import (
	"context"
	"errors"
	"fmt"
	"sync"
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

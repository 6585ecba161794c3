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

func (m *memSink) InsertUsage(_ context.Context, recs []llm.Record) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls++
	if m.fails > 0 {
		m.fails--
		return errors.New("db down")
	}
	for _, r := range recs {
		m.rows[r.ID] = r
	}
	return nil
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

func (b blockingSink) InsertUsage(ctx context.Context, _ []llm.Record) error {
	<-b.c
	return nil
}

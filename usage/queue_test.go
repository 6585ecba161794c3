package usage

import (
	"context"
	"fmt"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sluice-ai/sluice/llm"
)

// TestQueueKeepsLittleAfterBurst: after a burst of 50,000 records is
// written, the queue holds no records and at most maxFree spare chunks —
// not the 100,000-record buffer a channel kept for the life of the
// process — and none once the recorder has idled for idleTicks ticks.
func TestQueueKeepsLittleAfterBurst(t *testing.T) {
	sink := &memSink{rows: map[string]llm.Record{}}
	r := NewRecorder(sink, Options{FlushInterval: time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() { r.Run(ctx) })
	const n = 50000
	for i := range n {
		r.Record(llm.Record{ID: strconv.Itoa(i), Model: "m"})
	}
	deadline := time.Now().Add(20 * time.Second)
	for sink.count() < n && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if got := sink.count(); got != n {
		t.Fatalf("rows = %d, want %d", got, n)
	}
	q := r.queue
	q.mu.Lock()
	chunks, free, queued := len(q.chunks), len(q.free), q.n
	for _, c := range q.free {
		for _, rec := range c[:cap(c)] {
			if rec.ID != "" {
				t.Error("a spare chunk keeps a written record alive")
				break
			}
		}
	}
	q.mu.Unlock()
	if chunks != 0 || queued != 0 || free > maxFree {
		t.Errorf("after the burst: %d chunks (%d records) queued, %d spare; want 0, 0, at most %d", chunks, queued, free, maxFree)
	}
	// Idle for idleTicks flush ticks: no spare chunk kept either.
	for time.Now().Before(deadline) {
		q.mu.Lock()
		free = len(q.free)
		q.mu.Unlock()
		if free == 0 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	if free != 0 {
		t.Errorf("idle: %d spare chunks kept, want 0", free)
	}
	if err := r.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
}

// TestQueueCapAndOrder: with the writer blocked, the queue takes exactly
// QueueSize records (in chunks of BatchSize, the last one partial) and
// counts the rest as queue_full; once unblocked it writes them in the
// order they came, in batches of BatchSize.
func TestQueueCapAndOrder(t *testing.T) {
	sink := &orderSink{block: make(chan struct{})}
	r := NewRecorder(sink, Options{QueueSize: 2500, BatchSize: 1000, FlushInterval: time.Hour})
	for i := range 3000 {
		r.Record(llm.Record{ID: strconv.Itoa(i)})
	}
	if got := r.queue.len(); got != 2500 {
		t.Errorf("queued = %d, want 2500", got)
	}
	if got := testutil.ToFloat64(r.dropped.WithLabelValues("queue_full")); got != 500 {
		t.Errorf("queue_full drops = %v, want 500", got)
	}
	close(sink.block)
	if err := r.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(sink.ids) != 2500 {
		t.Fatalf("written %d, want 2500", len(sink.ids))
	}
	for i, id := range sink.ids {
		if id != strconv.Itoa(i) {
			t.Fatalf("record %d written is %s: order lost", i, id)
		}
	}
	if want := []int{1000, 1000, 500}; fmt.Sprint(sink.sizes) != fmt.Sprint(want) {
		t.Errorf("batches %v, want %v", sink.sizes, want)
	}
}

// TestQueueFullBatchesWithoutWaiting: a full batch is written at once,
// not at the next flush tick.
func TestQueueFullBatchesWithoutWaiting(t *testing.T) {
	sink := &memSink{rows: map[string]llm.Record{}}
	r := NewRecorder(sink, Options{BatchSize: 10, FlushInterval: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() { r.Run(ctx) })
	for i := range 25 {
		r.Record(llm.Record{ID: strconv.Itoa(i)})
	}
	deadline := time.Now().Add(10 * time.Second)
	for sink.count() < 20 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if got := sink.count(); got != 20 {
		t.Errorf("rows before the tick = %d, want 20 (two full batches)", got)
	}
	cancel()
	wg.Wait()
	if got := sink.count(); got != 25 {
		t.Errorf("rows after the drain = %d, want 25", got)
	}
}

// orderSink records the ids and batch sizes it is given, after block is
// closed.
type orderSink struct {
	block chan struct{}
	mu    sync.Mutex
	ids   []string
	sizes []int
}

func (o *orderSink) InsertUsage(_ context.Context, recs []llm.Record) (int, error) {
	<-o.block
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, r := range recs {
		o.ids = append(o.ids, r.ID)
	}
	o.sizes = append(o.sizes, len(recs))
	return len(recs), nil
}

// TestQueueManyProducersWhileClosing (run it with -race): producers keep
// recording while Close drains; every record is written or counted as
// dropped (queue_full or shutdown), none is lost or counted twice, and
// each producer's records are written in its order.
func TestQueueManyProducersWhileClosing(t *testing.T) {
	sink := &orderSink{block: make(chan struct{})}
	close(sink.block)
	r := NewRecorder(sink, Options{QueueSize: 5000, BatchSize: 100, FlushInterval: time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var run sync.WaitGroup
	run.Go(func() { r.Run(ctx) })
	const producers = 16
	var sent atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	for p := range producers {
		wg.Go(func() {
			<-start
			for i := 0; ; i++ {
				r.Record(llm.Record{ID: fmt.Sprintf("%d-%d", p, i)})
				sent.Add(1)
				if r.stopped.Load() && i > 1000 {
					return
				}
				if i%64 == 0 {
					runtime.Gosched()
				}
			}
		})
	}
	close(start)
	time.Sleep(20 * time.Millisecond)
	if err := r.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	run.Wait()
	sink.mu.Lock()
	written := len(sink.ids)
	last := map[string]int{}
	for _, id := range sink.ids {
		var p, i int
		if _, err := fmt.Sscanf(id, "%d-%d", &p, &i); err != nil {
			t.Fatal(err)
		}
		k := strconv.Itoa(p)
		if prev, ok := last[k]; ok && i <= prev {
			t.Fatalf("producer %d: record %d written after %d", p, i, prev)
		}
		last[k] = i
	}
	sink.mu.Unlock()
	dropped := testutil.ToFloat64(r.dropped.WithLabelValues("queue_full")) + testutil.ToFloat64(r.dropped.WithLabelValues("shutdown"))
	if int64(written)+int64(dropped) != sent.Load() {
		t.Errorf("written %d + dropped %v != sent %d", written, dropped, sent.Load())
	}
	if written == 0 {
		t.Error("nothing written")
	}
	if n := r.queue.len(); n != 0 {
		t.Errorf("%d records left in the queue", n)
	}
}

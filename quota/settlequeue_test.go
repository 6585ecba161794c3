package quota

import (
	"strconv"
	"sync"
	"testing"
)

// TestSettleFIFO: the limit holds, order is kept across the slide-down,
// and an emptied queue lets a large array go.
func TestSettleFIFO(t *testing.T) {
	q := newSettleFIFO(1000, 4)
	if q.pop() != nil {
		t.Fatal("pop of an empty queue")
	}
	next, want := 0, 0
	push := func(n int) {
		for range n {
			if !q.push(&Settlement{ID: strconv.Itoa(next)}) {
				t.Fatalf("push %d refused below the limit", next)
			}
			next++
		}
	}
	pop := func(n int) {
		for range n {
			s := q.pop()
			if s == nil || s.ID != strconv.Itoa(want) {
				t.Fatalf("pop = %v, want %d", s, want)
			}
			want++
		}
	}
	push(600)
	pop(500) // head far along: the next pushes slide the rest down
	push(900)
	if q.len() != 1000 {
		t.Fatalf("len = %d, want 1000", q.len())
	}
	if q.push(&Settlement{ID: "over"}) {
		t.Fatal("push beyond the limit accepted")
	}
	pop(1000)
	if q.pop() != nil || q.len() != 0 {
		t.Fatal("queue not empty")
	}
	if q.items != nil {
		t.Errorf("an emptied queue keeps an array of %d", cap(q.items))
	}
	if len(q.wake) != cap(q.wake) || cap(q.wake) != 4 {
		t.Errorf("wake-ups = %d of %d, want 4 of 4", len(q.wake), cap(q.wake))
	}
}

// TestSettleFIFOConcurrent (run it with -race): producers and consumers
// at once; every settlement is popped once.
func TestSettleFIFOConcurrent(t *testing.T) {
	q := newSettleFIFO(1<<16, 4)
	const producers, each = 8, 2000
	var wg sync.WaitGroup
	for p := range producers {
		wg.Go(func() {
			for i := range each {
				for !q.push(&Settlement{ID: strconv.Itoa(p*each + i)}) {
				}
			}
		})
	}
	seen := make([]bool, producers*each)
	var mu sync.Mutex
	var cw sync.WaitGroup
	done := make(chan struct{})
	for range 4 {
		cw.Go(func() {
			for {
				s := q.pop()
				if s == nil {
					select {
					case <-q.wake:
						continue
					case <-done:
						return
					}
				}
				i, _ := strconv.Atoi(s.ID)
				mu.Lock()
				if seen[i] {
					t.Errorf("%d popped twice", i)
				}
				seen[i] = true
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	for q.len() > 0 {
		q.wake <- struct{}{}
	}
	close(done)
	cw.Wait()
	for i, ok := range seen {
		if !ok {
			t.Fatalf("%d never popped", i)
		}
	}
}

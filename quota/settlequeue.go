package quota

import "sync"

// settleFIFO is the limiter's queue of settlements waiting for a worker:
// at most limit of them, in a slice that grows as they come and is let go
// when the queue empties. A channel of settleQueue pointers held a 512 KiB
// array of pointer slots for the life of the process, which the collector
// scanned on every cycle although it is empty but during a store outage.
type settleFIFO struct {
	mu    sync.Mutex
	items []*Settlement // items[head:] are queued, oldest first
	head  int
	limit int
	// wake holds up to one wake-up per worker: sent (never blocking) for
	// each settlement queued.
	wake chan struct{}
}

func newSettleFIFO(limit, workers int) *settleFIFO {
	return &settleFIFO{limit: limit, wake: make(chan struct{}, workers)}
}

// push queues s; false when limit settlements are already queued.
func (q *settleFIFO) push(s *Settlement) bool {
	q.mu.Lock()
	if len(q.items)-q.head >= q.limit {
		q.mu.Unlock()
		return false
	}
	if q.head > 0 && len(q.items) == cap(q.items) { // slide down before growing
		n := copy(q.items, q.items[q.head:])
		clear(q.items[n:])
		q.items, q.head = q.items[:n], 0
	}
	q.items = append(q.items, s)
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default: // every worker has a wake-up waiting
	}
	return true
}

// pop returns the oldest settlement queued, or nil.
func (q *settleFIFO) pop() *Settlement {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.head == len(q.items) {
		return nil
	}
	s := q.items[q.head]
	q.items[q.head] = nil
	q.head++
	if q.head == len(q.items) { // empty: start over, and let a large array go
		q.head = 0
		if cap(q.items) > 64 {
			q.items = nil
		} else {
			q.items = q.items[:0]
		}
	}
	return s
}

// len returns the settlements queued.
func (q *settleFIFO) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items) - q.head
}

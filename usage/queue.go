package usage

import (
	"sync"

	"github.com/sluice-ai/sluice/llm"
)

// queue is the recorder's queue of records: a FIFO of chunks, each a
// batch of up to size records, allocated when records arrive and recycled
// through a free list of at most maxFree chunks (dropped when the
// recorder has been idle for a while: Recorder.run). A channel of QueueSize
// records would hold its whole buffer — 100,000 records of a dozen
// strings each, 36 MiB of pointers — for the life of the process, and
// the collector scanned all of it on every cycle, idle or not; the queue
// holds what is queued and at most two spare chunks.
type queue struct {
	mu     sync.Mutex
	chunks [][]llm.Record // oldest first; only the last one is appended to
	free   [][]llm.Record // cleared chunks, len 0, at most maxFree
	n      int            // records in chunks
	closed bool           // no more records are taken
	limit  int            // most records queued at once
	size   int            // records per chunk: a full chunk is a batch
	// ready holds a wake-up for the writer: sent (never blocking) when a
	// chunk fills.
	ready chan struct{}
}

// maxFree bounds the spare chunks kept for reuse.
const maxFree = 2

// pushResult says what became of a pushed record.
type pushResult int

const (
	pushed pushResult = iota
	pushFull
	pushClosed
)

func newQueue(limit, size int) *queue {
	return &queue{limit: limit, size: max(1, min(size, limit)), ready: make(chan struct{}, 1)}
}

// push appends rec unless the queue holds limit records or is closed. A
// new chunk, when no spare is left, is allocated outside the lock.
func (q *queue) push(rec *llm.Record) pushResult {
	var spare []llm.Record
	q.mu.Lock()
	for {
		if q.closed {
			q.mu.Unlock()
			return pushClosed
		}
		if q.n >= q.limit {
			q.mu.Unlock()
			return pushFull
		}
		if k := len(q.chunks); k > 0 && len(q.chunks[k-1]) < q.size {
			break
		}
		if k := len(q.free); k > 0 {
			q.chunks = append(q.chunks, q.free[k-1])
			q.free[k-1] = nil
			q.free = q.free[:k-1]
			break
		}
		if spare != nil {
			q.chunks = append(q.chunks, spare)
			spare = nil
			break
		}
		q.mu.Unlock()
		spare = make([]llm.Record, 0, q.size)
		q.mu.Lock()
	}
	k := len(q.chunks) - 1
	q.chunks[k] = append(q.chunks[k], *rec)
	q.n++
	full := len(q.chunks[k]) == q.size
	if spare != nil && len(q.free) < maxFree { // another producer added a chunk meanwhile
		q.free = append(q.free, spare)
	}
	q.mu.Unlock()
	if full {
		select {
		case q.ready <- struct{}{}:
		default:
		}
	}
	return pushed
}

// pop removes and returns the oldest chunk when it is full, or when
// partial is true whatever its length; nil when there is none.
func (q *queue) pop(partial bool) []llm.Record {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.chunks) == 0 || !partial && len(q.chunks[0]) < q.size {
		return nil
	}
	c := q.chunks[0]
	q.chunks[0] = nil
	q.chunks = q.chunks[1:]
	if len(q.chunks) == 0 {
		q.chunks = nil // let the spine's backing array go
	}
	q.n -= len(c)
	return c
}

// recycle clears c (so it keeps no record's strings alive) and keeps it
// for reuse, unless maxFree chunks are already kept.
func (q *queue) recycle(c []llm.Record) {
	if cap(c) != q.size {
		return
	}
	clear(c)
	c = c[:0]
	q.mu.Lock()
	if len(q.free) < maxFree {
		q.free = append(q.free, c)
	}
	q.mu.Unlock()
}

// trim drops the spare chunks.
func (q *queue) trim() {
	q.mu.Lock()
	q.free = nil
	q.mu.Unlock()
}

// len returns the records queued.
func (q *queue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.n
}

// close stops the queue taking records and returns how many it still
// holds (they can still be popped).
func (q *queue) close() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.closed = true
	return q.n
}

// discard closes the queue, empties it and returns how many records it
// held.
func (q *queue) discard() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.closed = true
	n := q.n
	q.chunks, q.free, q.n = nil, nil, 0
	return n
}

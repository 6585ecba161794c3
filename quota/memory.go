package quota

import (
	"container/heap"
	"context"
	"sync"
	"time"
)

// Memory is the Store of one process (REDIS_URL empty): the same rules as
// the Redis store, under one mutex. Subjects idle for two minutes that
// hold no budget and no reservation are dropped lazily, so deleted keys
// do not leak memory; no goroutine is needed.
type Memory struct {
	clock func() time.Time

	mu        sync.Mutex
	subjects  map[string]*memSubject
	lastSweep int64
	// keepBudgets keeps budget counters past their period (tests that
	// compare with Redis, whose keys expire by the server's clock).
	keepBudgets bool
}

var _ Store = (*Memory)(nil)

// NewMemory returns an empty Memory store reading time from clock
// (time.Now when nil).
func NewMemory(clock func() time.Time) *Memory {
	if clock == nil {
		clock = time.Now
	}
	return &Memory{clock: clock, subjects: make(map[string]*memSubject)}
}

// counters are a subject's numbers, copied while an admission is decided.
type counters struct {
	rpm, tpm bucket
	// Budget: bk is the period code the counters were kept for
	// (periodNone: missing), bp the period start (µs), bu/bt the spend.
	bk, bp, bu, bt int64
	// Held by live reservations: micro-USD, tokens, slots.
	ru, rk, rp int64
}

type memSubject struct {
	c    counters
	res  map[string]*memReservation
	exp  resHeap // the reservations by expiry
	used int64   // last admission or settlement, µs
	end  int64   // end of the budget period kept (µs; -1 lifetime)
}

type memReservation struct {
	id                  string
	expires             int64
	micros, tokens, par int64
	index               int
}

// resHeap orders reservations by expiry (container/heap).
type resHeap []*memReservation

func (h resHeap) Len() int           { return len(h) }
func (h resHeap) Less(i, j int) bool { return h[i].expires < h[j].expires }
func (h resHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *resHeap) Push(x any) {
	r := x.(*memReservation)
	r.index = len(*h)
	*h = append(*h, r)
}
func (h *resHeap) Pop() any {
	old := *h
	r := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return r
}

// present reports whether the budget counters exist for p's period
// starting at start (a stale period counts: it rolls over).
func (c *counters) present(p *params, start int64) bool {
	return c.bk != periodNone && c.bk == p.code && c.bp <= start
}

// rollover starts the period at start when the counters are older.
func (c *counters) rollover(start int64) {
	if c.bp < start {
		c.bp, c.bu, c.bt = start, 0, 0
	}
}

func (c *counters) release(r *memReservation) {
	c.ru = max(0, c.ru-r.micros)
	c.rk = max(0, c.rk-r.tokens)
	c.rp = max(0, c.rp-r.par)
}

// prune releases s's reservations that expired by now.
func (s *memSubject) prune(now int64) {
	for len(s.exp) > 0 && s.exp[0].expires <= now {
		r := heap.Pop(&s.exp).(*memReservation)
		delete(s.res, r.id)
		s.c.release(r)
	}
}

// raw is c's state at now for a subject with limits p.
func (c *counters) raw(p *params, now int64) rawState {
	var r rawState
	r.rpmRem, r.rpmReset = c.rpm.window(now, p.rpm)
	r.tpmRem, r.tpmReset = c.tpm.window(now, p.tpm)
	r.inUse, r.reservedMicros, r.reservedTokens = c.rp, c.ru, c.rk
	if p.code != periodNone {
		start, _ := p.bounds(now)
		switch {
		case !c.present(p, start):
			r.missing = true
		case c.bp == start:
			r.spentMicros, r.spentTokens = c.bu, c.bt
		}
	}
	return r
}

// take applies ch to c for a subject with limits p, or reports the limit
// that refuses (code) and the wait in µs. It sets *resv to what the
// reservation holds on this subject.
func (c *counters) take(p *params, ch *charge, now int64, resv *memReservation) (code int, retry int64) {
	if p.rpm > 0 {
		if ok, w := c.rpm.take(now, p.rpm, ch.req); !ok {
			return codeRPM, w
		}
	}
	if p.tpm > 0 {
		if ok, w := c.tpm.take(now, p.tpm, ch.tok); !ok {
			return codeTPM, w
		}
	}
	if p.par > 0 && ch.par {
		if c.rp >= p.par {
			return codeParallel, 0
		}
		c.rp++
		resv.par++
	}
	if p.code != periodNone {
		start, end := p.bounds(now)
		c.rollover(start)
		wait := int64(0)
		if end >= 0 {
			wait = end - now
		}
		if p.usd > 0 {
			if ch.cost > p.usd {
				return codeUSD, 0
			}
			if c.bu+c.ru+ch.cost > p.usd {
				return codeUSD, wait
			}
		}
		if p.tok > 0 {
			if ch.tok > p.tok {
				return codeTokens, 0
			}
			if c.bt+c.rk+ch.tok > p.tok {
				return codeTokens, wait
			}
		}
		c.ru = min(c.ru+ch.cost, maxAmount)
		c.rk = min(c.rk+ch.tok, maxAmount)
		resv.micros += ch.cost
		resv.tokens += ch.tok
	}
	return codeNone, 0
}

func (m *Memory) now() int64 { return m.clock().UnixMicro() }

// work is one subject's counters while an admission is decided.
type work struct {
	s    *memSubject // nil: not stored yet
	c    counters
	resv memReservation
}

// Admit implements Store.
func (m *Memory) Admit(ctx context.Context, r *AdmitRequest) (Decision, error) {
	if err := ctx.Err(); err != nil {
		return Decision{Denied: -1}, err
	}
	n := len(r.Subjects)
	ps := make([]params, n)
	tags := make([]string, n)
	for i := range r.Subjects {
		ps[i] = paramsOf(&r.Subjects[i])
		tags[i] = r.Subjects[i].Tag()
	}
	ch := chargeOf(&r.Charge)
	id := reservationID(r.ID)
	ttl := ttlMicros(r.TTL)

	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	m.sweep(now)
	d := Decision{Denied: -1, Now: time.UnixMicro(now).UTC(), States: make([]State, n)}

	load := func() map[string]*work {
		ws := make(map[string]*work, n)
		for _, tag := range tags {
			if ws[tag] != nil {
				continue
			}
			w := &work{s: m.subjects[tag]}
			if w.s != nil {
				w.s.prune(now)
				w.c = w.s.c
			}
			ws[tag] = w
		}
		return ws
	}
	ws := load()
	states := func() {
		for i := range ps {
			raw := ws[tags[i]].c.raw(&ps[i], now)
			d.States[i] = raw.state(&ps[i], d.Now)
		}
	}

	var need []int
	for i := range ps {
		if ps[i].code == periodNone {
			continue
		}
		start, _ := ps[i].bounds(now)
		if !ws[tags[i]].c.present(&ps[i], start) {
			need = append(need, i)
		}
	}
	if len(need) > 0 {
		d.needSeed(ps, need)
		states()
		return d, nil
	}

	for i := range ps {
		w := ws[tags[i]]
		if code, retry := w.c.take(&ps[i], &ch, now, &w.resv); code != codeNone {
			d.Denied, d.Limit, d.RetryAfter = i, limitOfCode[code], micros(retry)
			ws = load() // nothing taken: the counters as they were
			states()
			return d, nil
		}
	}

	d.Allowed = true
	for i := range ps {
		w := ws[tags[i]]
		if w.s == nil {
			w.s = &memSubject{res: make(map[string]*memReservation)}
			m.subjects[tags[i]] = w.s
		}
		s := w.s
		s.c, s.used = w.c, now
		if ps[i].code != periodNone {
			_, s.end = ps[i].bounds(now)
		}
		if rv := w.resv; rv.par > 0 || rv.micros > 0 || rv.tokens > 0 {
			w.resv = memReservation{} // a subject listed twice reserves once
			if old := s.res[id]; old != nil {
				old.micros += rv.micros
				old.tokens += rv.tokens
				old.par += rv.par
				old.expires = now + ttl
				heap.Fix(&s.exp, old.index)
			} else {
				nr := &memReservation{id: id, expires: now + ttl, micros: rv.micros, tokens: rv.tokens, par: rv.par}
				s.res[id] = nr
				heap.Push(&s.exp, nr)
			}
		}
	}
	states()
	return d, nil
}

// Settle implements Store.
func (m *Memory) Settle(ctx context.Context, st *Settlement) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	id := reservationID(st.ID)
	reserved := bound(st.Reserved.Tokens, maxAmount)
	actual := chargeOf(&st.Actual)
	ps := make([]params, len(st.Subjects))
	tags := make([]string, len(st.Subjects))
	for i := range st.Subjects {
		ps[i], tags[i] = paramsOf(&st.Subjects[i]), st.Subjects[i].Tag()
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	m.sweep(now)
	for i := range st.Subjects {
		p, tag := ps[i], tags[i]
		s := m.subjects[tag]
		if s == nil {
			if p.tpm == 0 || reserved == actual.tok {
				continue
			}
			s = &memSubject{res: make(map[string]*memReservation)}
			m.subjects[tag] = s
		}
		s.prune(now)
		s.used = now
		if r := s.res[id]; r != nil {
			heap.Remove(&s.exp, r.index)
			delete(s.res, id)
			s.c.release(r)
		}
		if p.tpm > 0 && reserved != actual.tok {
			s.c.tpm.add(now, p.tpm, reserved-actual.tok)
		}
		if p.code != periodNone {
			start, _ := p.bounds(now)
			if s.c.present(&p, start) {
				s.c.rollover(start)
				s.c.bu = min(s.c.bu+actual.cost, maxAmount)
				s.c.bt = min(s.c.bt+actual.tok, maxAmount)
			}
		}
	}
	return nil
}

// Seed implements Store.
func (m *Memory) Seed(ctx context.Context, seeds []Seed) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	for i := range seeds {
		sd := &seeds[i]
		p := paramsOf(&sd.Subject)
		if p.code == periodNone {
			continue
		}
		start, end := p.bounds(now)
		if sd.Start.UnixMicro() != start {
			continue
		}
		tag := sd.Subject.Tag()
		s := m.subjects[tag]
		if s == nil {
			s = &memSubject{res: make(map[string]*memReservation), used: now}
			m.subjects[tag] = s
		}
		if s.c.present(&p, start) {
			continue
		}
		s.c.bk, s.c.bp = p.code, start
		s.c.bu, s.c.bt = bound(sd.SpentMicros, maxAmount), bound(sd.SpentTokens, maxAmount)
		s.end = end
	}
	return nil
}

// Peek implements Store. It takes nothing and refills nothing; expired
// reservations it meets are released, as any call would.
func (m *Memory) Peek(ctx context.Context, subjects []Subject) ([]State, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	t := time.UnixMicro(now).UTC()
	out := make([]State, len(subjects))
	for i := range subjects {
		p := paramsOf(&subjects[i])
		var c counters
		if s := m.subjects[subjects[i].Tag()]; s != nil {
			s.prune(now)
			c = s.c
		}
		raw := c.raw(&p, now)
		out[i] = raw.state(&p, t)
	}
	return out, nil
}

// sweep drops, at most once a minute, the subjects nothing needs any
// more: idle for idleMicros, no live reservation, and no budget of a
// period that has not ended.
func (m *Memory) sweep(now int64) {
	if now-m.lastSweep < unit && now >= m.lastSweep {
		return
	}
	m.lastSweep = now
	for tag, s := range m.subjects {
		if now-s.used < idleMicros {
			continue
		}
		s.prune(now)
		if len(s.res) > 0 {
			continue
		}
		if s.c.bk != periodNone && (m.keepBudgets || s.end < 0 || now < s.end) {
			continue
		}
		delete(m.subjects, tag)
	}
}

// Len is the number of subjects the store holds (for tests).
func (m *Memory) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.subjects)
}

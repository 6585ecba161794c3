package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"
)

// Load modes.
const (
	modeClosed = "closed" // C connections, each sending back to back
	modeOpen   = "open"   // fixed request rate on a timetable
)

// maxSamples bounds the memory one run spends on latency samples.
const maxSamples = 2_000_000

// LoadSpec describes one load run.
type LoadSpec struct {
	Mode     string        // modeClosed or modeOpen
	Target   target        // address and pre-built request
	Conns    int           // connections (closed: concurrency; open: pool size)
	Duration time.Duration // measured time
	Warmup   time.Duration // unmeasured time before it (closed loop only)
	Rate     float64       // open loop: requests per second
	Timeout  time.Duration // per request
	Stream   bool          // parse SSE bodies and measure time to first token
	SSE      string        // streamed bodies' dialect: sseOpenAI (default) or sseAnthropic
}

// LoadResult is what a load run measured. Latencies are from the scheduled
// send time in open-loop mode and from the actual send time in closed-loop
// mode.
type LoadResult struct {
	Mode       string      `json:"mode"`
	Conns      int         `json:"conns"`
	Seconds    float64     `json:"seconds"`
	Requests   int         `json:"requests"`
	OK         int         `json:"ok"`
	Errors     int         `json:"errors"`
	Statuses   map[int]int `json:"statuses,omitempty"`
	FirstError string      `json:"first_error,omitempty"`
	RPS        float64     `json:"rps"`
	TargetRate float64     `json:"target_rate,omitempty"`
	Latency    Dist        `json:"latency"`
	TTFT       *Dist       `json:"ttft,omitempty"`
	NoToken    int         `json:"no_token,omitempty"` // streams where no content token was found
	OverheadMS float64     `json:"sluice_overhead_header_mean_ms,omitempty"`
	BodyBytes  int64       `json:"body_bytes"`
	// Filled by the harness, not the load process: CPU time per request
	// (µs) of the target's server process(es) and of the load process,
	// and how many rounds were merged into this result.
	ServerCPUPerReqUS float64 `json:"server_cpu_us_per_req,omitempty"`
	LoadCPUPerReqUS   float64 `json:"load_cpu_us_per_req,omitempty"`
	Rounds            int     `json:"rounds,omitempty"`
}

// mergeRounds combines the rounds of one target in one phase: counts add
// up, throughput and the latency percentiles are the rounds' means (a
// percentile cannot be merged exactly without the samples), maxima the
// maximum.
func mergeRounds(rs []LoadResult) LoadResult {
	if len(rs) == 1 {
		r := rs[0]
		r.Rounds = 1
		return r
	}
	m := LoadResult{Mode: rs[0].Mode, Conns: rs[0].Conns, TargetRate: rs[0].TargetRate, Statuses: map[int]int{}, Rounds: len(rs)}
	var lat, ttft []Dist
	n := float64(len(rs))
	for _, r := range rs {
		m.Seconds += r.Seconds
		m.Requests += r.Requests
		m.OK += r.OK
		m.Errors += r.Errors
		m.NoToken += r.NoToken
		m.BodyBytes += r.BodyBytes
		m.RPS += r.RPS / n
		m.OverheadMS += r.OverheadMS / n
		for s, c := range r.Statuses {
			m.Statuses[s] += c
		}
		if m.FirstError == "" {
			m.FirstError = r.FirstError
		}
		lat = append(lat, r.Latency)
		if r.TTFT != nil {
			ttft = append(ttft, *r.TTFT)
		}
	}
	m.Latency = meanDist(lat)
	if len(ttft) > 0 {
		d := meanDist(ttft)
		m.TTFT = &d
	}
	return m
}

// meanDist averages distributions: counts add up, the mean and the
// percentiles are averaged, the maximum is the largest.
func meanDist(ds []Dist) Dist {
	var m Dist
	if len(ds) == 0 {
		return m
	}
	n := float64(len(ds))
	for _, d := range ds {
		m.Count += d.Count
		m.Mean += d.Mean / n
		m.P50 += d.P50 / n
		m.P90 += d.P90 / n
		m.P99 += d.P99 / n
		m.Max = max(m.Max, d.Max)
	}
	r := func(f float64) float64 { return math.Round(f*1e3) / 1e3 }
	m.Mean, m.P50, m.P90, m.P99 = r(m.Mean), r(m.P50), r(m.P90), r(m.P99)
	return m
}

// worker holds one goroutine's samples; merged at the end.
type worker struct {
	lat       []time.Duration
	ttft      []time.Duration
	ok, errs  int
	noToken   int
	statuses  map[int]int
	firstErr  error
	overhead  float64
	overheadN int
	bytes     int64
}

func newWorker(capHint int) *worker {
	return &worker{lat: make([]time.Duration, 0, capHint), statuses: map[int]int{}}
}

// record files one exchange. start is the time latency is measured from.
func (w *worker) record(start, end time.Time, res result, err error, stream bool) {
	if err != nil {
		w.errs++
		if w.firstErr == nil {
			w.firstErr = err
		}
		return
	}
	w.statuses[res.status]++
	w.bytes += res.bodyBytes
	if res.status != 200 {
		w.errs++
		if w.firstErr == nil {
			w.firstErr = fmt.Errorf("HTTP status %d", res.status)
		}
		return
	}
	if stream && !res.sawDone {
		w.errs++
		if w.firstErr == nil {
			w.firstErr = errors.New("stream ended without its last event (data: [DONE] or message_stop)")
		}
		return
	}
	w.ok++
	if res.hasOverhead {
		w.overhead += res.overheadMS
		w.overheadN++
	}
	if len(w.lat) < maxSamples {
		w.lat = append(w.lat, end.Sub(start))
	}
	if stream {
		first := res.firstToken
		if first.IsZero() {
			w.noToken++
			first = res.firstByte
		}
		if !first.IsZero() && len(w.ttft) < maxSamples {
			w.ttft = append(w.ttft, first.Sub(start))
		}
	}
}

// RunLoad runs spec until its duration has passed (plus at most one request
// timeout for requests in flight) or ctx is done.
func RunLoad(ctx context.Context, spec LoadSpec) (LoadResult, error) {
	if spec.Conns <= 0 {
		return LoadResult{}, errors.New("conns must be positive")
	}
	if spec.Duration <= 0 {
		return LoadResult{}, errors.New("duration must be positive")
	}
	if spec.Timeout <= 0 {
		spec.Timeout = 30 * time.Second
	}
	if spec.SSE == "" {
		spec.SSE = sseOpenAI
	}
	if _, ok := sseDialectOf(spec.SSE); !ok {
		return LoadResult{}, fmt.Errorf("unknown SSE dialect %q", spec.SSE)
	}
	switch spec.Mode {
	case modeClosed:
		return runClosed(ctx, spec)
	case modeOpen:
		if spec.Rate <= 0 {
			return LoadResult{}, errors.New("rate must be positive")
		}
		return runOpen(ctx, spec)
	default:
		return LoadResult{}, fmt.Errorf("unknown mode %q", spec.Mode)
	}
}

// dialAll connects n conns up front so dialing is not measured.
func dialAll(spec LoadSpec) ([]*conn, error) {
	var sse *sseDialect
	if spec.Stream {
		d, _ := sseDialectOf(spec.SSE)
		sse = &d
	}
	conns := make([]*conn, spec.Conns)
	for i := range conns {
		conns[i] = newConn(spec.Target, spec.Timeout, sse)
		if err := conns[i].dial(); err != nil {
			for _, c := range conns[:i] {
				c.close()
			}
			return nil, fmt.Errorf("dial %s: %w", spec.Target.addr, err)
		}
	}
	return conns, nil
}

// runClosed keeps spec.Conns requests in flight back to back.
func runClosed(ctx context.Context, spec LoadSpec) (LoadResult, error) {
	conns, err := dialAll(spec)
	if err != nil {
		return LoadResult{}, err
	}
	defer func() {
		for _, c := range conns {
			c.close()
		}
	}()
	begin := time.Now()
	measureFrom := begin.Add(spec.Warmup)
	end := measureFrom.Add(spec.Duration)
	workers := make([]*worker, len(conns))
	var wg sync.WaitGroup
	for i, c := range conns {
		w := newWorker(1024)
		workers[i] = w
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				start := time.Now()
				if !start.Before(end) {
					return
				}
				res, err := c.do()
				if start.Before(measureFrom) {
					continue // warm-up
				}
				stop := time.Now()
				if stop.After(end) {
					return // finished after the window closed: not counted
				}
				w.record(start, stop, res, err, spec.Stream)
				if err != nil {
					time.Sleep(10 * time.Millisecond) // don't spin on a dead server
				}
			}
		}()
	}
	wg.Wait()
	elapsed := spec.Duration
	if now := time.Now(); now.Before(end) { // cancelled early
		elapsed = now.Sub(measureFrom)
	}
	r := merge(workers, spec, elapsed)
	return r, ctx.Err()
}

// runOpen sends Rate×Duration requests, request i scheduled at
// start + i/Rate, on a pool of spec.Conns connections. Latency counts from the
// scheduled time, so time spent waiting for a free connection is included.
func runOpen(ctx context.Context, spec LoadSpec) (LoadResult, error) {
	conns, err := dialAll(spec)
	if err != nil {
		return LoadResult{}, err
	}
	defer func() {
		for _, c := range conns {
			c.close()
		}
	}()
	total := int(spec.Rate * spec.Duration.Seconds())
	if total < 1 {
		total = 1
	}
	interval := time.Duration(float64(time.Second) / spec.Rate)
	queue := make(chan time.Time, total)
	workers := make([]*worker, len(conns))
	var wg sync.WaitGroup
	for i, c := range conns {
		w := newWorker(total/len(conns) + 16)
		workers[i] = w
		wg.Add(1)
		go func() {
			defer wg.Done()
			for sched := range queue {
				if ctx.Err() != nil {
					continue // drain without sending
				}
				res, err := c.do()
				w.record(sched, time.Now(), res, err, spec.Stream)
			}
		}()
	}
	begin := time.Now().Add(10 * time.Millisecond)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
schedule:
	for i := range total {
		sched := begin.Add(time.Duration(i) * interval)
		if d := time.Until(sched); d > 0 {
			timer.Reset(d)
			select {
			case <-ctx.Done():
				break schedule
			case <-timer.C:
			}
		}
		queue <- sched
	}
	close(queue)
	wg.Wait()
	r := merge(workers, spec, time.Since(begin))
	r.TargetRate = spec.Rate
	return r, ctx.Err()
}

// merge combines the workers' samples into one result.
func merge(workers []*worker, spec LoadSpec, elapsed time.Duration) LoadResult {
	r := LoadResult{Mode: spec.Mode, Conns: spec.Conns, Seconds: elapsed.Seconds(), Statuses: map[int]int{}}
	var lat, ttft []time.Duration
	var overhead float64
	var overheadN int
	for _, w := range workers {
		r.OK += w.ok
		r.Errors += w.errs
		r.NoToken += w.noToken
		r.BodyBytes += w.bytes
		for s, n := range w.statuses {
			r.Statuses[s] += n
		}
		if w.firstErr != nil && r.FirstError == "" {
			r.FirstError = w.firstErr.Error()
		}
		lat = append(lat, w.lat...)
		ttft = append(ttft, w.ttft...)
		overhead += w.overhead
		overheadN += w.overheadN
	}
	r.Requests = r.OK + r.Errors
	if elapsed > 0 {
		r.RPS = float64(r.OK) / elapsed.Seconds()
	}
	r.Latency = summarize(lat)
	if spec.Stream {
		d := summarize(ttft)
		r.TTFT = &d
	}
	if overheadN > 0 {
		r.OverheadMS = overhead / float64(overheadN)
	}
	return r
}

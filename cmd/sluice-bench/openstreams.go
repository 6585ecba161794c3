package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// OpenStreams is the open-streams phase: each target's resident memory
// with N paced streams held open through it.
type OpenStreams struct {
	ChunkDelay string           `json:"chunk_delay"` // between a held stream's events
	FDLimit    uint64           `json:"fd_limit"`    // open files per process (ulimit -n)
	Runs       []OpenStreamsRun `json:"runs"`
}

// OpenStreamsRun is one target holding one number of streams.
type OpenStreamsRun struct {
	Target  string `json:"target"`
	Streams int    `json:"streams"` // asked for
	Open    int    `json:"open"`    // had their first event
	Failed  int    `json:"failed"`
	// VmRSS (MiB) of the target's process(es): idle before its first
	// count (the baseline), just before this count, and with the streams
	// open.
	BaselineRSSMiB float64 `json:"idle_rss_mib"`
	BeforeRSSMiB   float64 `json:"before_rss_mib"`
	OpenRSSMiB     float64 `json:"open_rss_mib"`
	// (open − baseline) ÷ (open streams ÷ 1,000).
	MiBPer1000 float64 `json:"mib_per_1000_streams"`
	// From the second count on: (open − the previous count's open) ÷
	// (the difference in open streams ÷ 1,000), the marginal cost. A Go
	// process's RSS includes heap it keeps between collections, which
	// the first streams can reuse, so the slope is the steadier figure.
	SlopeMiBPer1000 float64 `json:"slope_mib_per_1000_streams,omitempty"`
	OpenSeconds     float64 `json:"open_seconds"` // time to open them all
	EndedEarly      int     `json:"ended_early"`  // streams that ended before they were released
	// Time from the release (client connections closed) until the mock
	// had no request in flight, i.e. the target cancelled every upstream
	// stream; -1 when it did not within 15 s.
	UpstreamReleasedMS float64 `json:"upstream_released_ms"`
	Recovered          bool    `json:"recovered"` // answered a plain request afterwards
	FirstError         string  `json:"first_error,omitempty"`
	Error              string  `json:"error,omitempty"`
}

// openStreamsSettle is how long streams stay open before the memory is
// read, so every one has passed its first events.
const openStreamsSettle = time.Second

// holdChunks is the events each held stream is given: enough to outlast
// opening n streams, the settle time and reading the memory.
func holdChunks(cfg config, n int) int {
	hold := 2*time.Minute + time.Duration(n)*20*time.Millisecond
	return min(int(hold/cfg.OpenStreamsDelay)+1, 100_000)
}

// pacingHeaders are the mock's per-request headers that pace a held
// stream. nginx and the Go proxy pass them from the client; sluice's paced
// provider sends them as its static headers.
func pacingHeaders(cfg config, maxStreams int) map[string]string {
	return map[string]string{
		"X-Mock-Chunk-Delay": cfg.OpenStreamsDelay.String(),
		"X-Mock-Chunks":      strconv.Itoa(holdChunks(cfg, maxStreams)),
	}
}

// fdNeed is the open files a proxy needs for n streams: two per stream
// (client and upstream) and sluice's reserve of 256.
func fdNeed(n int) uint64 { return uint64(2*n + 256) }

// openStreams runs the open-streams phase: for each count (ascending), for
// each target in order, hold that many paced streams open through it and
// read its memory.
func (r *runner) openStreams(ctx context.Context, eps []endpoint, pacedModel string) (*OpenStreams, error) {
	cfg := r.cfg
	maxN := 0
	for _, n := range cfg.OpenStreams {
		maxN = max(maxN, n)
	}
	chunks := holdChunks(cfg, maxN)
	hold := cfg
	hold.MaxTokens = chunks + 16 // Anthropic's lane stops at max_tokens
	directLane, _ := lanes(hold)
	hold.Model = pacedModel
	_, pacedLane := lanes(hold)
	var pacing []string
	for k, v := range pacingHeaders(cfg, maxN) {
		pacing = append(pacing, k+": "+v)
	}
	out := &OpenStreams{ChunkDelay: cfg.OpenStreamsDelay.String(), FDLimit: r.fdLimit}
	baseline := map[string]Memory{}
	prev := map[string]OpenStreamsRun{} // each target's last count that opened streams
	for _, n := range cfg.OpenStreams {
		if lim := out.FDLimit; lim > 0 && fdNeed(n) > lim {
			msg := fmt.Sprintf("open-streams %d: each proxy needs about %d open files (2 per stream + 256) but the limit (ulimit -n) is %d; skipping this count: lower --open-streams or raise ulimit -n",
				n, fdNeed(n), lim)
			r.logf("%s", msg)
			for _, ep := range eps {
				out.Runs = append(out.Runs, OpenStreamsRun{Target: ep.name, Streams: n, Error: msg})
			}
			continue
		}
		for _, ep := range eps {
			l, extra := directLane, pacing
			if ep.name == targetSluice {
				l, extra = pacedLane, nil
			}
			run, err := r.holdOne(ctx, ep, n, l, extra, baseline)
			if err != nil {
				return nil, err
			}
			if p, ok := prev[ep.name]; ok && run.Open > p.Open && run.OpenRSSMiB > 0 {
				run.SlopeMiBPer1000 = round2((run.OpenRSSMiB - p.OpenRSSMiB) / (float64(run.Open-p.Open) / 1000))
			}
			if run.Open > 0 && run.OpenRSSMiB > 0 {
				prev[ep.name] = run
			}
			out.Runs = append(out.Runs, run)
		}
	}
	return out, nil
}

// holdOne holds n streams of lane l (plus the extra headers) open through
// ep, reads ep's memory, releases them and checks that ep cancelled its
// upstream streams and still answers.
func (r *runner) holdOne(ctx context.Context, ep endpoint, n int, l lane, extra []string, baseline map[string]Memory) (OpenStreamsRun, error) {
	run := OpenStreamsRun{Target: ep.name, Streams: n, UpstreamReleasedMS: -1}
	r.logf("open-streams %d: %s (%s)", n, ep.name, ep.addr)
	if _, ok := baseline[ep.name]; !ok {
		m, err := ep.server.memory()
		if err != nil {
			return run, fmt.Errorf("open-streams: memory of %s: %w", ep.name, err)
		}
		baseline[ep.name] = m
	}
	run.BaselineRSSMiB = baseline[ep.name].RSSMiB
	if m, err := ep.server.memory(); err == nil {
		run.BeforeRSSMiB = m.RSSMiB
	}

	openBudget := time.Minute + time.Duration(n)*10*time.Millisecond
	args := []string{"load", "--addr", ep.addr, "--body", string(l.stream), "--mode", modeHold,
		"--conns", strconv.Itoa(n), "--timeout", r.cfg.Timeout.String(), "--duration", openBudget.String(),
		"--hold-max", (openBudget + 2*time.Minute).String()}
	args = append(args, l.loadArgs()...)
	for _, h := range extra {
		args = append(args, "--header", h)
	}
	cmd := r.loadCmd(ctx, ep, args)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return run, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return run, err
	}
	var errb bytes.Buffer
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		return run, err
	}
	dec := json.NewDecoder(io.LimitReader(stdout, 1<<20))
	var ready HoldReady
	if err := dec.Decode(&ready); err != nil {
		_ = stdin.Close()
		_ = cmd.Wait()
		run.Error = fmt.Sprintf("load process: %v: %s", err, strings.TrimSpace(errb.String()))
		r.logf("open-streams %d %s: %s", n, ep.name, run.Error)
		return run, ctx.Err()
	}
	run.Open, run.Failed, run.FirstError, run.OpenSeconds = ready.Open, ready.Failed, ready.FirstError, round3(ready.Seconds)
	if ready.Failed > 0 {
		r.logf("open-streams %d %s: %d of %d streams failed to open, first: %s", n, ep.name, ready.Failed, n, ready.FirstError)
	}
	select {
	case <-ctx.Done():
	case <-time.After(openStreamsSettle):
	}
	if m, err := ep.server.memory(); err == nil {
		run.OpenRSSMiB = m.RSSMiB
		if run.Open > 0 {
			run.MiBPer1000 = round2((m.RSSMiB - run.BaselineRSSMiB) / (float64(run.Open) / 1000))
		}
	} else {
		run.Error = "memory: " + err.Error()
	}
	released := time.Now()
	_ = stdin.Close()
	var final HoldResult
	if err := dec.Decode(&final); err == nil {
		run.EndedEarly = final.EndedEarly
	}
	if err := cmd.Wait(); err != nil && run.Error == "" {
		run.Error = fmt.Sprintf("load process: %v: %s", err, strings.TrimSpace(errb.String()))
	}
	if err := r.waitMockIdle(ctx, 15*time.Second); err == nil {
		run.UpstreamReleasedMS = round1(float64(time.Since(released).Microseconds()) / 1000)
	} else {
		r.logf("open-streams %d %s: the mock still has streams in flight: %v", n, ep.name, err)
	}
	if err := waitRoute(ctx, ep, 15*time.Second); err != nil {
		run.Error = "did not answer after the streams: " + err.Error()
		r.logf("open-streams %d %s: %s", n, ep.name, run.Error)
	} else {
		run.Recovered = true
	}
	if run.EndedEarly > 0 {
		r.logf("open-streams %d %s: %d streams ended before they were released", n, ep.name, run.EndedEarly)
	}
	return run, ctx.Err()
}

// waitMockIdle polls the mock's /_mock/stats until no request is in flight.
func (r *runner) waitMockIdle(ctx context.Context, timeout time.Duration) error {
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(timeout)
	var last string
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+r.mockAddr+"/_mock/stats", nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err == nil {
			var st struct {
				InFlight int64 `json:"in_flight"`
			}
			err = json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&st)
			_ = resp.Body.Close()
			if err == nil && st.InFlight <= 0 {
				return nil
			}
			last = fmt.Sprintf("%d in flight", st.InFlight)
		}
		if err != nil {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("after %s: %s", timeout, last)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func round2(f float64) float64 { return float64(int64(f*100+0.5*sign(f))) / 100 }
func round3(f float64) float64 { return float64(int64(f*1000+0.5)) / 1000 }

func sign(f float64) float64 {
	if f < 0 {
		return -1
	}
	return 1
}

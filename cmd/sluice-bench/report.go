package main

import (
	"fmt"
	"io"
	"strings"
)

// writeMarkdown prints res as Markdown tables: a summary with one row per
// target (direct, the mock itself, as the baseline), then each phase in
// detail, memory, and the open-streams phase.
func writeMarkdown(w io.Writer, res *Results) {
	s := res.Settings
	fmt.Fprintf(w, "## Sluice benchmark\n\n")
	if f := s["family"]; f != nil && f != familyOpenAI {
		fmt.Fprintf(w, "Family %v: %s.\n\n", f, familyNote(fmt.Sprint(f)))
	}
	fmt.Fprintf(w, "%s, %d CPUs, all on 127.0.0.1; mock: latency=%v ttft=%v chunk-delay=%v chunks=%v (0 = mock default); rounds=%v; quick=%v\n\n",
		res.GoVersion, res.CPUs, s["mock_latency"], s["mock_ttft"], s["mock_chunk_delay"], s["mock_chunks"], s["rounds"], s["quick"])
	fmt.Fprintf(w, "Targets: %s", strings.Join(res.Targets, ", "))
	if res.NginxVersion != "" {
		fmt.Fprintf(w, " (nginx %s)", res.NginxVersion)
	}
	fmt.Fprintln(w, ".")
	for _, t := range targetNames() {
		if why, ok := res.Skipped[t]; ok {
			fmt.Fprintf(w, "Not measured: %s (%s).\n", t, why)
		}
	}
	fmt.Fprintln(w)
	writeSummary(w, res)

	phases := []struct {
		p     *Phase
		title string
		strm  bool
	}{
		{res.Closed, fmt.Sprintf("Closed loop, JSON: %v connections, %v", s["conns"], s["duration"]), false},
		{res.ClosedStream, fmt.Sprintf("Closed loop, streams: %v connections, %v", s["conns"], s["duration"]), true},
		{res.Open, fmt.Sprintf("Open loop, JSON: %v req/s, %v", s["rate"], s["open_duration"]), false},
		{res.Stream, fmt.Sprintf("Open loop, streams: %v req/s, %v", s["stream_rate"], s["stream_duration"]), true},
		{res.StreamHigh, fmt.Sprintf("Open loop, streams: %v req/s, %v", s["stream_high_rate"], s["stream_duration"]), true},
	}
	for _, ph := range phases {
		if ph.p != nil {
			writePhase(w, res.Targets, ph.title, ph.p, ph.strm)
		}
	}

	fmt.Fprintln(w, "### Memory (MiB; nginx: master + workers)")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| target | VmRSS idle, after the warm-up | VmRSS after the load | VmHWM (peak) |")
	fmt.Fprintln(w, "| --- | ---: | ---: | ---: |")
	for _, t := range res.Targets {
		if m := res.Memory[t]; m != nil {
			row(w, t, f1(m.Idle.RSSMiB), f1(m.After.RSSMiB), f1(m.After.HWMMiB))
		}
	}
	fmt.Fprintln(w)
	if os := res.OpenStreams; os != nil && len(os.Runs) > 0 {
		fmt.Fprintf(w, "### Open streams (events every %s; open files per process: %d)\n\n", os.ChunkDelay, os.FDLimit)
		fmt.Fprintln(w, "| target | streams | opened | VmRSS idle → open (MiB) | MiB per 1,000 streams | slope from the previous count | time to open (s) | ended early | upstream released (ms) | answers after |")
		fmt.Fprintln(w, "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
		lastErr := ""
		for _, r := range os.Runs {
			if r.Error != "" && r.Open == 0 {
				if r.Error != lastErr { // a count skipped for every target: one row
					row(w, r.Target, fmt.Sprint(r.Streams), "", "", "", "", "", "", "", r.Error)
				}
				lastErr = r.Error
				continue
			}
			lastErr = ""
			after := "yes"
			if !r.Recovered {
				after = "no: " + r.Error
			}
			rel := "not within 15 s"
			if r.UpstreamReleasedMS >= 0 {
				rel = f0(r.UpstreamReleasedMS)
			}
			slope := ""
			if r.SlopeMiBPer1000 != 0 {
				slope = f2(r.SlopeMiBPer1000)
			}
			row(w, r.Target, fmt.Sprint(r.Streams), fmt.Sprint(r.Open), f1(r.BaselineRSSMiB)+" → "+f1(r.OpenRSSMiB),
				f2(r.MiBPer1000), slope, f2(r.OpenSeconds), fmt.Sprint(r.EndedEarly), rel, after)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w, "Open-loop and streaming latencies count from each request's scheduled send time (no coordinated omission).")
}

// writeSummary prints one row per target: throughput against direct,
// added latency, TTFT, CPU per request and memory per open stream.
func writeSummary(w io.Writer, res *Results) {
	s := res.Settings
	head := []string{"", "throughput vs direct, JSON", "vs direct, stream",
		fmt.Sprintf("added p50 / p99 at %v/s, JSON", s["rate"]),
		fmt.Sprintf("added p50 / p99 at %v/s, stream", s["stream_rate"])}
	if res.StreamHigh != nil {
		head = append(head, fmt.Sprintf("added p50 / p99 at %v/s, stream", s["stream_high_rate"]))
	}
	head = append(head, "TTFT p50 / p99, stream", "CPU per request JSON / stream", "RSS per 1,000 open streams")
	row(w, head...)
	row(w, append([]string{"---"}, strings.Split(strings.Repeat("---:,", len(head)-1), ",")[:len(head)-1]...)...)
	cpuJSON, cpuStream := res.Closed, res.ClosedStream
	if cpuJSON == nil {
		cpuJSON = res.Open
	}
	if cpuStream == nil {
		cpuStream = res.Stream
	}
	for _, t := range res.Targets {
		cells := []string{t,
			throughputCell(res.Closed, t), throughputCell(res.ClosedStream, t),
			addedCell(res.Open, t), addedCell(res.Stream, t)}
		if res.StreamHigh != nil {
			cells = append(cells, addedCell(res.StreamHigh, t))
		}
		cells = append(cells, ttftCell(res.Stream, t), cpuCell(cpuJSON, t)+" / "+cpuCell(cpuStream, t), rssCell(res.OpenStreams, t))
		row(w, cells...)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Throughput: closed loop, the target's req/s ÷ direct's (direct: its own req/s). Added: the open loop's latency p50 / p99 minus direct's (streams: the whole stream; direct: its own). TTFT: p50 / p99 at the first stream rate (added to direct's in brackets). CPU per request: the target's process(es) in the closed loops, µs (direct: the mock's). RSS: (VmRSS with the streams open − idle) ÷ (streams ÷ 1,000), MiB, per count held.")
	fmt.Fprintln(w)
}

func throughputCell(p *Phase, t string) string {
	r, d := p.get(t), p.get(targetDirect)
	switch {
	case r == nil:
		return "–"
	case t == targetDirect:
		return f0(r.RPS) + " req/s"
	case d == nil || d.RPS == 0:
		return f0(r.RPS) + " req/s"
	}
	return fmt.Sprintf("%.3f× (%s req/s)", r.RPS/d.RPS, f0(r.RPS))
}

func addedCell(p *Phase, t string) string {
	r, d := p.get(t), p.get(targetDirect)
	switch {
	case r == nil:
		return "–"
	case t == targetDirect || d == nil:
		return f2(r.Latency.P50) + " / " + f2(r.Latency.P99) + " ms"
	}
	return fmt.Sprintf("%+.2f / %+.2f ms", r.Latency.P50-d.Latency.P50, r.Latency.P99-d.Latency.P99)
}

func ttftCell(p *Phase, t string) string {
	r, d := p.get(t), p.get(targetDirect)
	if r == nil || r.TTFT == nil {
		return "–"
	}
	if t == targetDirect || d == nil || d.TTFT == nil {
		return f2(r.TTFT.P50) + " / " + f2(r.TTFT.P99) + " ms"
	}
	return fmt.Sprintf("%s / %s ms (%+.2f / %+.2f)", f2(r.TTFT.P50), f2(r.TTFT.P99), r.TTFT.P50-d.TTFT.P50, r.TTFT.P99-d.TTFT.P99)
}

func cpuCell(p *Phase, t string) string {
	r := p.get(t)
	if r == nil || r.ServerCPUPerReqUS == 0 {
		return "–"
	}
	return f1(r.ServerCPUPerReqUS) + " µs"
}

func rssCell(os *OpenStreams, t string) string {
	if os == nil {
		return "–"
	}
	var parts []string
	for _, r := range os.Runs {
		if r.Target != t || r.Open == 0 {
			continue
		}
		parts = append(parts, fmt.Sprintf("%s MiB (%d)", f2(r.MiBPer1000), r.Open))
	}
	if len(parts) == 0 {
		return "–"
	}
	return strings.Join(parts, ", ")
}

// writePhase prints one phase, a column per target.
func writePhase(w io.Writer, targets []string, title string, p *Phase, stream bool) {
	var cols []string
	for _, t := range targets {
		if p.get(t) != nil {
			cols = append(cols, t)
		}
	}
	fmt.Fprintf(w, "### %s\n\n", title)
	row(w, append([]string{"measurement"}, cols...)...)
	row(w, append([]string{"---"}, strings.Split(strings.Repeat("---:,", len(cols)), ",")[:len(cols)]...)...)
	d := p.get(targetDirect)
	line := func(name string, cell func(r, d *LoadResult) string) {
		cells := []string{name}
		for _, t := range cols {
			cells = append(cells, cell(p.get(t), d))
		}
		row(w, cells...)
	}
	added := func(get func(r *LoadResult) float64) func(r, d *LoadResult) string {
		return func(r, dr *LoadResult) string {
			if dr == nil || r == dr {
				return f2(get(r))
			}
			return fmt.Sprintf("%s (%+.2f)", f2(get(r)), get(r)-get(dr))
		}
	}
	line("throughput (req/s)", func(r, _ *LoadResult) string { return f0(r.RPS) })
	line("errors", func(r, _ *LoadResult) string { return errs(*r) })
	lat := "latency"
	if stream {
		lat = "whole stream"
	}
	line(lat+" p50 (ms)", added(func(r *LoadResult) float64 { return r.Latency.P50 }))
	line(lat+" p90 (ms)", added(func(r *LoadResult) float64 { return r.Latency.P90 }))
	line(lat+" p99 (ms)", added(func(r *LoadResult) float64 { return r.Latency.P99 }))
	line(lat+" max (ms)", added(func(r *LoadResult) float64 { return r.Latency.Max }))
	if stream && d != nil && d.TTFT != nil {
		ttft := func(get func(x Dist) float64) func(r, d *LoadResult) string {
			return func(r, dr *LoadResult) string {
				if r.TTFT == nil {
					return "–"
				}
				if r == dr || dr.TTFT == nil {
					return f2(get(*r.TTFT))
				}
				return fmt.Sprintf("%s (%+.2f)", f2(get(*r.TTFT)), get(*r.TTFT)-get(*dr.TTFT))
			}
		}
		line("TTFT p50 (ms)", ttft(func(x Dist) float64 { return x.P50 }))
		line("TTFT p99 (ms)", ttft(func(x Dist) float64 { return x.P99 }))
		line("TTFT max (ms)", ttft(func(x Dist) float64 { return x.Max }))
		line("streams with no content token (TTFT = first byte)", func(r, _ *LoadResult) string { return fmt.Sprint(r.NoToken) })
	}
	line("server CPU per request (µs)", func(r, _ *LoadResult) string { return f1(r.ServerCPUPerReqUS) })
	line("load-generator CPU per request (µs)", func(r, _ *LoadResult) string { return f1(r.LoadCPUPerReqUS) })
	if s := p.get(targetSluice); s != nil && s.OverheadMS > 0 {
		line("mean x-sluice-overhead-ms", func(r, _ *LoadResult) string {
			if r.OverheadMS == 0 {
				return ""
			}
			return f3(r.OverheadMS)
		})
	}
	fmt.Fprintln(w)
}

func row(w io.Writer, cells ...string) {
	fmt.Fprintf(w, "| %s |\n", strings.Join(cells, " | "))
}

func errs(r LoadResult) string {
	if r.Errors == 0 {
		return fmt.Sprintf("0 / %d", r.Requests)
	}
	return fmt.Sprintf("%d / %d (%s)", r.Errors, r.Requests, r.FirstError)
}

func f0(f float64) string { return fmt.Sprintf("%.0f", f) }
func f1(f float64) string { return fmt.Sprintf("%.1f", f) }
func f2(f float64) string { return fmt.Sprintf("%.2f", f) }
func f3(f float64) string { return fmt.Sprintf("%.3f", f) }

// familyNote says what the two columns of a family's report send.
func familyNote(family string) string {
	switch family {
	case familyAnthropicTranslated:
		return "direct, nginx and goproxy = Anthropic Messages to the mock's /v1/messages; sluice = the same chat as OpenAI /v1/chat/completions, translated to an anthropic provider and back"
	case familyAnthropicRaw:
		return "Anthropic Messages to /v1/messages on every target (sluice's raw lane to an anthropic provider)"
	}
	return "OpenAI chat completions on every target"
}

package main

import (
	"fmt"
	"io"
	"strings"
)

// writeMarkdown prints res as Markdown tables.
func writeMarkdown(w io.Writer, res *Results) {
	s := res.Settings
	fmt.Fprintf(w, "## Sluice benchmark\n\n")
	if f := s["family"]; f != nil && f != familyOpenAI {
		fmt.Fprintf(w, "Family %v: %s.\n\n", f, familyNote(fmt.Sprint(f)))
	}
	fmt.Fprintf(w, "%s, %d CPUs, all on 127.0.0.1; mock: latency=%v ttft=%v chunk-delay=%v chunks=%v (0 = mock default); quick=%v\n\n",
		res.GoVersion, res.CPUs, s["mock_latency"], s["mock_ttft"], s["mock_chunk_delay"], s["mock_chunks"], s["quick"])
	fmt.Fprintln(w, "| measurement | direct to mock | through sluice | added by sluice |")
	fmt.Fprintln(w, "| --- | ---: | ---: | ---: |")
	if p := res.Closed; p != nil {
		h := fmt.Sprintf("closed loop, %v conns, %v", s["conns"], s["duration"])
		row(w, h+": throughput (req/s)", f0(p.Direct.RPS), f0(p.Sluice.RPS), pct(p.Direct.RPS, p.Sluice.RPS))
		row(w, h+": errors", errs(p.Direct), errs(p.Sluice), "")
		row(w, h+": latency p50 (ms)", f2(p.Direct.Latency.P50), f2(p.Sluice.Latency.P50), plus(p.Sluice.Latency.P50-p.Direct.Latency.P50))
		row(w, h+": latency p99 (ms)", f2(p.Direct.Latency.P99), f2(p.Sluice.Latency.P99), plus(p.Sluice.Latency.P99-p.Direct.Latency.P99))
		row(w, h+": server CPU per request (µs)", f1(p.DirectCPUPerReqUS), f1(p.SluiceCPUPerReqUS), "")
		row(w, h+": load-generator CPU per request (µs)", f1(p.DirectLoadCPUPerReqUS), f1(p.SluiceLoadCPUPerReqUS), "")
	}
	if p := res.Open; p != nil {
		h := fmt.Sprintf("open loop, %v req/s, %v", s["rate"], s["open_duration"])
		row(w, h+": achieved (req/s)", f0(p.Direct.RPS), f0(p.Sluice.RPS), "")
		row(w, h+": errors", errs(p.Direct), errs(p.Sluice), "")
		latRows(w, h+": latency", p.Direct.Latency, p.Sluice.Latency)
		if p.Sluice.OverheadMS > 0 {
			row(w, h+": mean x-sluice-overhead-ms", "", f3(p.Sluice.OverheadMS), "")
		}
	}
	if p := res.Stream; p != nil && p.Direct.TTFT != nil && p.Sluice.TTFT != nil {
		h := fmt.Sprintf("stream, %v req/s, %v", s["stream_rate"], s["stream_duration"])
		row(w, h+": errors", errs(p.Direct), errs(p.Sluice), "")
		d, sl := *p.Direct.TTFT, *p.Sluice.TTFT
		row(w, h+": TTFT p50 (ms)", f2(d.P50), f2(sl.P50), plus(sl.P50-d.P50))
		row(w, h+": TTFT p99 (ms)", f2(d.P99), f2(sl.P99), plus(sl.P99-d.P99))
		row(w, h+": TTFT max (ms)", f2(d.Max), f2(sl.Max), plus(sl.Max-d.Max))
		row(w, h+": whole stream p50 (ms)", f2(p.Direct.Latency.P50), f2(p.Sluice.Latency.P50), plus(p.Sluice.Latency.P50-p.Direct.Latency.P50))
		row(w, h+": whole stream p99 (ms)", f2(p.Direct.Latency.P99), f2(p.Sluice.Latency.P99), plus(p.Sluice.Latency.P99-p.Direct.Latency.P99))
		if p.Direct.NoToken+p.Sluice.NoToken > 0 {
			row(w, h+": streams with no content token (TTFT = first byte)", fmt.Sprint(p.Direct.NoToken), fmt.Sprint(p.Sluice.NoToken), "")
		}
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| sluice memory (MiB) | idle, after seeding | after the load |")
	fmt.Fprintln(w, "| --- | ---: | ---: |")
	fmt.Fprintf(w, "| VmRSS | %s | %s |\n", f1(res.MemIdle.RSSMiB), f1(res.MemAfter.RSSMiB))
	fmt.Fprintf(w, "| VmHWM (peak) | %s | %s |\n", f1(res.MemIdle.HWMMiB), f1(res.MemAfter.HWMMiB))
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Open-loop and streaming latencies count from each request's scheduled send time (no coordinated omission).")
}

// latRows prints p50/p90/p99/max rows with the added time.
func latRows(w io.Writer, h string, d, s Dist) {
	row(w, h+" p50 (ms)", f2(d.P50), f2(s.P50), plus(s.P50-d.P50))
	row(w, h+" p90 (ms)", f2(d.P90), f2(s.P90), plus(s.P90-d.P90))
	row(w, h+" p99 (ms)", f2(d.P99), f2(s.P99), plus(s.P99-d.P99))
	row(w, h+" max (ms)", f2(d.Max), f2(s.Max), plus(s.Max-d.Max))
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

// plus formats an added time in ms with its sign.
func plus(f float64) string { return fmt.Sprintf("%+.2f ms", f) }

// pct formats the change from a to b in percent.
func pct(a, b float64) string {
	if a == 0 {
		return ""
	}
	return fmt.Sprintf("%+.1f%%", (b-a)/a*100)
}

// familyNote says what the two columns of a family's report send.
func familyNote(family string) string {
	switch family {
	case familyAnthropicTranslated:
		return "direct = Anthropic Messages to the mock's /v1/messages; through sluice = the same chat as OpenAI /v1/chat/completions, translated to an anthropic provider and back"
	case familyAnthropicRaw:
		return "Anthropic Messages to /v1/messages both ways (sluice's raw lane to an anthropic provider)"
	}
	return "OpenAI chat completions both ways"
}

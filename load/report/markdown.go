package report

import (
	"fmt"
	"sort"
	"strings"
)

// Markdown renders the human summary of r.
func Markdown(r *Report) string {
	var b strings.Builder
	status := "PASSED"
	if !r.Passed {
		status = "FAILED"
	}
	fmt.Fprintf(&b, "# Load report: %s (%s)\n\n", r.Name, status)
	if r.Target != "" {
		fmt.Fprintf(&b, "Target: `%s`  \n", r.Target)
	}
	ri := r.Run
	fmt.Fprintf(&b, "Started %s; %s arrivals at %.0f req/s for %.0f s over the %s API (ramp-up %.0f s, seed %d, pacing %s, max in flight %d, peak %d).",
		r.Started.Format("2006-01-02 15:04:05 UTC"), ri.Arrival, ri.Rate, ri.DurationS, APIOf(r), ri.RampUpS, ri.Seed, ri.Pacing,
		ri.MaxInFlight, ri.PeakInFlight)
	if n := len(ri.MergedFrom); n > 0 {
		fmt.Fprintf(&b, " Merged from %d reports (%s): counts and rates are sums, latency and service time come from the merged histograms; start lag, intervals, resources and profiles are in each shard's own report.",
			n, "`"+strings.Join(ri.MergedFrom, "`, `")+"`")
	} else if sh := ri.Shard; sh != nil {
		fmt.Fprintf(&b, " Shard %d of %d (run seed %d).", sh.Index, sh.Count, sh.RunSeed)
	}
	if ri.Interrupted {
		fmt.Fprintf(&b, " **Interrupted after %.1f s.**", ri.ElapsedS)
	}
	if ri.DriverCPUS > 0 {
		fmt.Fprintf(&b, " Driver CPU %.2f s, %.1f µs per request (the driver's whole process: it includes tierd when tierd runs in it).",
			ri.DriverCPUS, ri.DriverCPUPerRequestUS)
	}
	b.WriteString("\n\n")
	if len(ri.Mix) > 0 {
		names := sortedKeys(ri.Mix)
		parts := make([]string, 0, len(names))
		for _, n := range names {
			parts = append(parts, fmt.Sprintf("%s %.0f%%", n, 100*ri.Mix[n]))
		}
		fmt.Fprintf(&b, "Mix: %s\n\n", strings.Join(parts, ", "))
	}

	fmt.Fprintf(&b, "## Results\n\nLatency is measured from each request's scheduled start (corrected for coordinated omission); service time from the actual send; start lag from the scheduled start to the send (a start more than %s late counts as late).\n\n", msf(r.Run.LateAfterMS))
	b.WriteString("| op | sent | ok | errors | error rate | target/s | achieved/s | late | missed | p50 | p90 | p95 | p99 | p99.9 | max | service p50 | service p99 | start lag p95 |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	row := func(o Op) {
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %s | %.1f | %.1f | %d | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n",
			o.Name, o.Sent, o.OK, o.Completed-o.OK, pct(o.ErrorRate), o.TargetRate, o.AchievedRate, o.Late, o.Missed,
			msf(o.Latency.P50MS), msf(o.Latency.P90MS), msf(o.Latency.P95MS), msf(o.Latency.P99MS),
			msf(o.Latency.P999MS), msf(o.Latency.MaxMS), msf(o.Service.P50MS), msf(o.Service.P99MS), msf(o.StartLag.P95MS))
	}
	for _, o := range r.Ops {
		row(o)
	}
	o := r.Overall
	o.Name = "**all**"
	row(o)
	b.WriteString("\n")

	if len(r.Overall.Errors) > 0 {
		b.WriteString("### Errors by code\n\n| op | code | count |\n|---|---|---:|\n")
		for _, o := range r.Ops {
			for _, c := range sortedKeys(o.Errors) {
				fmt.Fprintf(&b, "| %s | %s | %d |\n", o.Name, c, o.Errors[c])
			}
		}
		b.WriteString("\n")
	}

	if r.Budget != nil {
		b.WriteString("## Budget\n\n")
		b.WriteString(r.Budget.Markdown())
		b.WriteString("\n")
	}

	if res := r.Resources; res != nil {
		fmt.Fprintf(&b, "## Target resources (%s, %d samples)\n\n", res.Source, res.Samples)
		b.WriteString("| CPU avg | CPU max | RSS start | RSS end | RSS max | goroutines max | goroutines end |\n|---:|---:|---:|---:|---:|---:|---:|\n")
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %d | %d |\n\n", pct(res.CPUAvg), pct(res.CPUMax),
			mib(int64(res.RSSStartBytes)), mib(int64(res.RSSEndBytes)), mib(int64(res.RSSMaxBytes)), res.GoroutinesMax, res.GoroutinesEnd)
		if res.CSV != "" {
			fmt.Fprintf(&b, "Samples: `%s` (CPU in %% of one core).\n\n", res.CSV)
		}
	}

	if p := r.Profiles; p != nil {
		b.WriteString("## Profiles\n\n")
		fmt.Fprintf(&b, "In-use heap after warm-up %s, at the end %s (growth %s).\n\n", mib(p.HeapBaseBytes), mib(p.HeapEndBytes), pct(p.HeapGrowth))
		if len(p.CPUHotspots) > 0 {
			b.WriteString("### CPU hotspots\n\n| function | flat | cum |\n|---|---:|---:|\n")
			for _, h := range p.CPUHotspots {
				fmt.Fprintf(&b, "| `%s` | %.1f%% | %.1f%% |\n", h.Function, h.FlatPct, h.CumPct)
			}
			b.WriteString("\n")
		}
		contention := func(title string, total float64, hs []Hotspot, off string) {
			fmt.Fprintf(&b, "### %s\n\n", title)
			if total == 0 {
				fmt.Fprintf(&b, "None recorded (%s).\n\n", off)
				return
			}
			fmt.Fprintf(&b, "%s waited in all, over the profile windows.\n\n| function | flat | cum |\n|---|---:|---:|\n", msf(total))
			for _, h := range hs {
				fmt.Fprintf(&b, "| `%s` | %.1f%% | %.1f%% |\n", h.Function, h.FlatPct, h.CumPct)
			}
			b.WriteString("\n")
		}
		if len(p.CPUHotspots) > 0 {
			contention("Block hotspots (time blocked)", p.BlockDelayMS, p.BlockHotspots,
				"the target's block profile rate is 0, e.g. tierd without TIERD_BLOCK_PROFILE_RATE")
			contention("Mutex hotspots (time waiting on contended locks)", p.MutexDelayMS, p.MutexHotspots,
				"the target's mutex profile fraction is 0, e.g. tierd without TIERD_MUTEX_PROFILE_FRACTION")
		}
		if len(p.HeapGrowthBy) > 0 {
			b.WriteString("### Heap growth by function\n\n| function | Δ in-use |\n|---|---:|\n")
			for _, h := range p.HeapGrowthBy {
				fmt.Fprintf(&b, "| `%s` | %s |\n", h.Function, mib(h.DeltaBytes))
			}
			b.WriteString("\n")
		}
		if len(p.Files) > 0 {
			fmt.Fprintf(&b, "Profiles (open with `go tool pprof`): %s\n\n", "`"+strings.Join(p.Files, "`, `")+"`")
		}
	}

	if len(r.Intervals) > 0 {
		b.WriteString("## Intervals\n\n| from | to | sent | ok | errors | late | achieved/s | p50 | p95 | p99 | max |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
		for _, iv := range r.Intervals {
			if iv.Drain {
				fmt.Fprintf(&b, "| drain %.0fs | %.1fs | %d | %d | %d | %d | | %s | %s | %s | %s |\n", iv.StartS, iv.EndS, iv.Sent, iv.OK,
					iv.Completed-iv.OK, iv.Late, msf(iv.Latency.P50MS), msf(iv.Latency.P95MS), msf(iv.Latency.P99MS), msf(iv.Latency.MaxMS))
				continue
			}
			fmt.Fprintf(&b, "| %.0fs | %.0fs | %d | %d | %d | %d | %.1f | %s | %s | %s | %s |\n", iv.StartS, iv.EndS, iv.Sent, iv.OK,
				iv.Completed-iv.OK, iv.Late, iv.AchievedRate, msf(iv.Latency.P50MS), msf(iv.Latency.P95MS), msf(iv.Latency.P99MS), msf(iv.Latency.MaxMS))
		}
		b.WriteString("\n")
	}
	fmt.Fprintf(&b, "![latency and rate over time](%s)\n", PNGFile)
	return b.String()
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func msf(v float64) string {
	switch {
	case v >= 1000:
		return fmt.Sprintf("%.2fs", v/1000)
	case v >= 1:
		return fmt.Sprintf("%.2fms", v)
	default:
		return fmt.Sprintf("%.0fµs", v*1000)
	}
}

func pct(x float64) string { return fmt.Sprintf("%.3g%%", 100*x) }

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

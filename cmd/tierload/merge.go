package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/tierchaos/tierchaos/load/budget"
	"github.com/tierchaos/tierchaos/load/report"
)

// runMerge is `tierload merge [flags] DIR...`: it merges the shards'
// report.json files (their HDR histograms exactly) into one report folder
// and exits 1 when a shard's budget, or the -budget gates checked on the
// merged figures, failed.
func runMerge(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("tierload merge", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: tierload merge [flags] DIR...")
		fmt.Fprintln(fs.Output(), "Merges the report.json of each shard folder DIR (tierload -shard i/N) into one report:")
		fmt.Fprintln(fs.Output(), "counts and rates add up, percentiles come from the merged HDR histograms.")
		fs.PrintDefaults()
	}
	out := fs.String("out", "merged-report", "output folder for the merged report.json, report.md and latency.png")
	name := fs.String("name", "tierload (merged)", "report name")
	spec := fs.String("budget", "", "per-operation gates checked on the merged figures (tierload -budget's grammar; '': none)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitError
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return exitError
	}
	gates, err := budget.ParseSpec(*spec)
	if err != nil {
		fmt.Fprintln(stderr, "tierload merge: -budget:", err)
		return exitError
	}
	var reps []*report.Report
	for _, dir := range fs.Args() {
		path := dir
		if st, err := os.Stat(dir); err == nil && st.IsDir() {
			path = filepath.Join(dir, report.JSONFile)
		}
		r, err := report.Read(path)
		if err != nil {
			fmt.Fprintln(stderr, "tierload merge:", err)
			return exitError
		}
		reps = append(reps, r)
	}
	m, err := report.Merge(*name, fs.Args(), reps...)
	if err != nil {
		fmt.Fprintln(stderr, "tierload merge:", err)
		return exitError
	}
	if len(gates) > 0 {
		var ops []budget.OpMeasured
		for _, o := range m.Ops {
			ops = append(ops, o.Measured())
		}
		all := m.Overall.Measured()
		all.Name = budget.WholeMix
		br := budget.Report{Spec: gates.String(), Lines: budget.CheckSpec(gates, ops, all)}
		m.Budget = &br
		m.Passed = m.Passed && br.Passed()
	}
	if _, err := report.Write(*out, m); err != nil {
		fmt.Fprintln(stderr, "tierload merge:", err)
		return exitError
	}
	o := m.Overall
	fmt.Fprintf(stdout, "merged %d reports: %d sent (%.1f/s of %.1f/s target), %d ok, %d errors (%.3g%%)\n"+
		"latency p50 %.2fms p95 %.2fms p99 %.2fms max %.2fms\n",
		len(reps), o.Sent, o.AchievedRate, o.TargetRate, o.OK, o.Completed-o.OK, 100*o.ErrorRate,
		o.Latency.P50MS, o.Latency.P95MS, o.Latency.P99MS, o.Latency.MaxMS)
	for _, op := range m.Ops {
		fmt.Fprintf(stdout, "  %s: %d completed, p95 %.2fms\n", op.Name, op.Completed, op.Latency.P95MS)
	}
	if m.Budget != nil {
		fmt.Fprint(stdout, m.Budget.Table())
	}
	fmt.Fprintf(stdout, "report: %s\n", *out)
	if !m.Passed {
		return exitBudget
	}
	return exitOK
}

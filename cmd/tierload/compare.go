package main

import (
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/tierchaos/tierchaos/load/report"
	"github.com/tierchaos/tierchaos/load/trend"
)

// runCompare is `tierload compare [flags] OLD/report.json NEW/report.json`:
// it prints the per-operation comparison as Markdown and exits 1 when a
// figure regressed past its threshold.
func runCompare(args []string, stdout, stderr io.Writer) int {
	th := trend.DefaultThresholds()
	fs := flag.NewFlagSet("tierload compare", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: tierload compare [flags] OLD/report.json NEW/report.json")
		fmt.Fprintln(fs.Output(), "Compares p50/p95/p99, error rate and achieved rate per operation and for the whole mix;")
		fmt.Fprintln(fs.Output(), "exit 1 when a figure got worse past its threshold. A negative share disables a check.")
		fs.PrintDefaults()
	}
	fs.Float64Var(&th.P50, "p50", th.P50, "largest allowed relative p50 increase (0.2 = +20%)")
	fs.Float64Var(&th.P95, "p95", th.P95, "largest allowed relative p95 increase")
	fs.Float64Var(&th.P99, "p99", th.P99, "largest allowed relative p99 increase")
	fs.DurationVar(&th.MinLatencyDelta, "min-delta", th.MinLatencyDelta, "latency increases up to this are never regressions (noise floor)")
	fs.Float64Var(&th.ErrorRate, "errors", th.ErrorRate, "largest allowed error-rate increase, absolute (0.001 = +0.1 points)")
	fs.Float64Var(&th.AchievedRate, "rate-drop", th.AchievedRate, "largest allowed relative drop of the achieved rate (0.01 = -1%)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitError
	}
	if fs.NArg() != 2 {
		fs.Usage()
		return exitError
	}
	if err := th.Validate(); err != nil {
		fmt.Fprintln(stderr, "tierload compare:", err)
		return exitError
	}
	old, err := report.Read(fs.Arg(0))
	if err != nil {
		fmt.Fprintln(stderr, "tierload compare:", err)
		return exitError
	}
	cur, err := report.Read(fs.Arg(1))
	if err != nil {
		fmt.Fprintln(stderr, "tierload compare:", err)
		return exitError
	}
	c := trend.Compare(old, cur, th)
	fmt.Fprint(stdout, c.Markdown())
	if len(c.Regressions()) > 0 {
		return exitBudget
	}
	return exitOK
}

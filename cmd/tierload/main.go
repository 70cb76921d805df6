// Command tierload drives tierd with the open-loop load driver and writes
// a report folder (report.json, report.md, latency.png, resources.csv,
// profiles/*.pb.gz).
//
// By default it starts the harness stack (MinIO behind Toxiproxy, the S3
// fault layer, tierd in a container) and removes it afterwards; with -url it
// drives an existing tierd instead.
//
//	tierload -rate 100 -duration 60s -out load-report
//	tierload -url http://127.0.0.1:8080 -pprof http://127.0.0.1:6060/debug/pprof -pid 1234
//	tierload -rate 1000 -duration 5m -s3-latency 5ms -budget-p95 25ms
//
// Exit status: 0 when every budget gate held (or -fail-on-budget=false),
// 1 when one failed, 2 on a usage or setup error.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/tierchaos/tierchaos/harness"
	"github.com/tierchaos/tierchaos/harness/cleanup"
	"github.com/tierchaos/tierchaos/harness/dockerenv"
	"github.com/tierchaos/tierchaos/harness/netfault"
	"github.com/tierchaos/tierchaos/load"
	"github.com/tierchaos/tierchaos/load/monitor"
	"github.com/tierchaos/tierchaos/load/progress"
	"github.com/tierchaos/tierchaos/load/runner"
	"github.com/tierchaos/tierchaos/load/workload"
)

// Exit statuses.
const (
	exitOK     = 0
	exitBudget = 1
	exitError  = 2
)

func main() {
	// The harness re-executes this binary as its cleanup watchdog.
	if cleanup.RunWatchdogIfRequested() {
		return
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// config is the parsed command line.
type config struct {
	opts      runner.Options
	mix       string
	arrival   string
	progress  string
	pid       int
	container string
	s3Latency time.Duration
	s3Jitter  time.Duration
	sut       string
	// failOnBudget makes a failed budget gate exit with status 1.
	failOnBudget bool
	seedSet      bool
	logLevel     string
}

func parse(args []string, stderr io.Writer) (*config, error) {
	c := &config{}
	o := &c.opts
	fs := flag.NewFlagSet("tierload", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.TierdURL, "url", "", "drive an existing tierd at this URL instead of starting the harness stack")
	fs.StringVar(&o.APIToken, "api-token", "", "with -url: tierd's API bearer token (default: env TIERD_API_TOKEN)")
	fs.StringVar(&o.AdminToken, "admin-token", "", "with -url: tierd's admin bearer token (default: env TIERD_ADMIN_TOKEN)")
	fs.StringVar(&o.PprofURL, "pprof", "", "tierd's pprof base URL (…/debug/pprof); with the stack: its debug port")
	fs.IntVar(&c.pid, "pid", 0, "with -url: sample this local tierd process from /proc")
	fs.StringVar(&c.container, "container", "", "with -url: sample this Docker container (name or id) via the stats API")
	fs.Float64Var(&o.Rate, "rate", 100, "target request rate (req/s)")
	fs.DurationVar(&o.Duration, "duration", 60*time.Second, "how long to send requests")
	fs.DurationVar(&o.RampUp, "ramp-up", 0, "raise the rate linearly from 0 over this time")
	fs.DurationVar(&o.WarmUp, "warm-up", 0, "base heap profile and CPU average start after this (default 10% of duration, ≤ 30s)")
	fs.StringVar(&c.arrival, "arrival", "constant", "arrivals: constant or poisson")
	fs.IntVar(&o.MaxInFlight, "max-in-flight", 512, "concurrent request limit")
	fs.DurationVar(&o.Timeout, "timeout", 10*time.Second, "per-request timeout")
	fs.StringVar(&c.mix, "mix", workload.DefaultMix().String(), "operation weights")
	seed := fs.Uint64("seed", 0, "seed of the data set, the arrivals and the op sequence (default random, printed)")
	fs.IntVar(&o.Workload.Collections, "collections", 32, "collections to seed")
	fs.IntVar(&o.Workload.Dimension, "dim", 64, "vector dimension")
	fs.IntVar(&o.Workload.Vectors, "vectors", 200, "vectors per collection (inserts replace within this id space)")
	fs.Float64Var(&o.Workload.WarmShare, "warm-share", 0.2, "share of collections demoted to warm before the run")
	fs.Float64Var(&o.Workload.ColdShare, "cold-share", 0.1, "share of collections demoted to cold before the run")
	fs.DurationVar(&c.s3Latency, "s3-latency", 0, "with the stack: Toxiproxy latency on tierd's S3 traffic during the run")
	fs.DurationVar(&c.s3Jitter, "s3-jitter", 0, "with -s3-latency: ± jitter")
	fs.StringVar(&c.sut, "sut", "", "with the stack: tierd as 'container' (default) or 'inprocess'")
	fs.StringVar(&o.OutDir, "out", "load-report", "output folder")
	fs.StringVar(&o.Name, "name", "tierload", "report name")
	fs.StringVar(&c.progress, "progress", "auto", "progress display: auto, bar or plain")
	fs.BoolVar(&o.KeepData, "keep-data", false, "leave the seeded collections in tierd")
	fs.DurationVar(&o.CPUWindow, "cpu-window", 10*time.Second, "length of each CPU profile")
	fs.DurationVar(&o.CPUEvery, "cpu-every", 60*time.Second, "start a CPU profile this often")
	fs.DurationVar(&o.Budget.P95, "budget-p95", 25*time.Millisecond, "p95 latency budget (0: unchecked)")
	fs.DurationVar(&o.Budget.P99, "budget-p99", 0, "p99 latency budget (0: unchecked)")
	fs.Float64Var(&o.Budget.MaxErrorRate, "budget-error-rate", 0.001, "largest error rate (0: unchecked)")
	fs.Float64Var(&o.Budget.MinRateRatio, "budget-rate-ratio", 0.99, "smallest achieved/target rate (0: unchecked)")
	fs.Float64Var(&o.Budget.MaxCPU, "budget-cpu", 0.8, "largest average tierd CPU in cores, after warm-up (0: unchecked)")
	fs.Float64Var(&o.Budget.MaxHeapGrowth, "budget-heap-growth", 0.1, "largest in-use heap growth from warm-up to end (0: unchecked)")
	fs.Int64Var(&o.Budget.HeapSlackBytes, "budget-heap-slack", 4<<20, "heap growth up to this many bytes always holds (0: none)")
	fs.BoolVar(&c.failOnBudget, "fail-on-budget", true, "exit with status 1 when a budget gate fails")
	fs.StringVar(&c.logLevel, "log-level", "info", "debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "seed" {
			c.seedSet = true
		}
	})
	o.Workload.Seed = *seed
	if !c.seedSet {
		o.Workload.Seed = rand.Uint64() >> 12 // short enough to retype
	}
	var err error
	if o.Workload.Mix, err = workload.ParseMix(c.mix); err != nil {
		return nil, err
	}
	if o.Arrival, err = load.ParseArrival(c.arrival); err != nil {
		return nil, err
	}
	switch c.progress {
	case "auto":
		o.Progress = progress.Auto
	case "bar":
		o.Progress = progress.Bar
	case "plain":
		o.Progress = progress.Plain
	default:
		return nil, fmt.Errorf("-progress %q: want auto, bar or plain", c.progress)
	}
	if o.TierdURL == "" && (c.pid != 0 || c.container != "") {
		return nil, errors.New("-pid and -container need -url (the stack is sampled automatically)")
	}
	if o.TierdURL == "" && (o.APIToken != "" || o.AdminToken != "") {
		return nil, errors.New("-api-token and -admin-token need -url (the stack makes its own tokens)")
	}
	if o.TierdURL != "" && (c.s3Latency != 0 || c.sut != "") {
		return nil, errors.New("-s3-latency and -sut need the harness stack (drop -url)")
	}
	if c.s3Jitter > c.s3Latency {
		return nil, errors.New("-s3-jitter must not exceed -s3-latency")
	}
	if err := o.Workload.Validate(); err != nil {
		return nil, err
	}
	if err := load.ValidateSchedule(o.Rate, o.Duration, o.RampUp); err != nil {
		return nil, err
	}
	return c, nil
}

func run(args []string, stdout, stderr io.Writer) int {
	c, err := parse(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		fmt.Fprintln(stderr, "tierload:", err)
		return exitError
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.logLevel)); err != nil {
		fmt.Fprintln(stderr, "tierload: -log-level:", err)
		return exitError
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	c.opts.Logger = log
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	fmt.Fprintf(stderr, "tierload: seed %d (rerun with -seed %d)\n", c.opts.Workload.Seed, c.opts.Workload.Seed)
	oc, err := execute(ctx, c, log)
	if err != nil {
		fmt.Fprintln(stderr, "tierload:", err)
		return exitError
	}
	fmt.Fprintf(stdout, "%s\nreport: %s\n", summary(oc), c.opts.OutDir)
	if !oc.Passed() && c.failOnBudget {
		return exitBudget
	}
	return exitOK
}

// execute runs against -url, or starts the harness stack around the run.
func execute(ctx context.Context, c *config, log *slog.Logger) (*runner.Outcome, error) {
	o := c.opts
	if o.TierdURL != "" {
		o.Target = o.TierdURL
		if o.APIToken == "" {
			o.APIToken = os.Getenv("TIERD_API_TOKEN")
		}
		if o.AdminToken == "" {
			o.AdminToken = os.Getenv("TIERD_ADMIN_TOKEN")
		}
		switch {
		case c.pid != 0:
			s, err := monitor.NewProc(c.pid, "")
			if err != nil {
				return nil, err
			}
			o.Sampler = s
		case c.container != "":
			cli, err := dockerenv.Client(ctx)
			if err != nil {
				return nil, err
			}
			defer cli.Close()
			o.Sampler = monitor.NewDocker(cli, c.container)
		}
		return runner.Run(ctx, o)
	}

	run, err := cleanup.NewRun()
	if err != nil {
		return nil, err
	}
	wd, err := cleanup.StartWatchdog(run)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err := wd.Stop(); err != nil {
			log.Warn("watchdog", "err", err)
		}
	}()
	stack, err := harness.Start(ctx, run, harness.Options{Logger: log, Seed: o.Workload.Seed, SUT: c.sut})
	if err != nil {
		return nil, fmt.Errorf("start stack: %w", err)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
		defer cancel()
		if err := stack.Close(cctx); err != nil {
			log.Warn("stack teardown", "err", err)
		}
	}()
	if o.TierdURL, err = stack.TierdURL(); err != nil {
		return nil, err
	}
	o.APIToken, o.AdminToken = stack.APIToken, stack.AdminToken
	dbg, err := stack.DebugURL()
	if err != nil {
		return nil, err
	}
	if o.PprofURL == "" {
		o.PprofURL = dbg + "/debug/pprof"
	}
	o.Target = "harness stack (" + stack.Mode + ", run " + run.ID + ")"
	if stack.Mode == harness.SUTContainer {
		cli, err := dockerenv.Client(ctx)
		if err != nil {
			return nil, err
		}
		defer cli.Close()
		o.Sampler = monitor.NewDocker(cli, stack.TierdContainerID())
	} else {
		s, err := monitor.NewProc(os.Getpid(), "")
		if err != nil {
			return nil, err
		}
		o.Sampler = s
		o.Target += "; CPU and RSS include the driver"
	}
	if c.s3Latency > 0 {
		f, err := stack.Net.Apply(ctx, netfault.Latency(c.s3Latency).Jitter(c.s3Jitter))
		if err != nil {
			return nil, fmt.Errorf("apply S3 latency: %w", err)
		}
		defer func() {
			if err := f.Remove(context.WithoutCancel(ctx)); err != nil {
				log.Warn("remove S3 latency", "err", err)
			}
		}()
		o.Target += fmt.Sprintf("; S3 latency %v±%v", c.s3Latency, c.s3Jitter)
	}
	return runner.Run(ctx, o)
}

// summary renders the closing table printed on stdout.
func summary(oc *runner.Outcome) string {
	r := oc.Report
	o := r.Overall
	status := "PASSED"
	if !oc.Passed() {
		status = "FAILED"
	}
	s := fmt.Sprintf("tierload %s: %d sent (%.1f/s of %.1f/s target), %d ok, %d errors (%.3g%%), %d late, %d missed\n"+
		"latency p50 %.2fms p95 %.2fms p99 %.2fms p99.9 %.2fms max %.2fms\n",
		status, o.Sent, o.AchievedRate, o.TargetRate, o.OK, o.Completed-o.OK, 100*o.ErrorRate, o.Late, o.Missed,
		o.Latency.P50MS, o.Latency.P95MS, o.Latency.P99MS, o.Latency.P999MS, o.Latency.MaxMS)
	return s + oc.Budget.Table()
}

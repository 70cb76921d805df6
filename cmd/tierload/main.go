// Command tierload drives tierd with the open-loop load driver and writes
// a report folder (report.json, report.md, latency.png, resources.csv,
// profiles/*.pb.gz with CPU, block and mutex windows).
//
// By default it starts the harness stack (MinIO behind Toxiproxy, the S3
// fault layer, tierd in a container, block and mutex profiling on) and
// removes it afterwards; with -url it drives an existing tierd instead.
//
//	tierload -rate 100 -duration 60s -out load-report
//	tierload -url http://127.0.0.1:8080 -pprof http://127.0.0.1:6060/debug/pprof -pid 1234
//	tierload -api grpc -rate 100 -duration 60s -out load-report-grpc
//	tierload -api grpc -url http://127.0.0.1:8080 -grpc-addr 127.0.0.1:9090
//	tierload -rate 1000 -duration 5m -s3-latency 5ms -budget 'search:p95=25ms,insert:p95=50ms,tier:p95=1s,*:errors=0.1%'
//
// API: -api rest (default) drives tierd's REST API, -api grpc its gRPC
// API over -grpc-conns connections (the stack's gRPC port, or -grpc-addr
// with -url), with the same mix, histograms, budgets, reports and shards;
// report.json records the API (run.api), and tierload compare names it.
//
// Budgets: -budget holds per-operation gates, "scope:metric=value" joined
// by commas, scope an operation, "*" (each operation without its own gate
// of that metric) or "all" (the whole mix), metric p50, p90, p95, p99,
// p99.9, max (a Go duration) or errors (0.1% or 0.001); the -budget-*
// flags hold the whole-run gates (CPU, heap growth, achieved rate, ...).
//
// Capacity search: -find-max runs stages of -find-stage from -find-start
// req/s, multiplying the rate by -find-factor after each stage that held
// every budget (up to -find-max-rate), then bisects between the highest
// held and the lowest failed rate until their gap is at most
// -find-resolution of the held rate (at most -find-max-stages stages). It
// writes capacity.md, capacity.json and capacity.png (p95 per operation
// against rate) and each stage's report under stages/.
//
// Shards: -shard i/N (with -url and -seed) drives 1/N of -rate with a
// seed derived from -seed and i and collections named load-s<i>-*; the
// report records the shard. Subcommands:
//
//	tierload merge [-out DIR] [-budget SPEC] SHARD_DIR...
//	    merge the shards' reports (HDR histograms merged exactly)
//	tierload compare [-p50 0.2] [-p95 0.2] [-p99 0.5] [-min-delta 2ms] [-errors 0.001] [-rate-drop 0.01] OLD/report.json NEW/report.json
//	    per-operation deltas as Markdown; exit 1 past a threshold
//
// Exit status: 0 when every budget gate held (or -fail-on-budget=false;
// with -find-max: when the start rate held; compare: no regression), 1
// when one failed (a regression), 2 on a usage or setup error.
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
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/tierchaos/tierchaos/harness/cleanup"
	"github.com/tierchaos/tierchaos/harness/dockerenv"
	"github.com/tierchaos/tierchaos/harness/netfault"
	"github.com/tierchaos/tierchaos/harness/tierd"
	"github.com/tierchaos/tierchaos/load"
	"github.com/tierchaos/tierchaos/load/budget"
	"github.com/tierchaos/tierchaos/load/capacity"
	"github.com/tierchaos/tierchaos/load/grpcop"
	"github.com/tierchaos/tierchaos/load/httpop"
	"github.com/tierchaos/tierchaos/load/monitor"
	"github.com/tierchaos/tierchaos/load/progress"
	"github.com/tierchaos/tierchaos/load/report"
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
	opts runner.Options
	// tierd is the tierd to drive and the workload on it.
	tierd     workload.SystemOptions
	mix       string
	arrival   string
	progress  string
	pid       int
	container string
	s3Latency time.Duration
	s3Jitter  time.Duration
	sut       string
	dataTmpfs string
	// failOnBudget makes a failed budget gate exit with status 1.
	failOnBudget bool
	seedSet      bool
	// workload is -workload: a file with an HTTP workload spec, driven
	// against -url instead of tierd's workload; spec is what it holds.
	workload string
	spec     *httpop.Spec
	logLevel string
	opBudget string
	// findMax runs the capacity search instead of one run.
	findMax   bool
	find      capacity.Plan
	findStage time.Duration
	// shard is -shard i/N ("" for an unsharded run).
	shard string
}

// apiUsage is the text of -api, and of its error.
const apiUsage = `tierd API to drive: "rest" or "grpc"`

// DefaultOpBudget is the seed plan's per-operation gate: searches answer
// within 25 ms at p95 and every operation fails less than 0.1% of the time.
const DefaultOpBudget = "search:p95=25ms,*:errors=0.1%"

func parse(args []string, stderr io.Writer) (*config, error) {
	c := &config{}
	o, td := &c.opts, &c.tierd
	fs := flag.NewFlagSet("tierload", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `usage: tierload [flags]                      one run (or -find-max: capacity search)
       tierload merge [flags] SHARD_DIR...    merge -shard i/N reports (tierload merge -h)
       tierload compare [flags] OLD NEW       per-operation trend of two report.json (tierload compare -h)
`)
		fs.PrintDefaults()
	}
	fs.StringVar(&td.URL, "url", "", "drive an existing tierd (with -workload: the service) at this URL instead of starting the harness stack")
	fs.StringVar(&c.workload, "workload", "", "drive the HTTP workload in this JSON file (httpop.Spec: weighted requests with {seq} and {mod:N}) against -url instead of tierd's workload")
	fs.StringVar(&td.APIToken, "api-token", "", "with -url: tierd's API bearer token (default: env TIERD_API_TOKEN)")
	fs.StringVar(&td.AdminToken, "admin-token", "", "with -url: tierd's admin bearer token (default: env TIERD_ADMIN_TOKEN)")
	fs.StringVar(&td.API, "api", workload.APIREST, apiUsage)
	fs.StringVar(&td.GRPCAddr, "grpc-addr", "", "with -url and -api grpc: tierd's gRPC address (host:port)")
	fs.IntVar(&td.GRPCConns, "grpc-conns", grpcop.DefaultConns, "with -api grpc: connections the requests share")
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
	fs.IntVar(&td.Workload.Collections, "collections", 32, "collections to seed")
	fs.IntVar(&td.Workload.Dimension, "dim", 64, "vector dimension")
	fs.IntVar(&td.Workload.Vectors, "vectors", 200, "vectors per collection (inserts replace within this id space)")
	fs.Float64Var(&td.Workload.WarmShare, "warm-share", 0.2, "share of collections demoted to warm before the run")
	fs.Float64Var(&td.Workload.ColdShare, "cold-share", 0.1, "share of collections demoted to cold before the run")
	fs.DurationVar(&c.s3Latency, "s3-latency", 0, "with the stack: Toxiproxy latency on tierd's S3 traffic during the run")
	fs.DurationVar(&c.s3Jitter, "s3-jitter", 0, "with -s3-latency: ± jitter")
	fs.StringVar(&c.sut, "sut", "", "with the stack: tierd as 'container' (default) or 'inprocess'")
	fs.StringVar(&c.dataTmpfs, "data-tmpfs", "", "with the stack: tierd's data directory on a tmpfs of this size (e.g. 512m); a diagnostic: fsyncs cost nothing there, so a run beside one on disk shows what the disk adds")
	fs.StringVar(&o.OutDir, "out", "load-report", "output folder")
	fs.StringVar(&o.Name, "name", "tierload", "report name")
	fs.StringVar(&c.progress, "progress", "auto", "progress display: auto, bar or plain")
	fs.BoolVar(&o.KeepData, "keep-data", false, "leave the seeded collections in tierd")
	fs.DurationVar(&o.CPUWindow, "cpu-window", 10*time.Second, "length of each CPU profile")
	fs.DurationVar(&o.CPUEvery, "cpu-every", 60*time.Second, "start a CPU profile this often")
	fs.StringVar(&c.opBudget, "budget", DefaultOpBudget, "per-operation gates: 'op:metric=value,...' with op an operation, '*' (each op) or 'all' (whole mix), metric p50|p90|p95|p99|p99.9|max|errors ('' : none)")
	fs.DurationVar(&o.Budget.P95, "budget-p95", 0, "whole-mix p95 latency budget (0: unchecked)")
	fs.DurationVar(&o.Budget.P99, "budget-p99", 0, "whole-mix p99 latency budget (0: unchecked)")
	fs.Float64Var(&o.Budget.MaxErrorRate, "budget-error-rate", 0.001, "largest error rate (0: unchecked)")
	fs.Float64Var(&o.Budget.MinRateRatio, "budget-rate-ratio", 0.99, "smallest achieved/target rate (0: unchecked)")
	fs.Float64Var(&o.Budget.MaxCPU, "budget-cpu", 0.8, "largest average tierd CPU in cores, after warm-up (0: unchecked)")
	fs.Float64Var(&o.Budget.MaxHeapGrowth, "budget-heap-growth", 0.1, "largest in-use heap growth from warm-up to end (0: unchecked)")
	fs.Int64Var(&o.Budget.HeapSlackBytes, "budget-heap-slack", 4<<20, "heap growth up to this many bytes always holds (0: none)")
	fs.BoolVar(&c.failOnBudget, "fail-on-budget", true, "exit with status 1 when a budget gate fails")
	fs.StringVar(&c.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&c.shard, "shard", "", "i/N: drive shard i (0-based) of N: 1/N of -rate, seed derived from -seed and i, collections prefixed load-s<i>; needs -url and -seed")
	fs.BoolVar(&c.findMax, "find-max", false, "capacity search: stages at rising rates until a budget fails, then bisection (-rate and -duration are not used)")
	fs.Float64Var(&c.find.Start, "find-start", 50, "with -find-max: the first stage's rate (req/s)")
	fs.Float64Var(&c.find.Factor, "find-factor", 2, "with -find-max: multiply the rate by this after a stage that held")
	fs.Float64Var(&c.find.Max, "find-max-rate", 2000, "with -find-max: the highest rate tried (req/s)")
	fs.Float64Var(&c.find.Resolution, "find-resolution", 0.1, "with -find-max: bisect until the failed-held gap is at most this share of the held rate")
	fs.IntVar(&c.find.MaxStages, "find-max-stages", 20, "with -find-max: at most this many stages")
	fs.DurationVar(&c.findStage, "find-stage", 20*time.Second, "with -find-max: each stage's duration")
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
	td.Workload.Seed = *seed
	if !c.seedSet {
		td.Workload.Seed = rand.Uint64() >> 12 // short enough to retype
	}
	if c.shard != "" {
		i, n, err := parseShard(c.shard)
		if err != nil {
			return nil, err
		}
		if !c.seedSet || td.URL == "" || c.findMax {
			return nil, errors.New("-shard needs -seed (the run's seed, the same for every shard) and -url (one tierd for all shards), and no -find-max")
		}
		o.Shard = &report.Shard{Index: i, Count: n, RunSeed: td.Workload.Seed}
		o.Rate /= float64(n)
		td.Workload.Seed = runner.ShardSeed(td.Workload.Seed, i)
		td.Workload.Prefix = fmt.Sprintf("load-s%d", i)
		if o.Name == "tierload" {
			o.Name = fmt.Sprintf("tierload shard %d/%d", i, n)
		}
	}
	var err error
	if o.OpBudget, err = budget.ParseSpec(c.opBudget); err != nil {
		return nil, fmt.Errorf("-budget: %w", err)
	}
	if td.Workload.Mix, err = workload.ParseMix(c.mix); err != nil {
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
	switch {
	case td.API != workload.APIREST && td.API != workload.APIGRPC:
		return nil, fmt.Errorf("-api %q: want %q or %q", td.API, workload.APIREST, workload.APIGRPC)
	case td.API == workload.APIGRPC && td.URL != "" && td.GRPCAddr == "":
		return nil, errors.New("-api grpc with -url needs -grpc-addr (tierd's gRPC host:port)")
	case td.GRPCAddr != "" && (td.API != workload.APIGRPC || td.URL == ""):
		return nil, errors.New("-grpc-addr needs -api grpc and -url (the stack gives its own address)")
	case td.GRPCConns < 1:
		return nil, fmt.Errorf("-grpc-conns %d: want at least 1", td.GRPCConns)
	}
	if c.workload != "" {
		if td.URL == "" {
			return nil, errors.New("-workload needs -url (the service to drive)")
		}
		if td.API != workload.APIREST || td.GRPCAddr != "" || td.APIToken != "" || td.AdminToken != "" {
			return nil, errors.New("-workload drives its own HTTP requests: no -api, -grpc-addr or tierd tokens (give headers in the spec)")
		}
		spec, err := httpop.ReadSpec(c.workload)
		if err != nil {
			return nil, fmt.Errorf("-workload: %w", err)
		}
		c.spec = &spec
	}
	if td.URL == "" && (c.pid != 0 || c.container != "") {
		return nil, errors.New("-pid and -container need -url (the stack is sampled automatically)")
	}
	if td.URL == "" && (td.APIToken != "" || td.AdminToken != "") {
		return nil, errors.New("-api-token and -admin-token need -url (the stack makes its own tokens)")
	}
	if td.URL != "" && (c.s3Latency != 0 || c.sut != "" || c.dataTmpfs != "") {
		return nil, errors.New("-s3-latency, -sut and -data-tmpfs need the harness stack (drop -url)")
	}
	if c.s3Jitter > c.s3Latency {
		return nil, errors.New("-s3-jitter must not exceed -s3-latency")
	}
	if err := td.Workload.Validate(); err != nil {
		return nil, err
	}
	if c.findMax {
		if err := c.find.Validate(); err != nil {
			return nil, err
		}
		if err := load.ValidateSchedule(c.find.Start, c.findStage, 0); err != nil {
			return nil, fmt.Errorf("-find-stage: %w", err)
		}
		return c, nil
	}
	if err := load.ValidateSchedule(o.Rate, o.Duration, o.RampUp); err != nil {
		return nil, err
	}
	return c, nil
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "compare":
			return runCompare(args[1:], stdout, stderr)
		case "merge":
			return runMerge(args[1:], stdout, stderr)
		}
	}
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

	if sh := c.opts.Shard; sh != nil {
		fmt.Fprintf(stderr, "tierload: shard %d/%d, run seed %d, shard seed %d\n", sh.Index, sh.Count, sh.RunSeed, c.tierd.Workload.Seed)
	} else {
		fmt.Fprintf(stderr, "tierload: seed %d (rerun with -seed %d)\n", c.tierd.Workload.Seed, c.tierd.Workload.Seed)
	}
	code, err := execute(ctx, c, log, stdout)
	if err != nil {
		fmt.Fprintln(stderr, "tierload:", err)
		return exitError
	}
	return code
}

// parseShard parses -shard's "i/N" (0 ≤ i < N).
func parseShard(s string) (i, n int, err error) {
	a, b, ok := strings.Cut(s, "/")
	if ok {
		i, err = strconv.Atoi(strings.TrimSpace(a))
		if err == nil {
			n, err = strconv.Atoi(strings.TrimSpace(b))
		}
	}
	if !ok || err != nil || n < 1 || i < 0 || i >= n {
		return 0, 0, fmt.Errorf("-shard %q: want i/N with 0 ≤ i < N, e.g. 0/3", s)
	}
	return i, n, nil
}

// drive runs the configured load against the target in o: one run, or
// the capacity search.
func (c *config) drive(ctx context.Context, o runner.Options, stdout io.Writer) (int, error) {
	if c.findMax {
		return c.capacity(ctx, o, stdout)
	}
	oc, err := runner.Run(ctx, o)
	if err != nil {
		return exitError, err
	}
	fmt.Fprintf(stdout, "%s\nreport: %s\n", summary(oc), o.OutDir)
	if !oc.Passed() && c.failOnBudget {
		return exitBudget, nil
	}
	return exitOK, nil
}

// capacity runs the capacity search: each stage is one runner run of
// -find-stage at its rate, judged by the same budgets except heap growth
// (stages are too short for a warm-up heap baseline; no profiles are
// taken). Stage reports go to <out>/stages/NN-<rate>/, the search's table
// and plot to <out>/capacity.{md,json,png}. Exit status 1 when not even the
// start rate held.
func (c *config) capacity(ctx context.Context, o runner.Options, stdout io.Writer) (int, error) {
	base := o
	base.Duration, base.RampUp, base.WarmUp = c.findStage, 0, 0
	base.PprofURL = ""
	base.Budget.MaxHeapGrowth, base.Budget.HeapSlackBytes = 0, 0
	res, err := capacity.Find(ctx, c.find, func(ctx context.Context, i int, rate float64) (capacity.Stage, error) {
		so := base
		so.Rate = rate
		so.Name = fmt.Sprintf("%s stage %d", o.Name, i)
		so.OutDir = filepath.Join(o.OutDir, "stages", fmt.Sprintf("%02d-%greqs", i, rate))
		oc, err := runner.Run(ctx, so)
		if err != nil {
			return capacity.Stage{}, err
		}
		st := capacity.StageOf(oc.Report, oc.Budget)
		st.Dir = so.OutDir
		fmt.Fprintf(stdout, "stage %d: %.4g req/s: %s\n", i, rate, stageLine(st))
		return st, nil
	})
	if res == nil {
		return exitError, err
	}
	res.StageDuration = c.findStage
	if _, werr := capacity.Write(o.OutDir, res); werr != nil {
		return exitError, errors.Join(err, werr)
	}
	if err != nil {
		return exitError, err
	}
	fmt.Fprintf(stdout, "%s\nreport: %s\n", res.Verdict(), filepath.Join(o.OutDir, capacity.MDFile))
	if res.MaxHeld == 0 {
		return exitBudget, nil
	}
	return exitOK, nil
}

func stageLine(st capacity.Stage) string {
	if st.Held {
		return fmt.Sprintf("held (p95 all %.2fms)", st.P95MS["all"])
	}
	return "failed: " + strings.Join(st.Failed, ", ")
}

// execute runs against -url, or starts the harness stack around the run.
func execute(ctx context.Context, c *config, log *slog.Logger, stdout io.Writer) (int, error) {
	o, td := c.opts, c.tierd
	if td.URL != "" {
		o.Target = td.URL
		if td.APIToken == "" {
			td.APIToken = os.Getenv("TIERD_API_TOKEN")
		}
		if td.AdminToken == "" {
			td.AdminToken = os.Getenv("TIERD_ADMIN_TOKEN")
		}
		switch {
		case c.pid != 0:
			s, err := monitor.NewProc(c.pid, "")
			if err != nil {
				return exitError, err
			}
			o.Sampler = s
		case c.container != "":
			cli, err := dockerenv.Client(ctx)
			if err != nil {
				return exitError, err
			}
			defer cli.Close()
			o.Sampler = monitor.NewDocker(cli, c.container)
		}
		if c.spec != nil {
			return c.driveSpec(ctx, o, td, stdout)
		}
		return c.driveTierd(ctx, o, td, log, stdout)
	}

	run, err := cleanup.NewRun()
	if err != nil {
		return exitError, err
	}
	wd, err := cleanup.StartWatchdog(run)
	if err != nil {
		return exitError, err
	}
	defer func() {
		if err := wd.Stop(); err != nil {
			log.Warn("watchdog", "err", err)
		}
	}()
	stack, err := tierd.Start(ctx, run, tierd.Options{Logger: log, Seed: td.Workload.Seed, SUT: c.sut, TierdDataTmpfs: c.dataTmpfs})
	if err != nil {
		return exitError, fmt.Errorf("start stack: %w", err)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
		defer cancel()
		if err := stack.Close(cctx); err != nil {
			log.Warn("stack teardown", "err", err)
		}
	}()
	if td.URL, err = stack.TierdURL(); err != nil {
		return exitError, err
	}
	if td.GRPCAddr, err = stack.TierdGRPC(); err != nil {
		return exitError, err
	}
	td.APIToken, td.AdminToken = stack.APIToken, stack.AdminToken
	dbg, err := stack.DebugURL()
	if err != nil {
		return exitError, err
	}
	if o.PprofURL == "" {
		o.PprofURL = dbg + "/debug/pprof"
	}
	o.Target = "harness stack (" + stack.Mode + ", run " + run.ID + ")"
	if stack.Mode == tierd.SUTContainer {
		cli, err := dockerenv.Client(ctx)
		if err != nil {
			return exitError, err
		}
		defer cli.Close()
		o.Sampler = monitor.NewDocker(cli, stack.TierdContainerID())
	} else {
		s, err := monitor.NewProc(os.Getpid(), "")
		if err != nil {
			return exitError, err
		}
		o.Sampler = s
		o.Target += "; CPU and RSS include the driver"
	}
	if c.s3Latency > 0 {
		f, err := stack.Net.Apply(ctx, netfault.Latency(c.s3Latency).Jitter(c.s3Jitter))
		if err != nil {
			return exitError, fmt.Errorf("apply S3 latency: %w", err)
		}
		defer func() {
			if err := f.Remove(context.WithoutCancel(ctx)); err != nil {
				log.Warn("remove S3 latency", "err", err)
			}
		}()
		o.Target += fmt.Sprintf("; S3 latency %v±%v", c.s3Latency, c.s3Jitter)
	}
	return c.driveTierd(ctx, o, td, log, stdout)
}

// driveSpec drives the -workload spec against the service at td.URL.
func (c *config) driveSpec(ctx context.Context, o runner.Options, td workload.SystemOptions, stdout io.Writer) (int, error) {
	sys, err := httpop.NewSystem(td.URL, *c.spec, httpop.Options{MaxConns: o.MaxInFlight, Timeout: o.Timeout})
	if err != nil {
		return exitError, err
	}
	defer sys.Close()
	o.System, o.Seed = sys, td.Workload.Seed
	if o.Name == "tierload" {
		o.Name = "tierload " + filepath.Base(c.workload)
	}
	return c.drive(ctx, o, stdout)
}

// driveTierd drives the tierd that td describes (its client is dialled
// here and closed after the run).
func (c *config) driveTierd(ctx context.Context, o runner.Options, td workload.SystemOptions, log *slog.Logger, stdout io.Writer) (int, error) {
	td.MaxInFlight, td.Timeout = o.MaxInFlight, o.Timeout
	sys, err := workload.NewSystem(td)
	if err != nil {
		return exitError, err
	}
	defer func() {
		if err := sys.Close(); err != nil {
			log.Warn("close tierd's client", "err", err)
		}
	}()
	o.System, o.Seed = sys, td.Workload.Seed
	return c.drive(ctx, o, stdout)
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

// Command bench measures the load driver's own cost against a trivial HTTP
// handler and compares it with vegeta on the same handler. Each side runs
// as a child process so its CPU time (user + system, from rusage) is its own.
//
//	go run ./load/bench compare -vegeta /tmp/vegeta/vegeta -rates 5000,10000,20000 -duration 10s
//
// Subcommands: server (the trivial handler), drive (one run of our driver),
// compare (orchestrates both tools at each rate and prints a table).
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/tierchaos/tierchaos/load"
	"github.com/tierchaos/tierchaos/load/httpop"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: bench server|drive|compare [flags]")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch os.Args[1] {
	case "server":
		err = serve(ctx, os.Args[2:])
	case "drive":
		err = drive(ctx, os.Args[2:])
	case "compare":
		err = compare(ctx, os.Args[2:])
	default:
		err = fmt.Errorf("unknown subcommand %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// serve runs the trivial handler and prints its address on stdout.
func serve(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("server", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:0", "listen address")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	fmt.Println(ln.Addr().String())
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok"))
	}), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// driveResult is what drive prints (one JSON line).
type driveResult struct {
	Sent      int64   `json:"sent"`
	OK        int64   `json:"ok"`
	Missed    int64   `json:"missed"`
	Late      int64   `json:"late"`
	Achieved  float64 `json:"achieved_rate"`
	P50       float64 `json:"p50_ms"`
	P99       float64 `json:"p99_ms"`
	LagP99    float64 `json:"start_lag_p99_ms"`
	PeakConns int     `json:"peak_in_flight"`
	// ServiceP50 is measured from the actual send, as vegeta measures.
	ServiceP50 float64          `json:"service_p50_ms"`
	Errors     map[string]int64 `json:"errors,omitempty"`
}

func drive(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("drive", flag.ContinueOnError)
	url := fs.String("url", "", "target URL")
	rate := fs.Float64("rate", 1000, "requests per second")
	dur := fs.Duration("duration", 10*time.Second, "run length")
	pacing := fs.String("pacing", "auto", "auto, coarse or fine")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the run to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	client := httpop.New(httpop.Options{})
	defer client.Close()
	res, err := load.Run(ctx, load.Config{
		Ops:      []load.Op{client.Op("get", 1, httpop.Request{URL: *url})},
		Rate:     *rate,
		Duration: *dur,
		Pacing:   load.Pacing(*pacing),
		Logger:   slog.New(slog.NewTextHandler(os.Stderr, nil)),
	})
	if err != nil {
		return err
	}
	o := res.Overall
	ms := func(d time.Duration) float64 { return float64(d) / 1e6 }
	return json.NewEncoder(os.Stdout).Encode(driveResult{
		Sent: o.Sent, OK: o.OK, Missed: o.Missed, Late: o.Late, Achieved: o.AchievedRate,
		P50: ms(o.Latency.P50), P99: ms(o.Latency.P99), LagP99: ms(o.StartLag.P99), PeakConns: res.PeakInFlight,
		ServiceP50: ms(o.Service.P50), Errors: o.Errors,
	})
}

// row is one tool at one rate.
type row struct {
	Tool        string  `json:"tool"`
	Rate        float64 `json:"target_rate"`
	Requests    int64   `json:"requests"`
	OK          int64   `json:"ok"`
	Achieved    float64 `json:"achieved_rate"`
	CPUSeconds  float64 `json:"cpu_seconds"`
	CPUPerReqUS float64 `json:"cpu_us_per_request"`
	P50         float64 `json:"p50_ms"`
	P99         float64 `json:"p99_ms"`
}

func compare(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("compare", flag.ContinueOnError)
	vegeta := fs.String("vegeta", "", "path to the vegeta binary (empty: ours only)")
	rates := fs.String("rates", "5000,10000,20000", "comma-separated target rates")
	dur := fs.Duration("duration", 10*time.Second, "length of each run")
	out := fs.String("out", "", "write the rows as JSON to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find own binary: %w", err)
	}
	srv := exec.CommandContext(ctx, self, "server")
	stdout, err := srv.StdoutPipe()
	if err != nil {
		return err
	}
	srv.Stderr = os.Stderr
	if err := srv.Start(); err != nil {
		return fmt.Errorf("start server: %w", err)
	}
	defer func() {
		_ = srv.Process.Signal(os.Interrupt)
		_ = srv.Wait()
	}()
	addr, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		return fmt.Errorf("read server address: %w", err)
	}
	url := "http://" + strings.TrimSpace(addr) + "/"

	tmp, err := os.MkdirTemp("", "bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	var rows []row
	for _, f := range strings.Split(*rates, ",") {
		r, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		if err != nil || r <= 0 {
			return fmt.Errorf("bad rate %q", f)
		}
		if *vegeta != "" {
			vr, err := runVegeta(ctx, *vegeta, url, r, *dur, tmp)
			if err != nil {
				return err
			}
			rows = append(rows, vr)
		}
		or, err := runOurs(ctx, self, url, r, *dur)
		if err != nil {
			return err
		}
		rows = append(rows, or)
	}
	fmt.Printf("| tool | target req/s | requests | achieved req/s | ok | CPU s | CPU µs/req | p50 ms | p99 ms |\n")
	fmt.Printf("|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range rows {
		fmt.Printf("| %s | %.0f | %d | %.0f | %d | %.2f | %.1f | %.2f | %.2f |\n",
			r.Tool, r.Rate, r.Requests, r.Achieved, r.OK, r.CPUSeconds, r.CPUPerReqUS, r.P50, r.P99)
	}
	if *out != "" {
		b, err := json.MarshalIndent(rows, "", "  ")
		if err != nil {
			return err
		}
		return os.WriteFile(*out, b, 0o644)
	}
	return nil
}

// cpuOf returns the user+system CPU seconds of a finished command.
func cpuOf(c *exec.Cmd) float64 {
	return (c.ProcessState.UserTime() + c.ProcessState.SystemTime()).Seconds()
}

func runOurs(ctx context.Context, self, url string, rate float64, dur time.Duration) (row, error) {
	c := exec.CommandContext(ctx, self, "drive", "-url", url, "-rate", fmt.Sprint(rate), "-duration", dur.String())
	c.Stderr = os.Stderr
	b, err := c.Output()
	if err != nil {
		return row{}, fmt.Errorf("drive at %v/s: %w", rate, err)
	}
	var d driveResult
	if err := json.Unmarshal(b, &d); err != nil {
		return row{}, fmt.Errorf("parse drive output: %w", err)
	}
	cpu := cpuOf(c)
	return row{Tool: "tierload", Rate: rate, Requests: d.Sent, OK: d.OK, Achieved: d.Achieved,
		CPUSeconds: cpu, CPUPerReqUS: perReq(cpu, d.Sent), P50: d.P50, P99: d.P99}, nil
}

// vegetaReport is the subset of `vegeta report -type=json` we use.
type vegetaReport struct {
	Requests  int64   `json:"requests"`
	Rate      float64 `json:"rate"`
	Success   float64 `json:"success"`
	Latencies struct {
		P50 int64 `json:"50th"`
		P99 int64 `json:"99th"`
	} `json:"latencies"`
}

func runVegeta(ctx context.Context, bin, url string, rate float64, dur time.Duration, tmp string) (row, error) {
	targets := filepath.Join(tmp, "targets.txt")
	if err := os.WriteFile(targets, []byte("GET "+url+"\n"), 0o644); err != nil {
		return row{}, err
	}
	results := filepath.Join(tmp, "results.bin")
	c := exec.CommandContext(ctx, bin, "attack", "-rate", fmt.Sprintf("%.0f/1s", rate),
		"-duration", dur.String(), "-targets", targets, "-output", results)
	c.Stderr = os.Stderr
	if err := c.Run(); err != nil {
		return row{}, fmt.Errorf("vegeta attack at %v/s: %w", rate, err)
	}
	cpu := cpuOf(c)
	rep := exec.CommandContext(ctx, bin, "report", "-type", "json", results)
	b, err := rep.Output()
	if err != nil {
		return row{}, fmt.Errorf("vegeta report: %w", err)
	}
	var v vegetaReport
	if err := json.Unmarshal(b, &v); err != nil {
		return row{}, fmt.Errorf("parse vegeta report: %w", err)
	}
	return row{Tool: "vegeta", Rate: rate, Requests: v.Requests, OK: int64(v.Success * float64(v.Requests)),
		Achieved: v.Rate, CPUSeconds: cpu, CPUPerReqUS: perReq(cpu, v.Requests),
		P50: float64(v.Latencies.P50) / 1e6, P99: float64(v.Latencies.P99) / 1e6}, nil
}

func perReq(cpu float64, n int64) float64 {
	if n == 0 {
		return 0
	}
	return cpu / float64(n) * 1e6
}

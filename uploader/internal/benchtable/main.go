// Command benchtable reads `go test -bench` output of the uploader's MinIO
// sweep on stdin and prints one summary table per target (medians over
// -count repeats) with the issue's
// targets checked: parallel 1 KiB uploads vs the bare minio-go ceiling and
// vs sequential, batched vs individual snapshots, and 16 MiB throughput vs
// the bare ceiling.
package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
)

// result is one benchmark line: its name's key=value parts and its metrics
// by unit.
type result struct {
	group   string // e.g. BenchmarkMinIOParallel
	keys    map[string]string
	metrics map[string]float64
}

func parse(r io.Reader) ([]result, error) {
	var out []result
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		name := f[0]
		if i := strings.LastIndexByte(name, '-'); i > 0 {
			if _, err := strconv.Atoi(name[i+1:]); err == nil {
				name = name[:i] // strip -GOMAXPROCS
			}
		}
		parts := strings.Split(name, "/")
		res := result{group: parts[0], keys: map[string]string{}, metrics: map[string]float64{}}
		for _, p := range parts[1:] {
			if k, v, ok := strings.Cut(p, "="); ok {
				res.keys[k] = v
			}
		}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			res.metrics[f[i+1]] = v
		}
		out = append(out, res)
	}
	return out, sc.Err()
}

// find returns the median metric of the results in group matching keys
// (several with go test -count).
func find(rs []result, group, unit string, keys map[string]string) (float64, bool) {
	var vals []float64
	for _, r := range rs {
		if r.group != group {
			continue
		}
		match := true
		for k, v := range keys {
			if r.keys[k] != v {
				match = false
				break
			}
		}
		if v, ok := r.metrics[unit]; match && ok {
			vals = append(vals, v)
		}
	}
	if len(vals) == 0 {
		return 0, false
	}
	slices.Sort(vals)
	if len(vals)%2 == 1 {
		return vals[len(vals)/2], true
	}
	return (vals[len(vals)/2-1] + vals[len(vals)/2]) / 2, true
}

func cell(v float64, ok bool) string {
	if !ok {
		return "-"
	}
	return strconv.FormatFloat(v, 'f', 0, 64)
}

func verdict(ok bool) string {
	if ok {
		return "MET"
	}
	return "NOT MET"
}

func main() {
	rs, err := parse(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchtable:", err)
		os.Exit(1)
	}
	var targets []string
	for _, r := range rs {
		if t := r.keys["target"]; t != "" && !slices.Contains(targets, t) {
			targets = append(targets, t)
		}
	}
	if len(targets) == 0 {
		fmt.Fprintln(os.Stderr, "benchtable: no MinIO benchmark results on stdin")
		os.Exit(1)
	}
	concs := []string{"1", "4", "8", "16", "32"}
	for _, t := range targets {
		fmt.Printf("## target=%s\n\n", t)

		fmt.Println("Batch, 1 KiB snapshots (snapshots/s)")
		fmt.Println("| n | individual | batch10 | batch100 | batch100 / individual |")
		fmt.Println("|---|---|---|---|---|")
		bestBatchRatio := 0.0
		for _, n := range []string{"10", "50", "100", "500"} {
			k := func(mode string) map[string]string { return map[string]string{"target": t, "mode": mode, "n": n} }
			ind, iok := find(rs, "BenchmarkMinIOBatch", "snap/s", k("individual"))
			b10, b10ok := find(rs, "BenchmarkMinIOBatch", "snap/s", k("batch10"))
			b100, b100ok := find(rs, "BenchmarkMinIOBatch", "snap/s", k("batch100"))
			ratio := "-"
			if iok && b100ok && ind > 0 {
				ratio = fmt.Sprintf("%.1fx", b100/ind)
				bestBatchRatio = max(bestBatchRatio, b100/ind)
			}
			fmt.Printf("| %s | %s | %s | %s | %s |\n", n, cell(ind, iok), cell(b10, b10ok), cell(b100, b100ok), ratio)
		}
		fmt.Println()

		fmt.Println("Parallel, 1 KiB objects (objects/s); bare = plain minio-go PUT loop")
		fmt.Printf("| n | sequential |")
		for _, c := range concs {
			fmt.Printf(" c=%s |", c)
		}
		for _, c := range concs {
			fmt.Printf(" bare c=%s |", c)
		}
		fmt.Println(" best / bare best | best / sequential |")
		fmt.Println("|---|---|" + strings.Repeat("---|", 2*len(concs)+2))
		var lastPar, lastSeq float64
		for _, n := range []string{"100", "500", "1000"} {
			seq, sok := find(rs, "BenchmarkMinIOParallel", "obj/s", map[string]string{"target": t, "mode": "sequential", "n": n})
			fmt.Printf("| %s | %s |", n, cell(seq, sok))
			best, bare := 0.0, 0.0
			for _, c := range concs {
				v, ok := find(rs, "BenchmarkMinIOParallel", "obj/s", map[string]string{"target": t, "mode": "parallel", "n": n, "c": c})
				fmt.Printf(" %s |", cell(v, ok))
				best = max(best, v)
			}
			for _, c := range concs {
				v, ok := find(rs, "BenchmarkMinIOParallel", "obj/s", map[string]string{"target": t, "mode": "bare", "n": n, "c": c})
				fmt.Printf(" %s |", cell(v, ok))
				bare = max(bare, v)
			}
			r1, r2 := "-", "-"
			if bare > 0 {
				r1 = fmt.Sprintf("%.0f%%", 100*best/bare)
			}
			if sok && seq > 0 {
				r2 = fmt.Sprintf("%.1fx", best/seq)
			}
			fmt.Printf(" %s | %s |\n", r1, r2)
			if bare > 0 && sok {
				lastPar, lastSeq = best/bare, best/seq
			}
		}
		fmt.Println()

		fmt.Println("Object sizes (MB/s, concurrency 8)")
		fmt.Println("| size | uploader | bare | uploader / bare |")
		fmt.Println("|---|---|---|---|")
		var big float64
		for _, size := range []string{"1KiB", "64KiB", "1MiB", "16MiB"} {
			u, uok := find(rs, "BenchmarkMinIOSizes", "MB/s", map[string]string{"target": t, "mode": "uploader", "size": size})
			b, bok := find(rs, "BenchmarkMinIOSizes", "MB/s", map[string]string{"target": t, "mode": "bare", "size": size})
			r := "-"
			if uok && bok && b > 0 {
				r = fmt.Sprintf("%.0f%%", 100*u/b)
				if size == "16MiB" {
					big = u / b
				}
			}
			fmt.Printf("| %s | %.1f | %.1f | %s |\n", size, u, b, r)
		}
		fmt.Println()
		lu, luok := find(rs, "BenchmarkMinIOLarge", "MB/s", map[string]string{"target": t, "mode": "uploader"})
		lb, lbok := find(rs, "BenchmarkMinIOLarge", "MB/s", map[string]string{"target": t, "mode": "bare"})
		if luok || lbok {
			fmt.Println("One 64 MiB object at a time (MB/s): uploader = 8 MiB parts, 8 in flight; bare = minio-go PutObject")
			fmt.Printf("| uploader | bare |\n|---|---|\n| %.1f | %.1f |\n\n", lu, lb)
		}
		fmt.Println("Targets (largest n):")
		fmt.Printf("- parallel >= 90%% of bare ceiling: %.0f%% %s\n", 100*lastPar, verdict(lastPar >= 0.9))
		fmt.Printf("- parallel >= 3x sequential: %.1fx %s\n", lastSeq, verdict(lastSeq >= 3))
		fmt.Printf("- batched >= 20x individual: %.1fx %s\n", bestBatchRatio, verdict(bestBatchRatio >= 20))
		fmt.Printf("- 16 MiB >= 80%% of bare MB/s: %.0f%% %s\n\n", 100*big, verdict(big >= 0.8))
	}
}

package uploader

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"testing"
	"time"
)

// The sweeps of issue 3, run against any ObjectStore: the MemStore here,
// MinIO (direct and through Toxiproxy) in bench_minio_test.go. Each reports
// its own rate metric besides ns/op, so that benchstat can compare runs:
//   snap/s   snapshots made durable per second (batch sweep)
//   obj/s    objects uploaded per second (parallel sweep)
//   MB/s     from SetBytes (object-size sweep)

var (
	benchBatchCounts   = []int{10, 50, 100, 500}
	benchUploadCounts  = []int{100, 500, 1000}
	benchConcurrencies = []int{1, 4, 8, 16, 32}
	benchObjectSizes   = []int{1 << 10, 64 << 10, 1 << 20, 16 << 20}
)

func benchParallelConfig(conc int) ParallelConfig {
	c := DefaultParallelConfig()
	c.Concurrency = conc
	c.BackoffBase = 5 * time.Millisecond
	c.BackoffCap = 200 * time.Millisecond
	return c
}

func benchQuiet() Option { return WithLogger(slog.New(slog.DiscardHandler)) }

func reportRate(b *testing.B, n int, unit string) {
	b.Helper()
	if s := b.Elapsed().Seconds(); s > 0 {
		b.ReportMetric(float64(n*b.N)/s, unit)
	}
}

// benchBatch compares one PUT per snapshot (sequential, the seed's way)
// with the BatchUploader packing them (batch sizes 10, the seed's default,
// and 100).
func benchBatch(b *testing.B, store ObjectStore, prefix string) {
	data := bytes.Repeat([]byte{0x5a}, 1<<10)
	for _, n := range benchBatchCounts {
		b.Run(fmt.Sprintf("mode=individual/n=%d", n), func(b *testing.B) {
			ctx := context.Background()
			for b.Loop() {
				for i := range n {
					key := prefix + "/ind/snap-" + strconv.Itoa(i)
					if _, err := store.PutObject(ctx, key, bytes.NewReader(data), int64(len(data)), PutOptions{}); err != nil {
						b.Fatal(err)
					}
				}
			}
			reportRate(b, n, "snap/s")
		})
		for _, size := range []int{10, 100} {
			b.Run(fmt.Sprintf("mode=batch%d/n=%d", size, n), func(b *testing.B) {
				up, err := NewParallelUploader(store, benchParallelConfig(8), benchQuiet())
				if err != nil {
					b.Fatal(err)
				}
				cfg := DefaultBatchConfig()
				cfg.Size = size
				bu, err := NewBatchUploader(up, cfg, benchQuiet())
				if err != nil {
					b.Fatal(err)
				}
				defer func() { _ = bu.Close(context.Background()) }()
				ctx := context.Background()
				ps := make([]*Pending, n)
				for b.Loop() {
					for i := range n {
						if ps[i], err = bu.Add(prefix+"/bat/snap-"+strconv.Itoa(i), data); err != nil {
							b.Fatal(err)
						}
					}
					if err := bu.Flush(ctx); err != nil {
						b.Fatal(err)
					}
					for _, p := range ps {
						if _, err := p.Wait(ctx); err != nil {
							b.Fatal(err)
						}
					}
				}
				reportRate(b, n, "snap/s")
			})
		}
	}
}

// bareFunc, when given to benchParallel or benchSizes, runs the bare
// minio-go comparison for the same keys, data and concurrency right after
// the uploader's run, so that both see the same machine load.
type bareFunc func(b *testing.B, keys []string, data []byte, conc int)

// benchParallel compares a sequential PUT loop with the ParallelUploader
// at several concurrencies, 1 KiB objects.
func benchParallel(b *testing.B, store ObjectStore, prefix string, counts []int, bare bareFunc) {
	data := bytes.Repeat([]byte{0xa5}, 1<<10)
	for _, n := range counts {
		keys := make([]string, n)
		for i := range keys {
			keys[i] = prefix + "/par/obj-" + strconv.Itoa(i)
		}
		b.Run(fmt.Sprintf("mode=sequential/n=%d", n), func(b *testing.B) {
			ctx := context.Background()
			for b.Loop() {
				for _, k := range keys {
					if _, err := store.PutObject(ctx, k, bytes.NewReader(data), int64(len(data)), PutOptions{}); err != nil {
						b.Fatal(err)
					}
				}
			}
			reportRate(b, n, "obj/s")
		})
		for _, conc := range benchConcurrencies {
			b.Run(fmt.Sprintf("mode=parallel/n=%d/c=%d", n, conc), func(b *testing.B) {
				up, err := NewParallelUploader(store, benchParallelConfig(conc), benchQuiet())
				if err != nil {
					b.Fatal(err)
				}
				items := make([]Item, n)
				for i, k := range keys {
					items[i] = BytesItem(k, data)
				}
				ctx := context.Background()
				for b.Loop() {
					for _, r := range up.UploadAll(ctx, items) {
						if r.Err != nil {
							b.Fatal(r.Err)
						}
					}
				}
				reportRate(b, n, "obj/s")
			})
			if bare != nil {
				b.Run(fmt.Sprintf("mode=bare/n=%d/c=%d", n, conc), func(b *testing.B) {
					bk := make([]string, n)
					for i := range bk {
						bk[i] = prefix + "/bare/obj-" + strconv.Itoa(i)
					}
					for b.Loop() {
						bare(b, bk, data, conc)
					}
					reportRate(b, n, "obj/s")
				})
			}
		}
	}
}

// benchSizes uploads objects of each size with the ParallelUploader (with
// the default 16 MiB multipart threshold, all of them with one PUT each).
func benchSizes(b *testing.B, store ObjectStore, prefix string, conc int, bare bareFunc) {
	for _, size := range benchObjectSizes {
		data := bytes.Repeat([]byte{0x3c}, size)
		perIter := max(1, min(64, (64<<20)/size)) // about 64 MiB per iteration, at least one object
		b.Run(fmt.Sprintf("mode=uploader/size=%s/c=%d", sizeName(size), conc), func(b *testing.B) {
			up, err := NewParallelUploader(store, benchParallelConfig(conc), benchQuiet())
			if err != nil {
				b.Fatal(err)
			}
			items := make([]Item, perIter)
			for i := range items {
				items[i] = BytesItem(fmt.Sprintf("%s/size/%d-%d", prefix, size, i), data)
			}
			b.SetBytes(int64(size * perIter))
			ctx := context.Background()
			for b.Loop() {
				for _, r := range up.UploadAll(ctx, items) {
					if r.Err != nil {
						b.Fatal(r.Err)
					}
				}
			}
			reportRate(b, perIter, "obj/s")
		})
		if bare != nil {
			b.Run(fmt.Sprintf("mode=bare/size=%s/c=%d", sizeName(size), conc), func(b *testing.B) {
				keys := make([]string, perIter)
				for i := range keys {
					keys[i] = fmt.Sprintf("%s/baresize/%d-%d", prefix, size, i)
				}
				b.SetBytes(int64(size * perIter))
				for b.Loop() {
					bare(b, keys, data, conc)
				}
				reportRate(b, perIter, "obj/s")
			})
		}
	}
}

func sizeName(n int) string {
	switch {
	case n >= 1<<20:
		return strconv.Itoa(n>>20) + "MiB"
	case n >= 1<<10:
		return strconv.Itoa(n>>10) + "KiB"
	}
	return strconv.Itoa(n) + "B"
}

// BenchmarkMemBatch: individual vs batched 1 KiB snapshots, in memory.
func BenchmarkMemBatch(b *testing.B) { benchBatch(b, NewMemStore(), "mem") }

// BenchmarkMemParallel: sequential vs parallel 1 KiB uploads, in memory.
// The MemStore answers in well under a microsecond, so this measures the
// uploader's own overhead, not I/O overlap; see BenchmarkMemLatencyParallel.
func BenchmarkMemParallel(b *testing.B) {
	benchParallel(b, NewMemStore(), "mem", benchUploadCounts, nil)
}

// BenchmarkMemLatencyParallel: the same with 1 ms simulated latency per
// call, where concurrency overlaps waiting as it does against a server.
func BenchmarkMemLatencyParallel(b *testing.B) {
	benchParallel(b, NewMemStore(WithLatency(Latency{Base: time.Millisecond})), "memlat", []int{100}, nil)
}

// BenchmarkMemSizes: object sizes 1 KiB to 16 MiB, in memory.
func BenchmarkMemSizes(b *testing.B) { benchSizes(b, NewMemStore(), "mem", 8, nil) }

// BenchmarkMemLatencyBatch: individual vs batched with 1 ms simulated
// latency per call, where saving requests saves waiting.
func BenchmarkMemLatencyBatch(b *testing.B) {
	benchBatch(b, NewMemStore(WithLatency(Latency{Base: time.Millisecond})), "memlat")
}

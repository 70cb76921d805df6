package uploader

import (
	"bytes"
	"context"
	"os"
	"sync"
	"testing"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// Environment of the MinIO benchmarks and the e2e test. bench-minio.sh sets
// them after starting MinIO (data on tmpfs) and Toxiproxy on loopback.
const (
	// EnvS3Endpoint is MinIO's host:port, reached directly.
	envS3Endpoint = "TIERCHAOS_S3_ENDPOINT"
	// EnvS3ProxyEndpoint is host:port of a Toxiproxy proxy in front of it.
	envS3ProxyEndpoint = "TIERCHAOS_S3_PROXY_ENDPOINT"
	envS3AccessKey     = "TIERCHAOS_S3_ACCESS_KEY"
	envS3SecretKey     = "TIERCHAOS_S3_SECRET_KEY"
	envS3Bucket        = "TIERCHAOS_S3_BUCKET"
)

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// s3Target is one way to reach MinIO.
type s3Target struct {
	name     string
	endpoint string
}

// s3Targets returns the configured targets. Without any, the caller is
// skipped, except in CI (CI set), where a missing endpoint is a failure.
func s3Targets(tb testing.TB) []s3Target {
	tb.Helper()
	var ts []s3Target
	if e := os.Getenv(envS3Endpoint); e != "" {
		ts = append(ts, s3Target{"direct", e})
	}
	if e := os.Getenv(envS3ProxyEndpoint); e != "" {
		ts = append(ts, s3Target{"toxiproxy", e})
	}
	if len(ts) == 0 {
		if os.Getenv("CI") != "" {
			tb.Fatalf("%s / %s are not set; in CI the MinIO stack must be provided (see uploader/bench-minio.sh)", envS3Endpoint, envS3ProxyEndpoint)
		}
		tb.Skipf("set %s and/or %s (uploader/bench-minio.sh does) to run against MinIO", envS3Endpoint, envS3ProxyEndpoint)
	}
	return ts
}

func s3Creds() (string, string, string) {
	return envOr(envS3AccessKey, "tierchaos"), envOr(envS3SecretKey, "tierchaos-secret-key"), envOr(envS3Bucket, "tierchaos-bench")
}

// newBenchMinIO returns a MinIOStore on endpoint with a pool sized for the
// largest benchmark concurrency, and makes sure the bucket exists.
func newBenchMinIO(tb testing.TB, endpoint string) *MinIOStore {
	tb.Helper()
	return newMinIOWithPool(tb, endpoint, 64)
}

// newMinIOWithPool is newBenchMinIO with a given number of idle connections.
func newMinIOWithPool(tb testing.TB, endpoint string, idle int) *MinIOStore {
	tb.Helper()
	ak, sk, bucket := s3Creds()
	s, err := NewMinIOStore(MinIOConfig{Endpoint: endpoint, AccessKey: ak, SecretKey: sk, Bucket: bucket,
		Pool: PoolConfig{MaxIdleConns: idle}})
	if err != nil {
		tb.Fatal(err)
	}
	if err := s.EnsureBucket(context.Background()); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	return s
}

// newBareClient returns a plain minio-go client with its default transport
// and settings: the ceiling the uploaders are measured against.
func newBareClient(tb testing.TB, endpoint string) *minio.Client {
	tb.Helper()
	ak, sk, _ := s3Creds()
	// minio-go's own default transport, made here only so that its idle
	// connections can be closed at the end.
	tr, err := minio.DefaultTransport(false)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(tr.CloseIdleConnections)
	c, err := minio.New(endpoint, &minio.Options{Creds: credentials.NewStaticV4(ak, sk, ""), Region: "us-east-1", Transport: tr})
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// bareLoop PUTs keys with conc goroutines of plain minio-go calls.
func bareLoop(b *testing.B, c *minio.Client, bucket string, keys []string, data []byte, conc int) {
	ctx := context.Background()
	var wg sync.WaitGroup
	next := make(chan string)
	errs := make(chan error, conc)
	for range conc {
		wg.Go(func() {
			for k := range next {
				if _, err := c.PutObject(ctx, bucket, k, bytes.NewReader(data), int64(len(data)),
					minio.PutObjectOptions{}); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	for _, k := range keys {
		select {
		case next <- k:
		case err := <-errs:
			close(next)
			wg.Wait()
			b.Fatal(err)
		}
	}
	close(next)
	wg.Wait()
	select {
	case err := <-errs:
		b.Fatal(err)
	default:
	}
}

// BenchmarkMinIOBatch: individual vs batched 1 KiB snapshots on MinIO.
func BenchmarkMinIOBatch(b *testing.B) {
	for _, t := range s3Targets(b) {
		b.Run("target="+t.name, func(b *testing.B) { benchBatch(b, newBenchMinIO(b, t.endpoint), "bench") })
	}
}

// BenchmarkMinIOParallel: sequential vs parallel 1 KiB uploads on MinIO,
// each concurrency followed by the bare minio-go loop at the same
// concurrency (the ceiling).
func BenchmarkMinIOParallel(b *testing.B) {
	for _, t := range s3Targets(b) {
		b.Run("target="+t.name, func(b *testing.B) {
			benchParallel(b, newBenchMinIO(b, t.endpoint), "bench", benchUploadCounts, bareRunner(b, t.endpoint))
		})
	}
}

// BenchmarkMinIOSizes: object sizes 1 KiB to 16 MiB through the
// ParallelUploader and through bare minio-go at the same concurrency; both
// send objects up to 16 MiB with one PUT. BenchmarkMinIOLarge covers
// parallel parts.
func BenchmarkMinIOSizes(b *testing.B) {
	for _, t := range s3Targets(b) {
		b.Run("target="+t.name, func(b *testing.B) {
			benchSizes(b, newBenchMinIO(b, t.endpoint), "bench", 8, bareRunner(b, t.endpoint))
		})
	}
}

// bareRunner returns a bareFunc doing plain minio-go PUTs on endpoint.
func bareRunner(b *testing.B, endpoint string) bareFunc {
	_, _, bucket := s3Creds()
	c := newBareClient(b, endpoint)
	return func(b *testing.B, keys []string, data []byte, conc int) {
		bareLoop(b, c, bucket, keys, data, conc)
	}
}

// BenchmarkMinIOLarge: one 64 MiB object at a time, the case parallel parts
// are for: the ParallelUploader (8 MiB parts, 8 in flight) vs bare
// minio-go's PutObject (its own multipart upload, 16 MiB parts).
func BenchmarkMinIOLarge(b *testing.B) {
	const size = 64 << 20
	data := bytes.Repeat([]byte{0x7e}, size)
	for _, t := range s3Targets(b) {
		b.Run("target="+t.name, func(b *testing.B) {
			store := newBenchMinIO(b, t.endpoint)
			bare := bareRunner(b, t.endpoint)
			b.Run("mode=uploader/size=64MiB/c=1", func(b *testing.B) {
				cfg := benchParallelConfig(8)
				cfg.MultipartThreshold = cfg.PartSize
				up, err := NewParallelUploader(store, cfg, benchQuiet())
				if err != nil {
					b.Fatal(err)
				}
				b.SetBytes(size)
				for b.Loop() {
					if r := up.Upload(context.Background(), BytesItem("bench/large/obj", data)); r.Err != nil {
						b.Fatal(r.Err)
					}
				}
			})
			b.Run("mode=bare/size=64MiB/c=1", func(b *testing.B) {
				b.SetBytes(size)
				for b.Loop() {
					bare(b, []string{"bench/large/bare"}, data, 1)
				}
			})
		})
	}
}

//go:build e2e

package uploader

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2/client"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/zeebo/xxh3"
)

const (
	envToxiproxyURL   = "TIERCHAOS_TOXIPROXY_URL"
	envToxiproxyProxy = "TIERCHAOS_TOXIPROXY_PROXY"
)

// TestE2EUploadsSurviveResetPeer uploads 1000 objects through Toxiproxy
// while a reset_peer toxic with toxicity 0.3 is active (Toxiproxy draws the
// toxicity once per connection: about 30% of new connections are reset on
// their first bytes), then reads every object back directly from MinIO and
// checks its content against its XXH3 checksum. Four of the objects are
// multipart (12 MiB, two parts), and no incomplete upload may remain.
func TestE2EUploadsSurviveResetPeer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	directStore, proxied := resetPeerStack(t)

	up, err := NewParallelUploader(proxied, e2eParallelConfig())
	require.NoError(t, err)

	prefix := fmt.Sprintf("e2e/reset-peer/%d", time.Now().UnixNano())
	const total, large = 1000, 4
	items := make([]Item, total)
	want := make([]uint64, total)
	for i := range items {
		size := 1<<10 + (i*7919)%(63<<10)
		if i%(total/large) == 0 {
			size = 12 << 20
		}
		data := payload(i, size)
		want[i] = xxh3.Hash(data)
		items[i] = BytesItem(prefix+"/obj-"+strconv.Itoa(i), data)
		items[i].Opts.Metadata = map[string]string{"xxh3": strconv.FormatUint(want[i], 16)}
	}

	start := time.Now()
	res := up.UploadAll(ctx, items)
	elapsed := time.Since(start)
	attempts, multipart := 0, 0
	for i, r := range res {
		require.NoError(t, r.Err, "item %d (%s)", i, r.Key)
		attempts += r.Attempts
		if r.Multipart {
			multipart++
		}
	}
	assert.Equal(t, large, multipart)
	t.Logf("%d uploads in %s through reset_peer(0.3): %d requests", total, elapsed.Round(time.Millisecond), attempts)
	// 1012 requests without faults (996 PUTs, 4 x initiate+2 parts+complete);
	// each reset costs one more. How many resets 0.3 gives depends on how
	// many fresh connections the pool opens (Toxiproxy draws once per
	// connection, and kept-alive connections are reused): 34 to ~150 were
	// seen. The test requires that the toxic forced retries, not how many.
	assert.Greater(t, attempts, 1012, "the toxic must have forced retries, or it was not active")

	for i, it := range items {
		rc, info, err := directStore.GetObject(ctx, it.Key)
		require.NoError(t, err, it.Key)
		data, err := io.ReadAll(rc)
		require.NoError(t, rc.Close())
		require.NoError(t, err, it.Key)
		require.Equal(t, it.Size, int64(len(data)), it.Key)
		require.Equal(t, want[i], xxh3.Hash(data), "content of %s", it.Key)
		require.Equal(t, strconv.FormatUint(want[i], 16), info.Metadata["xxh3"], it.Key)
	}
	ups, err := directStore.ListMultipartUploads(ctx, prefix)
	require.NoError(t, err)
	assert.Empty(t, ups, "no incomplete multipart upload left")
}

// resetPeerStack returns a store reaching MinIO directly and one reaching
// it through Toxiproxy with a reset_peer toxic (upstream, timeout 0,
// toxicity 0.3) that is removed at the end of the test.
func resetPeerStack(t *testing.T) (direct, proxied *MinIOStore) {
	t.Helper()
	proxyEndpoint := os.Getenv(envS3ProxyEndpoint)
	directEndpoint := os.Getenv(envS3Endpoint)
	toxiURL := os.Getenv(envToxiproxyURL)
	if proxyEndpoint == "" || directEndpoint == "" || toxiURL == "" {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s, %s and %s must be set in CI (uploader/bench-minio.sh e2e)", envS3Endpoint, envS3ProxyEndpoint, envToxiproxyURL)
		}
		t.Skipf("set %s, %s and %s (uploader/bench-minio.sh e2e does)", envS3Endpoint, envS3ProxyEndpoint, envToxiproxyURL)
	}
	direct = newBenchMinIO(t, directEndpoint)
	// Two idle connections for sixteen workers: most connections close
	// after one request, so the run dials about as many connections as it
	// makes requests, and each new connection draws the toxicity again.
	proxied = newMinIOWithPool(t, proxyEndpoint, 2)

	proxy, err := toxiproxy.NewClient(toxiURL).Proxy(envOr(envToxiproxyProxy, "s3"))
	require.NoError(t, err)
	_, err = proxy.AddToxic("e2e_reset_peer", "reset_peer", "upstream", 0.3, toxiproxy.Attributes{"timeout": 0})
	require.NoError(t, err)
	t.Cleanup(func() {
		assert.NoError(t, proxy.RemoveToxic("e2e_reset_peer"))
		// The Toxiproxy client uses http.DefaultTransport; let goleak
		// see its connections gone.
		http.DefaultTransport.(*http.Transport).CloseIdleConnections()
	})
	return direct, proxied
}

func e2eParallelConfig() ParallelConfig {
	cfg := DefaultParallelConfig()
	cfg.Concurrency = 16
	cfg.MaxRetries = 12 // 0.3^13: a request failing 13 times in a row is ~1.6e-7
	cfg.BackoffBase = 5 * time.Millisecond
	cfg.BackoffCap = 250 * time.Millisecond
	cfg.RetryBudgetRatio = 1
	cfg.RetryBudgetMin = 100
	cfg.PartSize = 6 << 20
	cfg.MultipartThreshold = 6 << 20
	return cfg
}

// TestE2EBatchSurvivesResetPeer puts 1000 1 KiB snapshots over 10 prefixes
// through the BatchUploader (packs of 10, 100 PUTs) under the same
// reset_peer toxic;
// every member must be acknowledged and then read back intact, by ranged
// GET directly from MinIO.
func TestE2EBatchSurvivesResetPeer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	directStore, proxied := resetPeerStack(t)
	var retries atomic.Int64
	up, err := NewParallelUploader(proxied, e2eParallelConfig(), WithRetryHook(func(RetryEvent) { retries.Add(1) }))
	require.NoError(t, err)
	bcfg := DefaultBatchConfig()
	bcfg.Size = 10
	b, err := NewBatchUploader(up, bcfg)
	require.NoError(t, err)

	prefix := fmt.Sprintf("e2e/batch/%d", time.Now().UnixNano())
	const total = 1000
	pend := make([]*Pending, total)
	for i := range pend {
		pend[i], err = b.Add(fmt.Sprintf("%s/p%d/snap-%04d", prefix, i%10, i), payload(i, 1024))
		require.NoError(t, err)
	}
	require.NoError(t, b.Close(ctx))
	assert.Equal(t, BatchStats{Batches: total / 10, Members: total, Bytes: b.Stats().Bytes}, b.Stats())
	t.Logf("%d snapshots in %d packs through reset_peer(0.3): %d retries", total, total/10, retries.Load())
	// With 100 PUTs on mostly fresh connections, no reset at all has a
	// probability of about 0.7^100.
	assert.Positive(t, retries.Load(), "the toxic must have forced retries, or it was not active")
	for i, p := range pend {
		loc, err := p.Wait(ctx)
		require.NoError(t, err, p.Key())
		got, err := ReadMember(ctx, directStore, loc)
		require.NoError(t, err, p.Key())
		require.Equal(t, payload(i, 1024), got, p.Key())
	}
}

// TestE2EMinIOStoreContract runs the ObjectStore contract that the MemStore
// passes in the unit tests against MinIO itself.
func TestE2EMinIOStoreContract(t *testing.T) {
	endpoint := os.Getenv(envS3Endpoint)
	if endpoint == "" {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s must be set in CI (uploader/bench-minio.sh e2e)", envS3Endpoint)
		}
		t.Skipf("set %s (uploader/bench-minio.sh e2e does)", envS3Endpoint)
	}
	storeContract(t, newBenchMinIO(t, endpoint), fmt.Sprintf("e2e/contract/%d", time.Now().UnixNano()))
}

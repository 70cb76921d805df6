//go:build e2e

package quota

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tierchaos/tierchaos/harness/tierd"
	"github.com/tierchaos/tierchaos/harness/tierd/fixture"
	"github.com/tierchaos/tierchaos/scenarios/quota/internal/datadir"
	"github.com/tierchaos/tierchaos/system/api"
	"github.com/tierchaos/tierchaos/system/client"
)

// Quota variables of tierd (system/config).
const (
	envHotBytes    = "TIERD_QUOTA_HOT_BYTES"
	envWarmBytes   = "TIERD_QUOTA_WARM_BYTES"
	envCollections = "TIERD_QUOTA_COLLECTIONS"
)

// setQuotas restarts tierd on the same data with the given quota
// variables (the others unset) and restores the package's configuration
// when t ends.
func setQuotas(ctx context.Context, t *testing.T, env map[string]string) {
	t.Helper()
	all := map[string]string{envHotBytes: "", envWarmBytes: "", envCollections: ""}
	for k, v := range env {
		all[k] = v
	}
	require.NoError(t, stack.ReconfigureTierd(ctx, all), "restart tierd with quotas %v", env)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := stack.ReconfigureTierd(ctx, map[string]string{envHotBytes: "", envWarmBytes: "", envCollections: ""}); err != nil {
			t.Errorf("restore tierd's quotas: %v", err)
		}
	})
	u := usage(ctx, t)
	for k, v := range env {
		var got int64
		switch k {
		case envHotBytes:
			got = u.HotBytesQuota
		case envWarmBytes:
			got = u.WarmBytesQuota
		case envCollections:
			got = int64(u.CollectionsQuota)
		}
		require.Equal(t, v, itoa(got), "tierd reports quota %s", k)
	}
}

// owned deletes the collections a case made when the case ends, so that
// the next case starts with no collection counting against its quotas.
type owned struct {
	mu    sync.Mutex
	names []string
}

func newOwned(t *testing.T) *owned {
	o := &owned{}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		o.mu.Lock()
		defer o.mu.Unlock()
		for _, n := range o.names {
			if err := stack.Tierd.DeleteCollection(ctx, n); err != nil && client.CodeOf(err) != api.CodeNotFound {
				t.Errorf("delete %s after the case: %v", n, err)
			}
		}
	})
	return o
}

func (o *owned) add(names ...string) {
	o.mu.Lock()
	o.names = append(o.names, names...)
	o.mu.Unlock()
}

func usage(ctx context.Context, t *testing.T) api.Usage {
	t.Helper()
	u, err := stack.Tierd.Usage(ctx)
	require.NoError(t, err, "usage")
	return u
}

// requireEmptyStore fails the case when an earlier one left collections:
// the quotas below are computed for a store holding only this case's.
func requireEmptyStore(ctx context.Context, t *testing.T) {
	t.Helper()
	u := usage(ctx, t)
	require.Zero(t, u.Collections, "collections left by an earlier case: %+v", u)
	require.Zero(t, u.HotBytes, "hot bytes left by an earlier case")
	require.Zero(t, u.WarmBytes, "warm bytes left by an earlier case")
}

// requireRejected requires err to be tierd's quota_exceeded naming quota,
// as the case's API carries it (HTTP 429, or gRPC ResourceExhausted with
// an ErrorInfo).
func requireRejected(t *testing.T, tc *tierd.Case, err error, quota string, what string) {
	t.Helper()
	require.Error(t, err, "%s must be refused by quota %s", what, quota)
	require.Equal(t, api.CodeQuotaExceeded, client.CodeOf(err), "%s: error %v", what, err)
	tc.RequireWireError(t, err, api.CodeQuotaExceeded)
	require.ErrorContains(t, err, quota, "%s: the message names the quota", what)
}

// requireDiskMatchesUsage reads tierd's data directory and its manifest
// and requires: no temporary or partial file; every local Parquet file is
// the data of a collection in the manifest and every local data file of
// the manifest exists with its recorded size; and the warm usage tierd
// reports equals the bytes of those files. It returns the listing.
func requireDiskMatchesUsage(ctx context.Context, t *testing.T) datadir.Listing {
	t.Helper()
	l, err := datadir.List(ctx, stack)
	require.NoError(t, err)
	require.Empty(t, l.Partial(), "partial or temporary files in tierd's data directory")
	m, err := datadir.Manifest(ctx, stack)
	require.NoError(t, err)
	want := map[string]int64{}
	for name, e := range m.Collections {
		if e.Data != nil && e.Data.File != "" {
			want[e.Data.File] = e.Data.Size
			require.NotEmpty(t, e.Data.File, "collection %s", name)
		}
	}
	require.Equal(t, want, l.Parquet(), "local Parquet files = the manifest's local data files, with their sizes")
	u := usage(ctx, t)
	require.Equal(t, l.ParquetBytes(), u.WarmBytes, "warm usage tierd reports = bytes of its Parquet files on disk")
	return l
}

// fileOf returns the local data file of a collection per the manifest
// ("" when it has none).
func fileOf(ctx context.Context, t *testing.T, name string) string {
	t.Helper()
	m, err := datadir.Manifest(ctx, stack)
	require.NoError(t, err)
	e := m.Collections[name]
	require.NotNil(t, e, "collection %s in the manifest", name)
	if e.Data == nil {
		return ""
	}
	return e.Data.File
}

// requireNoObjects requires that MinIO holds nothing of the collections.
func requireNoObjects(ctx context.Context, t *testing.T, names ...string) {
	t.Helper()
	for _, n := range names {
		require.Empty(t, fixture.Objects(ctx, t, stack.S3, tierd.Bucket, "", n), "objects of %s in MinIO", n)
		require.Empty(t, fixture.IncompleteUploads(ctx, t, stack.S3, tierd.Bucket, "", n), "incomplete uploads of %s", n)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

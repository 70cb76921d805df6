package store_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tierchaos/tierchaos/system/api"
	"github.com/tierchaos/tierchaos/system/cold"
	"github.com/tierchaos/tierchaos/system/config"
	"github.com/tierchaos/tierchaos/system/manifest"
	"github.com/tierchaos/tierchaos/system/store"
	"github.com/tierchaos/tierchaos/system/wal"
)

// TestWALDamageBeforeIntactRecordsRefusesToStart: a bad record in the
// middle of the WAL with acknowledged inserts after it stops the store
// from opening with data_corrupted, naming the segment; nothing is cut.
// With WAL repair it opens with every insert but the damaged one.
// Regression: recovery truncated the WAL at the bad record and came up
// without the later acknowledged inserts.
func TestWALDamageBeforeIntactRecordsRefusesToStart(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	s := f.open(t, nil)
	_, err := s.Create(ctx, api.CreateCollectionRequest{Name: "w", Dimension: dim, Metric: api.MetricL2})
	require.NoError(t, err)
	want := data{}
	for i := range 6 {
		b := batch(fmt.Sprintf("b%d-", i), 3, dim, i)
		_, err := s.Insert(ctx, "w", b)
		require.NoError(t, err)
		if i != 3 {
			want.add(b)
		}
	}
	require.NoError(t, s.Close())
	segs, err := filepath.Glob(filepath.Join(f.dir, "wal", "wal-*.log"))
	require.NoError(t, err)
	var seg string
	var body []byte
	for _, p := range segs {
		if b, err := os.ReadFile(p); err == nil && len(b) > 0 {
			seg, body = p, b
		}
	}
	require.NotEmpty(t, body)
	body[len(body)/2] ^= 0x20 // the length of the fourth of six equal records
	require.NoError(t, os.WriteFile(seg, body, 0o644))
	d := config.Default()
	cs, err := cold.New(f.objs, cold.Options{OpTimeout: time.Second, PartSize: 5 << 20, Concurrency: 1}, discard())
	require.NoError(t, err)
	s2, err := store.Open(store.Options{DataDir: f.dir, Limits: d.Limits, WAL: d.WAL, Cold: cs}, discard())
	if err == nil {
		_ = s2.Close()
	}
	require.ErrorIs(t, err, wal.ErrCorrupt)
	require.Equal(t, api.CodeDataCorrupted, api.CodeOf(err))
	require.ErrorContains(t, err, seg)
	after, err := os.ReadFile(seg)
	require.NoError(t, err)
	require.Equal(t, body, after, "nothing is cut")

	s = f.open(t, func(o *store.Options) { o.WAL.Repair = true })
	requireContent(t, s, "w", api.MetricL2, want, dim)
}

// TestDamagedManifestRefusesToStart: a manifest changed after it was
// written (here the WAL position a collection's checkpoint covers, which
// would make recovery skip or replay the wrong records) stops the store
// from opening with data_corrupted naming the file. Regression: the
// manifest had no checksum and was trusted.
func TestDamagedManifestRefusesToStart(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	s := f.open(t, nil)
	setup(t, s, "m", api.MetricDot)
	_, err := s.SetTier(ctx, "m", api.TierWarm)
	require.NoError(t, err)
	require.NoError(t, s.Close())
	path := filepath.Join(f.dir, manifest.FileName)
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	i := bytes.Index(b, []byte(`"covered_lsn":`))
	require.Positive(t, i)
	i += len(`"covered_lsn":`)
	if b[i] == '9' {
		b[i] = '8'
	} else {
		b[i]++
	}
	require.NoError(t, os.WriteFile(path, b, 0o644))
	d := config.Default()
	_, err = store.Open(store.Options{DataDir: f.dir, Limits: d.Limits, WAL: d.WAL}, discard())
	require.ErrorIs(t, err, manifest.ErrCorrupt)
	require.Equal(t, api.CodeDataCorrupted, api.CodeOf(err))
	require.ErrorContains(t, err, path)
}

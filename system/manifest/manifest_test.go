package manifest

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tierchaos/tierchaos/system/api"
	"github.com/tierchaos/tierchaos/system/fsutil"
)

func sample() *Manifest {
	now := time.Unix(1_700_000_000, 0).UTC()
	m := New()
	m.Collections["a"] = &Entry{ID: 1, Name: "a", Dimension: 4, Metric: api.MetricL2, Tier: api.TierCold,
		Data:      &SnapshotRef{ID: "s1", Key: "collections/a/data/s1.parquet", Size: 10, Checksum: "00ff", Count: 2, Created: now},
		Snapshots: []SnapshotRef{{ID: "u1", Key: "collections/a/snapshots/u1.parquet"}}, Created: now}
	m.Collections["b"] = &Entry{ID: 2, Name: "b", Dimension: 2, Metric: api.MetricDot, Tier: api.TierWarm,
		Data: &SnapshotRef{ID: "s2", File: "local/2/s2.parquet"}, Created: now}
	m.PendingDeletes = []string{"collections/x/data/old.parquet"}
	m.NextID = 3
	return m
}

func openFile(t *testing.T, dir string) (*File, *Manifest) {
	t.Helper()
	f, m, err := Open(dir)
	require.NoError(t, err)
	t.Cleanup(func() { _ = f.Close() })
	return f, m
}

func TestSaveLoad(t *testing.T) {
	dir := t.TempDir()
	f, m := openFile(t, dir)
	require.Empty(t, m.Collections)
	m = sample()
	require.NoError(t, f.Save(m))
	got, err := Load(dir)
	require.NoError(t, err)
	require.Equal(t, m, got)
	require.Equal(t, map[string]bool{"collections/a/data/s1.parquet": true, "collections/a/snapshots/u1.parquet": true}, got.ReferencedKeys())
	require.Equal(t, map[string]bool{"local/2/s2.parquet": true}, got.ReferencedFiles())
	// Clone is deep.
	c := got.Clone()
	c.Collections["a"].Data.Size = 99
	c.Collections["a"].Snapshots[0].ID = "changed"
	require.Equal(t, int64(10), got.Collections["a"].Data.Size)
	require.Equal(t, "u1", got.Collections["a"].Snapshots[0].ID)
	// Many saves alternate between the slots in place: one file, fixed size.
	for i := range 5 {
		m.NextID = uint64(10 + i)
		require.NoError(t, f.Save(m))
		got, err := Load(dir)
		require.NoError(t, err)
		require.Equal(t, m.NextID, got.NextID)
	}
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, ents, 1, "no temporary file left")
	st, err := os.Stat(filepath.Join(dir, FileName))
	require.NoError(t, err)
	require.Equal(t, int64(2*MinSlotSize), st.Size())
	// Reopening finds the last commit and goes on from it.
	require.NoError(t, f.Close())
	f2, m2 := openFile(t, dir)
	require.Equal(t, m, m2)
	m2.NextID = 99
	require.NoError(t, f2.Save(m2))
	got, err = Load(dir)
	require.NoError(t, err)
	require.Equal(t, uint64(99), got.NextID)
}

// TestTornSlotFallsBackToThePreviousCommit damages the newest copy the
// ways a crash mid-write can (garbage, a zeroed tail, a half-written
// header): the previous commit is loaded, and the next save overwrites
// the damaged slot.
func TestTornSlotFallsBackToThePreviousCommit(t *testing.T) {
	damages := map[string]func(slot []byte){
		"garbage body":     func(s []byte) { copy(s[headerSize:], "garbage") },
		"zeroed tail":      func(s []byte) { clear(s[headerSize+10:]) },
		"torn header":      func(s []byte) { s[9] ^= 0xff },
		"never written":    func(s []byte) { clear(s) },
		"length too large": func(s []byte) { s[19] = 0xff },
	}
	for name, damage := range damages {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			f, m := openFile(t, dir)
			m.NextID = 7
			require.NoError(t, f.Save(m)) // seq 2
			m.NextID = 8
			require.NoError(t, f.Save(m)) // seq 3: the newest
			require.NoError(t, f.Close())
			path := filepath.Join(dir, FileName)
			b, err := os.ReadFile(path)
			require.NoError(t, err)
			slot := len(b) / 2
			damage(b[3%2*slot : (3%2+1)*slot])
			require.NoError(t, os.WriteFile(path, b, 0o644))

			got, err := Load(dir)
			require.NoError(t, err)
			require.Equal(t, uint64(7), got.NextID, "the previous commit")
			f2, got2 := openFile(t, dir)
			require.Equal(t, got, got2)
			got2.NextID = 9
			require.NoError(t, f2.Save(got2)) // overwrites the damaged slot
			got, err = Load(dir)
			require.NoError(t, err)
			require.Equal(t, uint64(9), got.NextID)
		})
	}
}

func TestNoIntactCopyIsAnError(t *testing.T) {
	dir := t.TempDir()
	f, _ := openFile(t, dir)
	require.NoError(t, f.Close())
	path := filepath.Join(dir, FileName)
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	for i := range b {
		b[i] ^= 0x5a
	}
	require.NoError(t, os.WriteFile(path, b, 0o644))
	_, err = Load(dir)
	require.ErrorIs(t, err, ErrNoIntactCopy)
	require.ErrorContains(t, err, path)
	_, _, err = Open(dir)
	require.ErrorIs(t, err, ErrNoIntactCopy)
	require.NoError(t, os.WriteFile(path, []byte("short"), 0o644))
	_, err = Load(dir)
	require.ErrorIs(t, err, ErrNoIntactCopy)
}

func TestGrowsBeyondTheSlot(t *testing.T) {
	dir := t.TempDir()
	f, m := openFile(t, dir)
	for i := range 400 {
		name := fmt.Sprintf("c%03d", i)
		m.Collections[name] = &Entry{ID: uint64(i), Name: name, Dimension: 8, Metric: api.MetricCosine, Tier: api.TierHot}
	}
	require.NoError(t, f.Save(m))
	require.Greater(t, f.SlotSize(), int64(MinSlotSize))
	got, err := Load(dir)
	require.NoError(t, err)
	require.Equal(t, m, got)
	// After growing, saves are in place again.
	delete(m.Collections, "c000")
	require.NoError(t, f.Save(m))
	got, err = Load(dir)
	require.NoError(t, err)
	require.Equal(t, m, got)
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, ents, 1)
}

func TestMigratesLegacyJSON(t *testing.T) {
	dir := t.TempDir()
	m := sample()
	b, err := encode(m)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, LegacyFileName), b, 0o644))
	got, err := Load(dir)
	require.NoError(t, err)
	require.Equal(t, m, got, "Load reads the legacy file")
	_, got = openFile(t, dir)
	require.Equal(t, m, got)
	_, err = os.Stat(filepath.Join(dir, LegacyFileName))
	require.ErrorIs(t, err, os.ErrNotExist, "migrated and removed")
	got, err = Load(dir)
	require.NoError(t, err)
	require.Equal(t, m, got)
}

func TestLoadRejectsBadManifests(t *testing.T) {
	cases := map[string]string{
		"garbage":       `{"version":1,`,
		"version":       `{"version":7,"collections":{}}`,
		"name mismatch": `{"version":1,"collections":{"a":{"name":"b","dimension":1,"metric":"l2","tier":"hot"}}}`,
		"bad tier":      `{"version":1,"collections":{"a":{"name":"a","dimension":1,"metric":"l2","tier":"tepid"}}}`,
		"cold no data":  `{"version":1,"collections":{"a":{"name":"a","dimension":1,"metric":"l2","tier":"cold"}}}`,
		"null entry":    `{"version":1,"collections":{"a":null}}`,
	}
	for name, body := range cases {
		t.Run(name+"/legacy", func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, LegacyFileName)
			require.NoError(t, os.WriteFile(path, []byte(body), 0o644))
			_, err := Load(dir)
			require.ErrorContains(t, err, path)
			_, _, err = Open(dir)
			require.ErrorContains(t, err, path)
		})
		t.Run(name+"/slot", func(t *testing.T) {
			// A well-formed slot whose content is invalid is refused, not skipped.
			dir := t.TempDir()
			path := filepath.Join(dir, FileName)
			img := make([]byte, 2*MinSlotSize)
			copy(img[MinSlotSize:], record(1, []byte(body)))
			require.NoError(t, os.WriteFile(path, img, 0o644))
			_, err := Load(dir)
			require.ErrorContains(t, err, path)
			_, _, err = Open(dir)
			require.ErrorContains(t, err, path)
		})
	}
}

// TestSaveOnAFullVolume fills a 1 MiB tmpfs to the last byte: saves that
// fit the slots still succeed (they overwrite allocated pages); one that
// must grow the file fails with ErrNoSpace and keeps the last commit.
// Mounting needs root; without it the test skips.
func TestSaveOnAFullVolume(t *testing.T) {
	vol := filepath.Join(t.TempDir(), "vol")
	require.NoError(t, os.MkdirAll(vol, 0o755))
	if err := syscall.Mount("tmpfs", vol, "tmpfs", 0, "size=1m"); err != nil {
		if errors.Is(err, syscall.EPERM) {
			t.Skip("mounting a tmpfs needs root")
		}
		require.NoError(t, err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(vol, syscall.MNT_DETACH) })
	f, m := openFile(t, vol)
	fill, err := os.Create(filepath.Join(vol, "filler"))
	require.NoError(t, err)
	t.Cleanup(func() { fill.Close() })
	for {
		if _, err := fill.Write(make([]byte, 4096)); err != nil {
			require.True(t, fsutil.IsNoSpace(err), "%v", err)
			break
		}
	}
	for i := range 3 {
		m.NextID = uint64(100 + i)
		require.NoError(t, f.Save(m), "a save within the slots needs no space")
	}
	big := m.Clone()
	big.PendingDeletes = []string{strings.Repeat("k", 2*MinSlotSize)}
	err = f.Save(big)
	require.ErrorIs(t, err, fsutil.ErrNoSpace)
	got, err := Load(vol)
	require.NoError(t, err)
	require.Equal(t, m, got, "the last commit stays")
	ents, err := os.ReadDir(vol)
	require.NoError(t, err)
	require.Len(t, ents, 2, "manifest and filler, no temporary file")
}

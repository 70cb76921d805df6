package manifest

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tierchaos/tierchaos/internal/tmpfs/tmpfstest"
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
	// Many saves swap the manifest and its spare: two files of fixed size.
	for i := range 5 {
		m.NextID = uint64(10 + i)
		require.NoError(t, f.Save(m))
		got, err := Load(dir)
		require.NoError(t, err)
		require.Equal(t, m.NextID, got.NextID)
	}
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	var names []string
	for _, e := range ents {
		info, err := e.Info()
		require.NoError(t, err)
		require.Equal(t, int64(MinCapacity), info.Size(), e.Name())
		names = append(names, e.Name())
	}
	require.ElementsMatch(t, []string{FileName, SpareName}, names, "no temporary file left")
	// The manifest stays plain JSON (padded with whitespace).
	b, err := os.ReadFile(filepath.Join(dir, FileName))
	require.NoError(t, err)
	var raw map[string]any
	require.NoError(t, json.Unmarshal(b, &raw))
	// Reopening finds the last commit and goes on from it.
	require.NoError(t, f.Close())
	require.Error(t, f.Save(m), "closed")
	f2, m2 := openFile(t, dir)
	require.Equal(t, m, m2)
	m2.NextID = 99
	require.NoError(t, f2.Save(m2))
	got, err = Load(dir)
	require.NoError(t, err)
	require.Equal(t, uint64(99), got.NextID)
}

// TestInterruptedCommitRecovers leaves the data folder as a crash between
// the steps of a commit would, and opens it: the manifest is the old or
// the new one, and the spare is back for the next commit.
func TestInterruptedCommitRecovers(t *testing.T) {
	cases := []struct {
		name  string
		crash func(t *testing.T, dir string, newBody []byte)
		want  uint64 // NextID Open finds
	}{
		{"during the spare's write", func(t *testing.T, dir string, _ []byte) {
			require.NoError(t, os.WriteFile(filepath.Join(dir, SpareName), []byte("{garbage"), 0o644))
		}, 7},
		{"after the link", func(t *testing.T, dir string, newBody []byte) {
			require.NoError(t, os.WriteFile(filepath.Join(dir, SpareName), padded(newBody, MinCapacity), 0o644))
			require.NoError(t, os.Link(filepath.Join(dir, FileName), filepath.Join(dir, KeepName)))
		}, 7},
		{"after the rename over the manifest", func(t *testing.T, dir string, newBody []byte) {
			require.NoError(t, os.Link(filepath.Join(dir, FileName), filepath.Join(dir, KeepName)))
			require.NoError(t, os.WriteFile(filepath.Join(dir, SpareName), padded(newBody, MinCapacity), 0o644))
			require.NoError(t, os.Rename(filepath.Join(dir, SpareName), filepath.Join(dir, FileName)))
		}, 8},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			f, m := openFile(t, dir)
			m.NextID = 7
			require.NoError(t, f.Save(m))
			require.NoError(t, f.Close())
			m.NextID = 8
			body, err := encode(m)
			require.NoError(t, err)
			tc.crash(t, dir, body)

			got, err := Load(dir)
			require.NoError(t, err)
			require.Equal(t, tc.want, got.NextID)
			f2, got2 := openFile(t, dir)
			require.Equal(t, tc.want, got2.NextID)
			_, err = os.Stat(filepath.Join(dir, KeepName))
			require.ErrorIs(t, err, os.ErrNotExist, "the keep link is resolved")
			man, spare := f2.Capacity()
			require.Equal(t, int64(MinCapacity), man)
			require.Equal(t, int64(MinCapacity), spare, "a spare for the next commit")
			got2.NextID = 9
			require.NoError(t, f2.Save(got2))
			got, err = Load(dir)
			require.NoError(t, err)
			require.Equal(t, uint64(9), got.NextID)
		})
	}
}

func TestGrowsBeyondTheSpare(t *testing.T) {
	dir := t.TempDir()
	f, m := openFile(t, dir)
	for i := range 400 {
		name := fmt.Sprintf("c%03d", i)
		m.Collections[name] = &Entry{ID: uint64(i), Name: name, Dimension: 8, Metric: api.MetricCosine, Tier: api.TierHot}
	}
	require.NoError(t, f.Save(m))
	man, spare := f.Capacity()
	require.Greater(t, man, int64(MinCapacity))
	require.Equal(t, man, spare, "the spare grew too")
	got, err := Load(dir)
	require.NoError(t, err)
	require.Equal(t, m, got)
	// After growing, commits go through the spare again.
	delete(m.Collections, "c000")
	require.NoError(t, f.Save(m))
	got, err = Load(dir)
	require.NoError(t, err)
	require.Equal(t, m, got)
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, ents, 2)
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
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, FileName)
			require.NoError(t, os.WriteFile(path, []byte(body), 0o644))
			_, err := Load(dir)
			require.ErrorContains(t, err, path)
			_, _, err = Open(dir)
			require.ErrorContains(t, err, path)
		})
	}
}

// TestSaveOnAFullVolume fills a 1 MiB tmpfs to the last byte: saves that
// fit the spare still succeed (they overwrite allocated pages and only
// link and rename); one that must grow the file fails with ErrNoSpace and
// keeps the last commit.
// The tmpfs needs no root (internal/tmpfs); where none can be made the
// test skips with the reason, or fails in CI.
func TestSaveOnAFullVolume(t *testing.T) {
	vol := tmpfstest.Dir(t, "1m")
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
		require.NoError(t, f.Save(m), "a save within the spare needs no space")
	}
	big := m.Clone()
	big.PendingDeletes = []string{strings.Repeat("k", 2*MinCapacity)}
	err = f.Save(big)
	require.ErrorIs(t, err, fsutil.ErrNoSpace)
	got, err := Load(vol)
	require.NoError(t, err)
	require.Equal(t, m, got, "the last commit stays")
	ents, err := os.ReadDir(vol)
	require.NoError(t, err)
	require.Len(t, ents, 3, "manifest, spare and filler, no temporary file")
}

func TestLivePacksCountsMembers(t *testing.T) {
	m := New()
	member := func(name, pack string, off int64) {
		m.Collections[name] = &Entry{ID: uint64(len(m.Collections) + 1), Name: name, Dimension: 1, Metric: api.MetricL2, Tier: api.TierCold,
			Data: &SnapshotRef{ID: "s" + name, Key: pack, Packed: true, Offset: off, Size: 10, Checksum: "x", Count: 1}}
	}
	member("a", "packs/_batch/1.pack", 12)
	member("b", "packs/_batch/1.pack", 22)
	member("c", "packs/_batch/2.pack", 12)
	m.Collections["d"] = &Entry{ID: 9, Name: "d", Dimension: 1, Metric: api.MetricL2, Tier: api.TierCold,
		Data: &SnapshotRef{ID: "sd", Key: "collections/d/data/sd.parquet", Size: 10, Checksum: "x", Count: 1}}
	require.Equal(t, map[string]int{"packs/_batch/1.pack": 2, "packs/_batch/2.pack": 1}, m.LivePacks())
	require.True(t, m.ReferencedKeys()["packs/_batch/1.pack"], "a pack with live members is referenced")
	delete(m.Collections, "a")
	delete(m.Collections, "b")
	require.Equal(t, map[string]int{"packs/_batch/2.pack": 1}, m.LivePacks())
	require.False(t, m.ReferencedKeys()["packs/_batch/1.pack"], "a pack without members is not")

	// Members survive a save and load.
	dir := t.TempDir()
	mf, _, err := Open(dir)
	require.NoError(t, err)
	require.NoError(t, mf.Save(m))
	require.NoError(t, mf.Close())
	got, err := Load(dir)
	require.NoError(t, err)
	require.Equal(t, *m.Collections["c"].Data, *got.Collections["c"].Data)
}

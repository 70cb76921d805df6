package manifest

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tierchaos/tierchaos/system/api"
)

func TestSaveLoad(t *testing.T) {
	dir := t.TempDir()
	m, err := Load(dir)
	require.NoError(t, err)
	require.Empty(t, m.Collections)
	now := time.Unix(1_700_000_000, 0).UTC()
	m.Collections["a"] = &Entry{ID: 1, Name: "a", Dimension: 4, Metric: api.MetricL2, Tier: api.TierCold,
		Data:      &SnapshotRef{ID: "s1", Key: "collections/a/data/s1.parquet", Size: 10, Checksum: "00ff", Count: 2, Created: now},
		Snapshots: []SnapshotRef{{ID: "u1", Key: "collections/a/snapshots/u1.parquet"}}, Created: now}
	m.Collections["b"] = &Entry{ID: 2, Name: "b", Dimension: 2, Metric: api.MetricDot, Tier: api.TierWarm,
		Data: &SnapshotRef{ID: "s2", File: "local/2/s2.parquet"}, Created: now}
	m.PendingDeletes = []string{"collections/x/data/old.parquet"}
	m.NextID = 3
	require.NoError(t, Save(dir, m))
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
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, ents, 1, "no temporary file left")
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
			require.NoError(t, os.WriteFile(filepath.Join(dir, FileName), []byte(body), 0o644))
			_, err := Load(dir)
			require.ErrorContains(t, err, filepath.Join(dir, FileName))
		})
	}
}

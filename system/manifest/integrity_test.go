package manifest

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tierchaos/tierchaos/system/api"
	"github.com/tierchaos/tierchaos/system/fsutil"
)

// TestChecksumDetectsDamage: a manifest whose bytes changed after it was
// written, into JSON that still parses, fails to load with an error that
// names the file, instead of being trusted. Regression: the manifest had
// no checksum, so a flipped digit of a WAL position or a size was read as
// the truth.
func TestChecksumDetectsDamage(t *testing.T) {
	cases := []struct{ name, from, to string }{
		{"covered LSN", `"covered_lsn":0`, `"covered_lsn":7`},
		{"snapshot size", `"size":10`, `"size":19`},
		{"tier", `"tier":"cold"`, `"tier":"warm"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			f, _ := openFile(t, dir)
			require.NoError(t, f.Save(sample()))
			path := filepath.Join(dir, FileName)
			b, err := os.ReadFile(path)
			require.NoError(t, err)
			require.Contains(t, string(b), tc.from)
			b = bytes.Replace(b, []byte(tc.from), []byte(tc.to), 1)
			require.NoError(t, os.WriteFile(path, b, 0o644))
			_, err = Load(dir)
			require.ErrorIs(t, err, ErrCorrupt)
			require.ErrorContains(t, err, path)
			require.ErrorContains(t, err, "checksum mismatch")
			_, _, err = Open(dir)
			require.ErrorIs(t, err, ErrCorrupt)
			require.ErrorContains(t, err, path)
		})
	}
}

// TestLeftoverKeepLinkDoesNotBlockCommits: a manifest.json.old left beside
// the manifest while tierd runs (a failed rename of the keep link leaves
// it) does not make later commits fail. Regression: every later commit
// failed to create the keep link (file exists) until a restart.
func TestLeftoverKeepLinkDoesNotBlockCommits(t *testing.T) {
	dir := t.TempDir()
	f, m := openFile(t, dir)
	m.NextID = 5
	require.NoError(t, f.Save(m))
	require.NoError(t, os.Link(filepath.Join(dir, FileName), filepath.Join(dir, KeepName)))
	for i := range 3 {
		m.NextID = uint64(6 + i)
		require.NoError(t, f.Save(m), "commit %d after the leftover", i)
		got, err := Load(dir)
		require.NoError(t, err)
		require.Equal(t, m.NextID, got.NextID)
	}
	_, err := os.Lstat(filepath.Join(dir, KeepName))
	require.ErrorIs(t, err, os.ErrNotExist)
}

// TestPathsStayInTheDataFolder: a manifest whose local file paths, names or
// snapshot ids would lead outside the data folder (absolute, "..", not
// clean) fails to load with an error naming the file. Regression: the
// paths were joined to the data folder unchecked.
func TestPathsStayInTheDataFolder(t *testing.T) {
	warm := func(file string) *Manifest {
		m := sample()
		m.Collections["b"].Data.File = file
		return m
	}
	cases := map[string]*Manifest{
		"parent":        warm("../outside.parquet"),
		"absolute":      warm("/etc/passwd"),
		"climbs out":    warm("local/2/../../../x.parquet"),
		"not clean":     warm("local/./2/s2.parquet"),
		"backslash dot": warm(`local\..\..\x.parquet`),
		"snapshot file": func() *Manifest {
			m := sample()
			m.Collections["a"].Snapshots[0].File = "../../u1.parquet"
			return m
		}(),
		"snapshot id": func() *Manifest {
			m := sample()
			m.Collections["a"].Data.ID = "../../x"
			return m
		}(),
		"name": func() *Manifest {
			m := sample()
			e := m.Collections["b"]
			delete(m.Collections, "b")
			e.Name = "../b"
			m.Collections[e.Name] = e
			return m
		}(),
	}
	for name, m := range cases {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			body, err := encode(m)
			require.NoError(t, err)
			path := filepath.Join(dir, FileName)
			require.NoError(t, os.WriteFile(path, padded(body, MinCapacity), 0o644))
			_, err = Load(dir)
			require.ErrorIs(t, err, ErrCorrupt)
			require.ErrorContains(t, err, path)
			_, _, err = Open(dir)
			require.ErrorIs(t, err, ErrCorrupt)
		})
	}
}

// checksummed wraps a catalogue's JSON the way encode does.
func checksummed(catalogue string) []byte {
	return []byte(`{"checksum":"` + checksumOf([]byte(catalogue)) + `","manifest":` + catalogue + `}`)
}

// TestLoadRejectsInvalidCatalogues: with a correct checksum, a catalogue
// that is not valid still fails to load, with ErrCorrupt and the file's
// name; so does a file that is not a checksummed manifest at all.
func TestLoadRejectsInvalidCatalogues(t *testing.T) {
	cases := map[string][]byte{
		"version":         checksummed(`{"version":7,"collections":{}}`),
		"name mismatch":   checksummed(`{"version":1,"collections":{"a":{"name":"b","dimension":1,"metric":"l2","tier":"hot"}}}`),
		"bad tier":        checksummed(`{"version":1,"collections":{"a":{"name":"a","dimension":1,"metric":"l2","tier":"tepid"}}}`),
		"cold no data":    checksummed(`{"version":1,"collections":{"a":{"name":"a","dimension":1,"metric":"l2","tier":"cold"}}}`),
		"cold no key":     checksummed(`{"version":1,"collections":{"a":{"name":"a","dimension":1,"metric":"l2","tier":"cold","data":{"id":"s","file":"local/1/s.parquet","size":1,"checksum":"x","count":1}}}}`),
		"warm no file":    checksummed(`{"version":1,"collections":{"a":{"name":"a","dimension":1,"metric":"l2","tier":"warm","data":{"id":"s","key":"k","size":1,"checksum":"x","count":1}}}}`),
		"negative size":   checksummed(`{"version":1,"collections":{"a":{"name":"a","dimension":1,"metric":"l2","tier":"warm","data":{"id":"s","file":"local/1/s.parquet","size":-1,"checksum":"x","count":1}}}}`),
		"null entry":      checksummed(`{"version":1,"collections":{"a":null}}`),
		"member no pack":  checksummed(`{"version":1,"collections":{"a":{"name":"a","dimension":1,"metric":"l2","tier":"hot","data":{"id":"s","file":"local/1/s.parquet","packed":true,"size":1,"checksum":"x","count":1}}}}`),
		"member offset":   checksummed(`{"version":1,"collections":{"a":{"name":"a","dimension":1,"metric":"l2","tier":"cold","data":{"id":"s","key":"p","packed":true,"offset":-1,"size":1,"checksum":"x","count":1}}}}`),
		"offset unpacked": checksummed(`{"version":1,"collections":{"a":{"name":"a","dimension":1,"metric":"l2","tier":"cold","data":{"id":"s","key":"k","offset":12,"size":1,"checksum":"x","count":1}}}}`),
		"trailing data":   append(checksummed(`{"version":1,"collections":{}}`), []byte(` {}`)...),
		"unknown field":   []byte(`{"checksum":"crc32c:00000000","manifest":{},"extra":1}`),
		"no checksum":     []byte(`{"version":1,"collections":{}}`),
		"wrong checksum":  []byte(`{"checksum":"crc32c:00000000","manifest":{"version":1,"collections":{}}}`),
		"not JSON":        []byte("\x00\x01garbage"),
		"empty":           nil,
		"only whitespace": bytes.Repeat([]byte(" "), 64),
	}
	for name, body := range cases {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, FileName)
			require.NoError(t, os.WriteFile(path, body, 0o644))
			_, err := Load(dir)
			require.ErrorIs(t, err, ErrCorrupt)
			require.ErrorContains(t, err, path)
		})
	}
	// The same catalogue with its checksum loads.
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, FileName), checksummed(`{"version":1,"next_id":4,"collections":{}}`), 0o644))
	m, err := Load(dir)
	require.NoError(t, err)
	require.Equal(t, uint64(4), m.NextID)
}

// TestFailedFolderFsyncKeepsThePreviousManifest: when the folder fsync
// after the rename fails, Save reports the error and the previous
// manifest is the current one again, in memory and on disk alike, so that
// a caller that undoes its change on the error finds both agreeing; the
// next Save works once fsync does. Regression: the new manifest stayed in
// place although Save failed, so the store's memory (old) and the disk
// (new) disagreed.
func TestFailedFolderFsyncKeepsThePreviousManifest(t *testing.T) {
	dir := t.TempDir()
	f, m := openFile(t, dir)
	m.Collections["a"] = &Entry{ID: 1, Name: "a", Dimension: 2, Metric: api.MetricL2, Tier: api.TierHot}
	m.NextID = 2
	require.NoError(t, f.Save(m))
	failing := true
	f.syncDir = func(d string) error {
		if failing {
			return errors.New("injected EIO")
		}
		return fsutil.SyncDir(d)
	}
	next := m.Clone()
	next.NextID = 3
	delete(next.Collections, "a")
	require.Error(t, f.Save(next))
	got, err := Load(dir)
	require.NoError(t, err)
	require.Equal(t, m, got, "after a failed Save the previous manifest is current")
	failing = false
	require.NoError(t, f.Save(next))
	got, err = Load(dir)
	require.NoError(t, err)
	require.Equal(t, next, got)
}

// TestFolderFsyncFailingOnRetriesBlocksCommitsUntilItWorks: when the
// folder fsync fails again while the failed commit is undone, later
// commits fail without touching anything (the spare might still be the
// durable manifest) until an fsync succeeds; then they work, and the
// files are the manifest and its spare of full size.
func TestFolderFsyncFailingOnRetriesBlocksCommitsUntilItWorks(t *testing.T) {
	dir := t.TempDir()
	f, m := openFile(t, dir)
	m.NextID = 2
	require.NoError(t, f.Save(m))
	failures := 0
	fail := true
	f.syncDir = func(d string) error {
		if fail {
			failures++
			return errors.New("injected EIO")
		}
		return fsutil.SyncDir(d)
	}
	next := m.Clone()
	next.NextID = 3
	require.Error(t, f.Save(next))
	require.Equal(t, 2, failures, "the commit's fsync and the undo's")
	before, err := os.ReadFile(filepath.Join(dir, SpareName))
	require.NoError(t, err)
	require.Error(t, f.Save(next))
	require.Equal(t, 3, failures, "a later commit first retries the fsync, and stops there")
	after, err := os.ReadFile(filepath.Join(dir, SpareName))
	require.NoError(t, err)
	require.Equal(t, before, after, "the spare is not written while the folder is not synced")
	got, err := Load(dir)
	require.NoError(t, err)
	require.Equal(t, m, got)
	fail = false
	require.NoError(t, f.Save(next))
	got, err = Load(dir)
	require.NoError(t, err)
	require.Equal(t, next, got)
	man, spare := f.Capacity()
	require.Equal(t, int64(MinCapacity), man)
	require.Equal(t, int64(MinCapacity), spare)
}

package powerloss

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tierchaos/tierchaos/system/fsutil"
)

func newFS(t *testing.T) (*FS, string) {
	t.Helper()
	root := t.TempDir()
	f, err := New(root)
	require.NoError(t, err)
	return f, root
}

// create makes name with data through fsys, fsyncing the file if sync.
func create(t *testing.T, fsys fsutil.FS, name, data string, sync bool) {
	t.Helper()
	fh, err := fsys.OpenFile(name, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	require.NoError(t, err)
	_, err = fh.Write([]byte(data))
	require.NoError(t, err)
	if sync {
		require.NoError(t, fh.Sync())
	}
	require.NoError(t, fh.Close())
}

func appendTo(t *testing.T, fsys fsutil.FS, name, data string, sync bool) {
	t.Helper()
	fh, err := fsys.OpenFile(name, os.O_WRONLY|os.O_APPEND, 0)
	require.NoError(t, err)
	_, err = fh.Write([]byte(data))
	require.NoError(t, err)
	if sync {
		require.NoError(t, fh.Sync())
	}
	require.NoError(t, fh.Close())
}

// state reads every file under root: relative path -> content; folders
// map to "/".
func state(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	require.NoError(t, filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		require.NoError(t, err)
		if p == root {
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		if d.IsDir() {
			out[rel] = "/"
			return nil
		}
		b, err := os.ReadFile(p)
		require.NoError(t, err)
		out[rel] = string(b)
		return nil
	}))
	return out
}

func TestCut(t *testing.T) {
	tests := []struct {
		name string
		do   func(t *testing.T, f *FS, root string)
		// before: what is on disk before the cut (the live state);
		// after: what the cut leaves.
		before, after map[string]string
	}{
		{
			name: "write without fsync is lost",
			do: func(t *testing.T, f *FS, root string) {
				create(t, f, filepath.Join(root, "a"), "hello", false)
				require.NoError(t, f.SyncDir(root))
			},
			before: map[string]string{"a": "hello"},
			after:  map[string]string{"a": ""},
		},
		{
			name: "fsynced data is kept",
			do: func(t *testing.T, f *FS, root string) {
				create(t, f, filepath.Join(root, "a"), "hello", true)
				require.NoError(t, f.SyncDir(root))
			},
			before: map[string]string{"a": "hello"},
			after:  map[string]string{"a": "hello"},
		},
		{
			name: "append after the last fsync is lost",
			do: func(t *testing.T, f *FS, root string) {
				create(t, f, filepath.Join(root, "a"), "one,", true)
				require.NoError(t, f.SyncDir(root))
				appendTo(t, f, filepath.Join(root, "a"), "two,", true)
				appendTo(t, f, filepath.Join(root, "a"), "three", false)
			},
			before: map[string]string{"a": "one,two,three"},
			after:  map[string]string{"a": "one,two,"},
		},
		{
			name: "create without folder fsync vanishes",
			do: func(t *testing.T, f *FS, root string) {
				create(t, f, filepath.Join(root, "a"), "hello", true)
			},
			before: map[string]string{"a": "hello"},
			after:  map[string]string{},
		},
		{
			name: "rename without folder fsync reverts, the replaced file comes back",
			do: func(t *testing.T, f *FS, root string) {
				create(t, f, filepath.Join(root, "m"), "old", true)
				create(t, f, filepath.Join(root, "m.tmp"), "new", true)
				require.NoError(t, f.SyncDir(root))
				require.NoError(t, f.Rename(filepath.Join(root, "m.tmp"), filepath.Join(root, "m")))
			},
			before: map[string]string{"m": "new"},
			after:  map[string]string{"m": "old", "m.tmp": "new"},
		},
		{
			name: "rename with folder fsync is kept",
			do: func(t *testing.T, f *FS, root string) {
				create(t, f, filepath.Join(root, "m"), "old", true)
				create(t, f, filepath.Join(root, "m.tmp"), "new", true)
				require.NoError(t, f.SyncDir(root))
				require.NoError(t, f.Rename(filepath.Join(root, "m.tmp"), filepath.Join(root, "m")))
				require.NoError(t, f.SyncDir(root))
			},
			before: map[string]string{"m": "new"},
			after:  map[string]string{"m": "new"},
		},
		{
			name: "rename made durable over unsynced data leaves an empty file",
			do: func(t *testing.T, f *FS, root string) {
				create(t, f, filepath.Join(root, "m"), "old", true)
				create(t, f, filepath.Join(root, "m.tmp"), "new", false)
				require.NoError(t, f.Rename(filepath.Join(root, "m.tmp"), filepath.Join(root, "m")))
				require.NoError(t, f.SyncDir(root))
			},
			before: map[string]string{"m": "new"},
			after:  map[string]string{"m": ""},
		},
		{
			name: "remove without folder fsync is undone",
			do: func(t *testing.T, f *FS, root string) {
				create(t, f, filepath.Join(root, "a"), "keep", true)
				require.NoError(t, f.SyncDir(root))
				require.NoError(t, f.Remove(filepath.Join(root, "a")))
			},
			before: map[string]string{},
			after:  map[string]string{"a": "keep"},
		},
		{
			name: "a folder made without fsync of its parent vanishes with its files",
			do: func(t *testing.T, f *FS, root string) {
				d := filepath.Join(root, "d")
				require.NoError(t, f.Mkdir(d, 0o755))
				create(t, f, filepath.Join(d, "a"), "x", true)
				require.NoError(t, f.SyncDir(d))
			},
			before: map[string]string{"d": "/", "d/a": "x"},
			after:  map[string]string{},
		},
		{
			name: "fsutil.MkdirAllFS and WriteAtomicFS survive",
			do: func(t *testing.T, f *FS, root string) {
				require.NoError(t, fsutil.WriteAtomicFS(f, filepath.Join(root, "x", "y", "f"), func(w io.Writer) error {
					_, err := w.Write([]byte("data"))
					return err
				}))
			},
			before: map[string]string{"x": "/", "x/y": "/", "x/y/f": "data"},
			after:  map[string]string{"x": "/", "x/y": "/", "x/y/f": "data"},
		},
		{
			name: "truncate without fsync is undone",
			do: func(t *testing.T, f *FS, root string) {
				create(t, f, filepath.Join(root, "a"), "0123456789", true)
				require.NoError(t, f.SyncDir(root))
				fh, err := f.OpenFile(filepath.Join(root, "a"), os.O_RDWR, 0)
				require.NoError(t, err)
				require.NoError(t, fh.Truncate(4))
				require.NoError(t, fh.Close())
			},
			before: map[string]string{"a": "0123"},
			after:  map[string]string{"a": "0123456789"},
		},
		{
			name: "overwrite in place without fsync is undone; a hard link shares the inode",
			do: func(t *testing.T, f *FS, root string) {
				create(t, f, filepath.Join(root, "s"), "spare", true)
				require.NoError(t, f.Link(filepath.Join(root, "s"), filepath.Join(root, "k")))
				require.NoError(t, f.SyncDir(root))
				fh, err := f.OpenFile(filepath.Join(root, "k"), os.O_WRONLY, 0)
				require.NoError(t, err)
				_, err = fh.WriteAt([]byte("SP"), 0)
				require.NoError(t, err)
				require.NoError(t, fh.Close())
			},
			before: map[string]string{"s": "SPare", "k": "SPare"},
			after:  map[string]string{"s": "spare", "k": "spare"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, root := newFS(t)
			tc.do(t, f, root)
			require.Equal(t, tc.before, state(t, root), "the live state before the cut")
			_, err := f.Cut(CutOptions{Seed: 1})
			require.NoError(t, err)
			require.Equal(t, tc.after, state(t, root), "the durable state after the cut")
		})
	}
}

func TestExistingFilesAreDurable(t *testing.T) {
	root := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(root, "d"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(root, "d", "a"), []byte("before"), 0o644))
	f, err := New(root)
	require.NoError(t, err)
	appendTo(t, f, filepath.Join(root, "d", "a"), "+lost", false)
	require.NoError(t, f.Remove(filepath.Join(root, "d", "a")))
	_, err = f.Cut(CutOptions{})
	require.NoError(t, err)
	require.Equal(t, map[string]string{"d": "/", "d/a": "before"}, state(t, root))
}

func TestAfterCutEveryOperationFails(t *testing.T) {
	f, root := newFS(t)
	name := filepath.Join(root, "a")
	create(t, f, name, "x", true)
	require.NoError(t, f.SyncDir(root))
	fh, err := f.OpenFile(name, os.O_RDWR|os.O_APPEND, 0)
	require.NoError(t, err)
	t.Cleanup(func() { _ = fh.Close() })
	_, err = f.Cut(CutOptions{})
	require.NoError(t, err)
	_, err = f.Cut(CutOptions{})
	require.Error(t, err, "a second cut")
	for opName, err := range map[string]error{
		"write":   func() error { _, err := fh.Write([]byte("y")); return err }(),
		"fsync":   fh.Sync(),
		"open":    func() error { _, err := f.OpenFile(name, os.O_RDONLY, 0); return err }(),
		"rename":  f.Rename(name, name+"2"),
		"remove":  f.Remove(name),
		"syncdir": f.SyncDir(root),
		"mkdir":   f.Mkdir(filepath.Join(root, "d"), 0o755),
	} {
		require.ErrorIs(t, err, ErrPowerLost, opName)
		require.ErrorIs(t, err, syscall.EIO, opName)
	}
	require.Equal(t, map[string]string{"a": "x"}, state(t, root))
}

func TestChangesOutsideTheRootAreRefused(t *testing.T) {
	f, _ := newFS(t)
	other := t.TempDir()
	err := f.Mkdir(filepath.Join(other, "d"), 0o755)
	require.ErrorIs(t, err, ErrOutside)
	_, err = os.Stat(filepath.Join(other, "d"))
	require.ErrorIs(t, err, os.ErrNotExist)
}

// TestTornTail: with Torn, a seeded prefix of the unsynced writes
// survives, the last possibly cut inside; never anything else, and the
// same seed gives the same bytes.
func TestTornTail(t *testing.T) {
	const durable = "durable|"
	var chunks []string
	full := durable
	for _, c := range []string{"aaaa", "bbbbbbbb", "cccccc", "dddddddddd", "ee"} {
		chunks = append(chunks, c)
		full += c
	}
	cut := func(seed uint64) string {
		t.Helper()
		f, root := newFS(t)
		name := filepath.Join(root, "wal")
		create(t, f, name, durable, true)
		require.NoError(t, f.SyncDir(root))
		for _, c := range chunks {
			appendTo(t, f, name, c, false)
		}
		_, err := f.Cut(CutOptions{Seed: seed, Torn: true})
		require.NoError(t, err)
		b, err := os.ReadFile(name)
		require.NoError(t, err)
		return string(b)
	}
	lengths := map[int]bool{}
	torn := false
	for seed := uint64(1); seed <= 40; seed++ {
		got := cut(seed)
		require.True(t, len(got) >= len(durable) && full[:len(got)] == got, "seed %d: %q is a prefix of the writes", seed, got)
		require.Equal(t, got, cut(seed), "seed %d is reproducible", seed)
		lengths[len(got)] = true
		boundary := len(durable)
		atBoundary := got == durable
		for _, c := range chunks {
			boundary += len(c)
			atBoundary = atBoundary || len(got) == boundary
		}
		torn = torn || !atBoundary
	}
	assert.Greater(t, len(lengths), 3, "seeds draw different prefixes")
	assert.True(t, torn, "some seed tears a write inside")
}

// tinyWriter saves data to name the classic way: temporary file, rename,
// folder fsync; syncFile says whether it fsyncs the file before the
// rename (forgetting it is the bug).
func tinyWriter(fsys fsutil.FS, name string, data []byte, syncFile bool) error {
	fh, err := fsys.CreateTemp(filepath.Dir(name), "tiny.*.tmp")
	if err != nil {
		return err
	}
	if _, err := fh.Write(data); err != nil {
		return err
	}
	if syncFile {
		if err := fh.Sync(); err != nil {
			return err
		}
	}
	if err := fh.Close(); err != nil {
		return err
	}
	if err := fsys.Rename(fh.Name(), name); err != nil {
		return err
	}
	return fsys.SyncDir(filepath.Dir(name))
}

// checkSaved is the checker a test would run after restart: the saved
// bytes are back.
func checkSaved(name string, want []byte) error {
	got, err := os.ReadFile(name)
	if err != nil {
		return err
	}
	if !bytes.Equal(got, want) {
		return errors.New("saved data lost: " + string(got))
	}
	return nil
}

// TestCatchesAMissingFsync is the layer's self-test: the same writer and
// checker pass on the OS without a cut and with the fsync, and the cut
// catches the writer that forgets it.
func TestCatchesAMissingFsync(t *testing.T) {
	data := []byte("acknowledged")
	for _, tc := range []struct {
		name     string
		syncFile bool
		caught   bool
	}{
		{"writer with fsync", true, false},
		{"writer without fsync", false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, root := newFS(t)
			name := filepath.Join(root, "saved")
			require.NoError(t, tinyWriter(f, name, data, tc.syncFile))
			require.NoError(t, checkSaved(name, data), "before the cut the page cache has it")
			_, err := f.Cut(CutOptions{})
			require.NoError(t, err)
			err = checkSaved(name, data)
			if tc.caught {
				require.Error(t, err, "the cut exposes the missing fsync")
			} else {
				require.NoError(t, err)
			}
		})
	}
}

// TestCutBeforeSync: an armed cut fires at the matching file's next
// fsync, before it takes effect: the writes it covered are lost, earlier
// synced ones kept, the fsync fails.
func TestCutBeforeSync(t *testing.T) {
	f, root := newFS(t)
	name := filepath.Join(root, "wal.log")
	create(t, f, name, "synced|", true)
	require.NoError(t, f.SyncDir(root))
	other := filepath.Join(root, "other")
	fired := make(chan SyncCut, 1)
	f.CutBeforeSync(func(p string) bool { return filepath.Base(p) == "wal.log" }, CutOptions{}, func(r SyncCut) { fired <- r })
	create(t, f, other, "x", true) // another file's fsync does not fire it
	require.NoError(t, f.SyncDir(root))
	select {
	case <-fired:
		require.FailNow(t, "fired on another file")
	default:
	}
	fh, err := f.OpenFile(name, os.O_WRONLY|os.O_APPEND, 0)
	require.NoError(t, err)
	t.Cleanup(func() { _ = fh.Close() })
	_, err = fh.Write([]byte("in flight"))
	require.NoError(t, err)
	require.ErrorIs(t, fh.Sync(), ErrPowerLost, "the fsync the cut came before fails")
	r := <-fired
	require.NoError(t, r.Err)
	require.Equal(t, name, r.Path)
	require.Equal(t, map[string]string{"wal.log": "synced|", "other": "x"}, state(t, root))
}

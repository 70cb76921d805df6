// Package datadir reads tierd's data directory from the test, in both
// harness modes, through tierd.Stack.TierdData: in process the directory
// itself; in a container the harness's data sidecar, which has tierd's
// Docker volume mounted (harness/datavol). Neither needs root nor the
// Docker engine on this machine.
package datadir

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/tierchaos/tierchaos/harness/datavol"
	"github.com/tierchaos/tierchaos/harness/tierd"
	"github.com/tierchaos/tierchaos/system/fsutil"
	"github.com/tierchaos/tierchaos/system/manifest"
)

// Listing is what the data directory holds: every regular file, by path
// relative to the directory (slash-separated), with its size.
type Listing struct {
	// Files maps relative path to size in bytes.
	Files map[string]int64
}

// List reads every regular file under tierd's data directory.
func List(ctx context.Context, s *tierd.Stack) (Listing, error) {
	v, err := s.TierdData()
	if err != nil {
		return Listing{}, err
	}
	files, err := v.List(ctx)
	if err != nil {
		return Listing{}, fmt.Errorf("datadir: list: %w", err)
	}
	return Listing{Files: files}, nil
}

// Parquet returns the local Parquet files (warm copies and hot
// checkpoints, under local/) with their sizes.
func (l Listing) Parquet() map[string]int64 {
	out := map[string]int64{}
	for p, n := range l.Files {
		if strings.HasPrefix(p, "local/") && strings.HasSuffix(p, ".parquet") {
			out[p] = n
		}
	}
	return out
}

// ParquetBytes is the total size of the local Parquet files, what tierd
// counts against its warm quota.
func (l Listing) ParquetBytes() int64 {
	var n int64
	for _, s := range l.Parquet() {
		n += s
	}
	return n
}

// Partial returns files a write left behind: temporary files (fsutil's
// *.tmp) and anything under local/ that is not a Parquet file.
func (l Listing) Partial() []string {
	var out []string
	for p := range l.Files {
		if strings.HasSuffix(p, fsutil.TempSuffix) ||
			(strings.HasPrefix(p, "local/") && !strings.HasSuffix(p, ".parquet")) {
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return out
}

// Manifest reads tierd's manifest from its data directory (a missing file
// is an empty manifest, as for tierd) and decodes it with tierd's own
// reader.
func Manifest(ctx context.Context, s *tierd.Stack) (*manifest.Manifest, error) {
	v, err := s.TierdData()
	if err != nil {
		return nil, err
	}
	b, err := v.ReadFile(ctx, manifest.FileName)
	if err != nil && datavol.CodeOf(err) != datavol.CodeNotFound {
		return nil, fmt.Errorf("datadir: %w", err)
	}
	// manifest.Load reads a directory: give it one holding this copy.
	dir, err := os.MkdirTemp("", "tierchaos-manifest-")
	if err != nil {
		return nil, fmt.Errorf("datadir: %w", err)
	}
	defer os.RemoveAll(dir)
	if b != nil {
		if err := os.WriteFile(filepath.Join(dir, manifest.FileName), b, 0o600); err != nil {
			return nil, fmt.Errorf("datadir: %w", err)
		}
	}
	m, err := manifest.Load(dir)
	if err != nil {
		return nil, fmt.Errorf("datadir: %w", err)
	}
	return m, nil
}

// Space is the file system's view of the data volume, in bytes.
type Space = datavol.Space

// Statfs reports the size and free space of the file system holding
// tierd's data directory.
func Statfs(ctx context.Context, s *tierd.Stack) (Space, error) {
	v, err := s.TierdData()
	if err != nil {
		return Space{}, err
	}
	sp, err := v.Statfs(ctx)
	if err != nil {
		return Space{}, fmt.Errorf("datadir: %w", err)
	}
	return sp, nil
}

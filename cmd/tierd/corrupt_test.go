package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tierchaos/tierchaos/system/api"
	"github.com/tierchaos/tierchaos/system/config"
	"github.com/tierchaos/tierchaos/system/manifest"
	"github.com/tierchaos/tierchaos/system/store"
)

// TestDamagedDataRefusesToStart: tierd does not start on a data folder
// whose WAL has a bad record followed by intact ones, or whose manifest
// fails its checksum; the error starts with the stable code
// data_corrupted and names the file (and, for the WAL, the offset).
func TestDamagedDataRefusesToStart(t *testing.T) {
	cases := []struct {
		name   string
		damage func(t *testing.T, dir string) (file, detail string)
	}{
		{"bad WAL record before intact ones", func(t *testing.T, dir string) (string, string) {
			segs, err := filepath.Glob(filepath.Join(dir, "wal", "wal-*.log"))
			require.NoError(t, err)
			for _, p := range segs {
				b, err := os.ReadFile(p)
				require.NoError(t, err)
				if len(b) == 0 {
					continue
				}
				b[len(b)/2] ^= 0x20
				require.NoError(t, os.WriteFile(p, b, 0o644))
				return p, "offset"
			}
			t.Fatal("no WAL record")
			return "", ""
		}},
		{"manifest checksum", func(t *testing.T, dir string) (string, string) {
			p := filepath.Join(dir, manifest.FileName)
			b, err := os.ReadFile(p)
			require.NoError(t, err)
			b = bytes.Replace(b, []byte(`"dimension":4`), []byte(`"dimension":5`), 1)
			require.NoError(t, os.WriteFile(p, b, 0o644))
			return p, "checksum mismatch"
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			d := config.Default()
			s, err := store.Open(store.Options{DataDir: dir, Limits: d.Limits, WAL: d.WAL}, slog.New(slog.NewTextHandler(io.Discard, nil)))
			require.NoError(t, err)
			ctx := context.Background()
			_, err = s.Create(ctx, api.CreateCollectionRequest{Name: "c", Dimension: 4, Metric: api.MetricL2})
			require.NoError(t, err)
			for i := range 6 {
				_, err := s.Insert(ctx, "c", []api.Vector{{ID: fmt.Sprintf("v%d", i), Values: []float32{1, 2, 3, float32(i)}}})
				require.NoError(t, err)
			}
			require.NoError(t, s.Close())
			file, detail := tc.damage(t, dir)
			env := map[string]string{"TIERD_DATA_DIR": dir, "TIERD_LISTEN_ADDR": "127.0.0.1:0", "TIERD_GRPC_ADDR": "127.0.0.1:0"}
			err = run(nil, lookup(env), io.Discard, io.Discard)
			require.Error(t, err)
			require.True(t, strings.HasPrefix(err.Error(), api.CodeDataCorrupted+": "), "%v", err)
			require.ErrorContains(t, err, file)
			require.ErrorContains(t, err, detail)
		})
	}
}

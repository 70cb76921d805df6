package runner

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tierchaos/tierchaos/load"
	"github.com/tierchaos/tierchaos/load/progress"
	"github.com/tierchaos/tierchaos/load/report"
)

// fakeSystem is a service the runner knows nothing about: two
// operations, "get" always answering and "put" failing every third call
// with the code "conflict"; it counts setups, cleanups and calls.
type fakeSystem struct {
	notReady             atomic.Int32 // Ready fails this many more times
	setups, cleanups     atomic.Int32
	gets, puts, conflict atomic.Int64
}

func (f *fakeSystem) Where() string { return "fake://kv" }
func (f *fakeSystem) API() string   { return "fake" }

func (f *fakeSystem) Ready(context.Context) error {
	if f.notReady.Add(-1) >= 0 {
		return errors.New("starting")
	}
	return nil
}

func (f *fakeSystem) Setup(context.Context) (load.Workload, error) {
	f.setups.Add(1)
	return f, nil
}

func (f *fakeSystem) Ops() []load.Op {
	return []load.Op{
		load.Simple("get", 3, func(context.Context) error { f.gets.Add(1); return nil }),
		load.Simple("put", 1, func(context.Context) error {
			if f.puts.Add(1)%3 == 0 {
				f.conflict.Add(1)
				return load.WithCode("conflict", errors.New("version moved"))
			}
			return nil
		}),
	}
}

func (f *fakeSystem) Cleanup(context.Context) error {
	f.cleanups.Add(1)
	return nil
}

// TestRunDrivesAnySystem: the runner drives a service it knows nothing
// about through load.System: it waits for it to be ready, prepares the
// workload once, mixes its operations by weight, counts errors under
// their codes, records the system's API and address, and cleans up.
func TestRunDrivesAnySystem(t *testing.T) {
	sys := &fakeSystem{}
	sys.notReady.Store(2)
	out := t.TempDir()
	oc, err := Run(context.Background(), Options{
		Name: "fake", OutDir: out, System: sys, Seed: 5,
		Rate: 100, Duration: 2 * time.Second,
		Progress: progress.Plain, ProgressOut: io.Discard, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	require.NoError(t, err)
	assert.Equal(t, int32(1), sys.setups.Load())
	assert.Equal(t, int32(1), sys.cleanups.Load())
	rep, err := report.Read(filepath.Join(out, report.JSONFile))
	require.NoError(t, err)
	assert.Equal(t, "fake", rep.Run.API)
	assert.Equal(t, int64(200), rep.Overall.Scheduled, "100 req/s for 2 s")
	byName := map[string]report.Op{}
	for _, op := range rep.Ops {
		byName[op.Name] = op
	}
	require.Contains(t, byName, "get")
	require.Contains(t, byName, "put")
	assert.Equal(t, sys.gets.Load(), byName["get"].Completed, "every get the service saw is counted")
	assert.Equal(t, sys.puts.Load(), byName["put"].Completed)
	assert.Equal(t, map[string]int64{"conflict": sys.conflict.Load()}, byName["put"].Errors)
	assert.Greater(t, byName["get"].Completed, byName["put"].Completed, "weights 3:1")
	assert.Equal(t, oc.Report.Overall.Sent, rep.Overall.Sent)
}

package store

import (
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tierchaos/tierchaos/system/cold"
	"github.com/tierchaos/tierchaos/system/config"
	"github.com/tierchaos/tierchaos/uploader"
)

// TestBackgroundDeletesStartingWhileStopping starts background deletes
// from many goroutines while the store halts (as a promotion finishing
// during an in-process kill does). Under -race this caught bg.Add racing
// with bg.Wait; it also checks that no delete starts after the stop and
// that a refused delete leaves its key to the pending deletes.
func TestBackgroundDeletesStartingWhileStopping(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for i := range 20 {
		objs := uploader.NewMemStore()
		cs, err := cold.New(objs, cold.Options{OpTimeout: 2 * time.Second, MaxRetries: 1, PartSize: 5 << 20, Concurrency: 2}, log)
		require.NoError(t, err)
		d := config.Default()
		s, err := Open(Options{DataDir: t.TempDir(), Limits: d.Limits, WAL: d.WAL, Cold: cs}, log)
		require.NoError(t, err)
		var wg sync.WaitGroup
		for j := range 8 {
			wg.Go(func() { s.deleteLater([]string{"collections/x/cold/" + string(rune('a'+j))}) })
		}
		if i%2 == 0 {
			s.Halt()
		} else {
			require.NoError(t, s.Close())
		}
		wg.Wait()
		s.deleteLater([]string{"collections/x/cold/late"})
		s.bg.Wait() // returns at once: nothing may start after the stop
	}
}

package cold

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tierchaos/tierchaos/system/snapshot"
	"github.com/tierchaos/tierchaos/uploader"
)

func newStore(t *testing.T) (*Store, *uploader.MemStore) {
	t.Helper()
	m := uploader.NewMemStore()
	s, err := New(m, Options{Prefix: "p/", OpTimeout: time.Second, MaxRetries: 2, PartSize: 5 << 20, Concurrency: 2},
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	require.NoError(t, err)
	return s, m
}

func TestLayoutAndBudget(t *testing.T) {
	s, _ := newStore(t)
	require.Equal(t, "p/collections/c/", s.CollectionPrefix("c"))
	require.Equal(t, "p/collections/c/data/x.parquet", s.DataKey("c", "x"))
	require.Equal(t, "p/collections/c/snapshots/x.parquet", s.SnapshotKey("c", "x"))
	require.Equal(t, 800*time.Millisecond, s.Budget(1000), "one round minus two cleanup timeouts")
	require.Equal(t, 2800*time.Millisecond, s.Budget(12<<20), "3 parts at concurrency 2: 3 rounds")
}

func TestUploadVerifyDownload(t *testing.T) {
	ctx := context.Background()
	s, m := newStore(t)
	data, info, err := snapshot.EncodeBytes(2, []string{"a"}, []float32{1, 2})
	require.NoError(t, err)
	key := s.DataKey("c", "1")
	require.NoError(t, s.Upload(ctx, key, data, info))
	got, err := s.Download(ctx, key, info.Size)
	require.NoError(t, err)
	require.Equal(t, data, got)
	// A stored object whose metadata checksum differs fails verification.
	bad := info
	bad.Checksum = strings.Repeat("0", 16)
	require.ErrorIs(t, s.Verify(ctx, key, bad), snapshot.ErrCorrupt)
	bad = info
	bad.Size++
	require.ErrorIs(t, s.Verify(ctx, key, bad), snapshot.ErrCorrupt)
	// Missing objects are ErrMissing, unreachable S3 is ErrUnavailable.
	_, err = s.Download(ctx, s.DataKey("c", "nope"), 1)
	require.ErrorIs(t, err, ErrMissing)
	id, err := m.Inject(uploader.Fault{Kind: uploader.FaultConnReset})
	require.NoError(t, err)
	_, err = s.Download(ctx, key, info.Size)
	require.ErrorIs(t, err, ErrUnavailable)
	require.ErrorIs(t, s.Cleanup(key), ErrUnavailable)
	m.RemoveFault(id)
	require.NoError(t, s.Purge(ctx, key))
	list, err := s.List(ctx, s.RootPrefix())
	require.NoError(t, err)
	require.Empty(t, list)
}

// TestOnDoneReportsEachOperation: every operation reports once when it
// ends, with its error; a retried one once, after its retries.
func TestOnDoneReportsEachOperation(t *testing.T) {
	ctx := context.Background()
	type done struct {
		op  string
		err bool
	}
	var got []done
	m := uploader.NewMemStore()
	s, err := New(m, Options{Prefix: "p/", OpTimeout: time.Second, MaxRetries: 2, PartSize: 5 << 20, Concurrency: 2,
		BackoffBase: time.Millisecond, BackoffCap: time.Millisecond,
		OnDone: func(op string, d time.Duration, err error) {
			require.Positive(t, d)
			got = append(got, done{op, err != nil})
		}}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	require.NoError(t, err)
	data, info, err := snapshot.EncodeBytes(2, []string{"a"}, []float32{1, 2})
	require.NoError(t, err)
	key := s.DataKey("c", "1")
	require.NoError(t, s.Upload(ctx, key, data, info))
	_, err = s.Download(ctx, key, info.Size)
	require.NoError(t, err)
	id, err := m.Inject(uploader.Fault{Kind: uploader.FaultConnReset})
	require.NoError(t, err)
	_, err = s.Download(ctx, key, info.Size)
	require.ErrorIs(t, err, ErrUnavailable)
	m.RemoveFault(id)
	require.NoError(t, s.Delete(ctx, key))
	// A pack's upload is a put too.
	b, err := s.NewBatch(nil)
	require.NoError(t, err)
	_, err = b.Add(s.PackMemberKey("c", "2"), data)
	require.NoError(t, err)
	require.NoError(t, b.Close(ctx))
	require.Equal(t, []done{{"put", false}, {"stat", false}, {"get", false}, {"get", true}, {"delete", false}, {"put", false}}, got)
}

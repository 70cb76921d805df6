package tierd

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tierchaos/tierchaos/harness/fault"
	"github.com/tierchaos/tierchaos/harness/tierd/fixture"
)

// Inject injects f into the stack for the test t (fault.Inject) and
// returns its Active (nil for an instant); a window fault is removed again
// when t ends (NewCase clears every fault then too). An S3 fault that
// names a row's collections by key glob (fixture.RowKeys, ending in
// "-????????/") must name those of t's own row: a table whose rows declare
// their faults up front cannot hand one row's fault to another.
func (s *Stack) Inject(ctx context.Context, t *testing.T, f fault.Fault) fault.Active {
	t.Helper()
	if s3, ok := f.(fault.S3); ok && strings.Contains(s3.Key, "-????????/") {
		own := fixture.ObjectPrefix("", fixture.NameGlob(t.Name()))
		require.True(t, strings.HasPrefix(s3.Key, own), "fault %s names the collections of another row than %s (%s)", f, t.Name(), own)
	}
	a, err := fault.Inject(ctx, s, f)
	require.NoError(t, err, "inject %s", f)
	if a != nil {
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := a.Remove(ctx); err != nil {
				t.Errorf("remove %s: %v", f, err)
			}
		})
	}
	return a
}

// InjectS3 injects an S3 fault (Inject) and returns its rule in the S3
// fault layer, whose counters the row reads.
func (s *Stack) InjectS3(ctx context.Context, t *testing.T, f fault.S3) *fault.S3Rule {
	t.Helper()
	r, ok := s.Inject(ctx, t, f).(*fault.S3Rule)
	require.True(t, ok, "an applied S3 fault is an *fault.S3Rule")
	return r
}

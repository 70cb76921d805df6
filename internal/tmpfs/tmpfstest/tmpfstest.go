// Package tmpfstest gives a test a size-limited tmpfs (package tmpfs: no
// root needed where user namespaces are enabled) for the test's lifetime.
package tmpfstest

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/tierchaos/tierchaos/internal/tmpfs"
)

// Dir returns the path of a new tmpfs of size, freed when t ends. When this
// machine allows none, the test is skipped with the reason, or fails when
// CI is set.
func Dir(t testing.TB, size string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	f, err := tmpfs.New(ctx, size, tmpfs.ModeAuto)
	if errors.Is(err, tmpfs.ErrUnavailable) && os.Getenv("CI") == "" {
		t.Skipf("no %s tmpfs can be made here (set CI=true to make this a failure): %v", size, err)
	}
	if err != nil {
		t.Fatalf("a %s tmpfs: %v", size, err)
	}
	t.Cleanup(func() {
		if err := f.Close(); err != nil {
			t.Errorf("free the %s tmpfs: %v", size, err)
		}
	})
	return f.Dir()
}

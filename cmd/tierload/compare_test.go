package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tierchaos/tierchaos/load"
	"github.com/tierchaos/tierchaos/load/report"
)

// shortRun drives an httptest server whose handler takes delay for 2 s at
// 100 req/s and writes the report folder; it returns report.json's path.
func shortRun(t *testing.T, delay time.Duration) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	hc := srv.Client()
	get := func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
		if err != nil {
			return err
		}
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return &load.StatusError{Status: resp.StatusCode}
		}
		return nil
	}
	res, err := load.Run(context.Background(), load.Config{
		Ops:  []load.Op{load.Simple("search", 7, get), load.Simple("insert", 3, get)},
		Rate: 100, Duration: 2 * time.Second, Seed: 1,
	})
	require.NoError(t, err)
	rep, err := report.Build(report.Input{Name: fmt.Sprintf("handler %v", delay), Result: res})
	require.NoError(t, err)
	dir := t.TempDir()
	_, err = report.Write(dir, rep)
	require.NoError(t, err)
	return filepath.Join(dir, report.JSONFile)
}

// TestCompareFlagsSlowdown: with the default thresholds, a run against a
// handler twice as slow is flagged (exit 1) and two runs against the same
// handler pass (exit 0).
func TestCompareFlagsSlowdown(t *testing.T) {
	// Scheduling noise on a loaded machine adds milliseconds, not a share:
	// a 50 ms handler keeps it well inside the +20% p95 threshold.
	const delay = 50 * time.Millisecond
	base := shortRun(t, delay)
	same := shortRun(t, delay)
	slow := shortRun(t, 2*delay)

	var out, errOut bytes.Buffer
	code := run([]string{"compare", base, same}, &out, &errOut)
	assert.Equal(t, exitOK, code, "equal runs:\n%s%s", out.String(), errOut.String())
	assert.Contains(t, out.String(), "no regression")

	out.Reset()
	code = run([]string{"compare", base, slow}, &out, &errOut)
	assert.Equal(t, exitBudget, code, "slowed 2x:\n%s%s", out.String(), errOut.String())
	for _, want := range []string{"| search | p50 |", "| search | p95 |", "| insert | p50 |", "| all | p95 |"} {
		assert.Regexp(t, want+`[^\n]*\*\*REGRESSED\*\*`, out.String())
	}

	// With the latency checks off the slow run passes (same errors, same rate).
	out.Reset()
	code = run([]string{"compare", "-p50", "-1", "-p95", "-1", "-p99", "-1", base, slow}, &out, &errOut)
	assert.Equal(t, exitOK, code, out.String())
}

func TestCompareUsage(t *testing.T) {
	var out, errOut bytes.Buffer
	assert.Equal(t, exitError, run([]string{"compare", "only-one.json"}, &out, &errOut))
	assert.Contains(t, errOut.String(), "usage: tierload compare")
	errOut.Reset()
	assert.Equal(t, exitError, run([]string{"compare", "missing-a.json", "missing-b.json"}, &out, &errOut))
	assert.Contains(t, errOut.String(), "missing-a.json")
	errOut.Reset()
	assert.Equal(t, exitError, run([]string{"compare", "-min-delta", "-1ms", "a", "b"}, &out, &errOut))
	assert.Contains(t, errOut.String(), "invalid thresholds")
	assert.Equal(t, exitOK, run([]string{"compare", "-h"}, &out, &errOut))
}

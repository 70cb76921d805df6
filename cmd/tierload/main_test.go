package main

import (
	"bytes"
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tierchaos/tierchaos/load"
	"github.com/tierchaos/tierchaos/load/budget"
	"github.com/tierchaos/tierchaos/load/progress"
	"github.com/tierchaos/tierchaos/load/workload"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		ok    bool
		check func(t *testing.T, c *config)
	}{
		{"defaults: the seed's gate", nil, true, func(t *testing.T, c *config) {
			assert.Equal(t, 100.0, c.opts.Rate)
			assert.Equal(t, 60*time.Second, c.opts.Duration)
			assert.Zero(t, c.opts.Budget.P95, "no whole-mix p95 gate: tier requests alone sit near 25 ms")
			assert.Equal(t, "search:p95=25ms,*:errors=0.1%", c.opts.OpBudget.String())
			assert.Equal(t, 0.001, c.opts.Budget.MaxErrorRate)
			assert.Equal(t, 0.8, c.opts.Budget.MaxCPU)
			assert.Equal(t, 0.1, c.opts.Budget.MaxHeapGrowth)
			assert.Equal(t, workload.DefaultMix(), c.opts.Workload.Mix)
			assert.False(t, c.seedSet)
			assert.Equal(t, load.Constant, c.opts.Arrival)
			assert.True(t, c.failOnBudget)
		}},
		{"explicit", []string{"-url", "http://x:1", "-pid", "42", "-rate", "1000", "-duration", "5m", "-seed", "9",
			"-mix", "search=1", "-arrival", "poisson", "-progress", "plain"}, true, func(t *testing.T, c *config) {
			assert.Equal(t, uint64(9), c.opts.Workload.Seed)
			assert.True(t, c.seedSet)
			assert.Equal(t, 42, c.pid)
			assert.Equal(t, workload.Mix{workload.OpSearch: 1}, c.opts.Workload.Mix)
			assert.Equal(t, load.Poisson, c.opts.Arrival)
			assert.Equal(t, progress.Plain, c.opts.Progress)
		}},
		{"stack with fault", []string{"-s3-latency", "20ms", "-s3-jitter", "5ms"}, true, nil},
		{"per-op budget", []string{"-budget", "search:p95=25ms,insert:p95=50ms,tier:p95=1s,*:errors=0.1%"}, true, func(t *testing.T, c *config) {
			require.Len(t, c.opts.OpBudget, 4)
			assert.Equal(t, budget.Gate{Scope: "tier", Metric: budget.MetricP95, Limit: time.Second}, c.opts.OpBudget[2])
		}},
		{"no per-op budget", []string{"-budget", ""}, true, func(t *testing.T, c *config) { assert.Empty(t, c.opts.OpBudget) }},
		{"bad budget", []string{"-budget", "search:p95=soon"}, false, nil},
		{"bad mix", []string{"-mix", "delete=1"}, false, nil},
		{"bad arrival", []string{"-arrival", "bursty"}, false, nil},
		{"bad progress", []string{"-progress", "fancy"}, false, nil},
		{"pid without url", []string{"-pid", "1"}, false, nil},
		{"fault with url", []string{"-url", "http://x:1", "-s3-latency", "1ms"}, false, nil},
		{"jitter over latency", []string{"-s3-latency", "1ms", "-s3-jitter", "2ms"}, false, nil},
		{"zero rate", []string{"-rate", "0"}, false, nil},
		{"ramp too long", []string{"-duration", "1s", "-ramp-up", "2s"}, false, nil},
		{"bad shares", []string{"-warm-share", "0.9", "-cold-share", "0.9"}, false, nil},
		{"stray argument", []string{"now"}, false, nil},
		{"unknown flag", []string{"-fast"}, false, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parse(tt.args, io.Discard)
			if !tt.ok {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			if tt.check != nil {
				tt.check(t, c)
			}
		})
	}
}

func TestRunUsageErrorExitStatus(t *testing.T) {
	var out, errOut bytes.Buffer
	assert.Equal(t, exitError, run([]string{"-rate", "-1"}, &out, &errOut))
	assert.Contains(t, errOut.String(), "rate -1 must be positive")
	assert.Equal(t, exitOK, run([]string{"-h"}, &out, &errOut))
	errOut.Reset()
	assert.Equal(t, exitError, run([]string{"-budget", "search:p95"}, &out, &errOut))
	assert.Contains(t, errOut.String(), "-budget: budget_spec: clause 1")
}

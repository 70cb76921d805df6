package trend

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tierchaos/tierchaos/load/report"
)

func op(name string, p50, p95, p99, errRate, rate float64) report.Op {
	return report.Op{Name: name, ErrorRate: errRate, AchievedRate: rate,
		Latency: report.Latency{P50MS: p50, P95MS: p95, P99MS: p99}}
}

func rep(ops ...report.Op) *report.Report {
	r := &report.Report{Name: "nightly", Started: time.Date(2026, 12, 1, 2, 17, 0, 0, time.UTC), Run: report.RunInfo{Rate: 100, Seed: 7}}
	r.Ops = ops
	r.Overall = op("all", 0, 0, 0, 0, 100)
	for _, o := range ops {
		r.Overall.Latency.P95MS = max(r.Overall.Latency.P95MS, o.Latency.P95MS)
	}
	return r
}

func TestCompare(t *testing.T) {
	base := rep(op("search", 4, 10, 20, 0, 70), op("tier", 20, 30, 60, 0.0005, 10))
	tests := []struct {
		name string
		new  *report.Report
		th   Thresholds
		want []string // regressed "op metric"
	}{
		{"same", rep(op("search", 4, 10, 20, 0, 70), op("tier", 20, 30, 60, 0.0005, 10)), DefaultThresholds(), nil},
		{"p95 +20% exactly holds", rep(op("search", 4, 12, 20, 0, 70), op("tier", 20, 30, 60, 0.0005, 10)), DefaultThresholds(), nil},
		{"search p95 +30%", rep(op("search", 4, 13, 20, 0, 70), op("tier", 20, 30, 60, 0.0005, 10)), DefaultThresholds(), []string{"search p95"}},
		{"below the noise floor", rep(op("search", 1.5, 10, 20, 0, 70), op("tier", 20, 30, 60, 0.0005, 10)),
			Thresholds{P50: 0.2, P95: 0.2, P99: 0.5, MinLatencyDelta: 2 * time.Millisecond}, nil},
		{"p50 doubled past the floor", rep(op("search", 8, 10, 20, 0, 70), op("tier", 20, 30, 60, 0.0005, 10)), DefaultThresholds(), []string{"search p50"}},
		{"p99 +40% within +50%", rep(op("search", 4, 10, 28, 0, 70), op("tier", 20, 30, 60, 0.0005, 10)), DefaultThresholds(), nil},
		{"errors up 0.2 points", rep(op("search", 4, 10, 20, 0.002, 70), op("tier", 20, 30, 60, 0.0005, 10)), DefaultThresholds(), []string{"search error rate"}},
		{"errors down", rep(op("search", 4, 10, 20, 0, 70), op("tier", 20, 30, 60, 0, 10)), DefaultThresholds(), nil},
		{"rate dropped 5%", rep(op("search", 4, 10, 20, 0, 66.5), op("tier", 20, 30, 60, 0.0005, 10)), DefaultThresholds(), []string{"search achieved rate"}},
		{"whole mix p95 regresses too", rep(op("search", 4, 10, 20, 0, 70), op("tier", 20, 60, 60, 0.0005, 10)), DefaultThresholds(), []string{"tier p95", "all p95"}},
		{"disabled p95 check", rep(op("search", 4, 13, 20, 0, 70), op("tier", 20, 30, 60, 0.0005, 10)),
			Thresholds{P50: 0.2, P95: -1, P99: 0.5, ErrorRate: 0.001, AchievedRate: 0.01}, nil},
		{"op only in one report is a note", rep(op("search", 4, 10, 20, 0, 70), op("insert", 5, 25, 30, 0, 20)), DefaultThresholds(), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.NoError(t, tt.th.Validate())
			c := Compare(base, tt.new, tt.th)
			var got []string
			for _, r := range c.Regressions() {
				got = append(got, r.Op+" "+r.Metric)
			}
			assert.Equal(t, tt.want, got)
		})
	}

	c := Compare(base, rep(op("search", 4, 13, 20, 0, 70), op("insert", 5, 6, 7, 0, 20)), DefaultThresholds())
	md := c.Markdown()
	assert.Contains(t, md, "## Load trend: **1 regression(s)**")
	assert.Contains(t, md, "| search | p95 | 10.00ms | 13.00ms | +30.0% | +20% and +2ms | **REGRESSED** |")
	assert.Contains(t, md, "| insert | | | | | | only in the new report |")
	assert.Contains(t, md, "| tier | | | | | | only in the old report |")
	assert.Contains(t, md, "nightly (2026-12-01 02:17 UTC, seed 7, 100 req/s, rest API)")
	assert.True(t, strings.Contains(Compare(base, base, DefaultThresholds()).Markdown(), "no regression"))
}

func TestThresholdsValidate(t *testing.T) {
	for _, th := range []Thresholds{{MinLatencyDelta: -1}, {ErrorRate: -0.1}, {P95: nan()}} {
		require.ErrorIs(t, th.Validate(), ErrThresholds)
	}
}

func nan() float64 { var z float64; return z / z }

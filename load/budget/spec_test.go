package budget

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseSpec(t *testing.T) {
	tests := []struct {
		in   string
		want Spec
	}{
		{"", nil},
		{"  ", nil},
		{"search:p95=25ms", Spec{{Scope: "search", Metric: MetricP95, Limit: 25 * time.Millisecond}}},
		{"search:p95=25ms,insert:p95=50ms,tier:p95=1s,*:errors=0.1%", Spec{
			{Scope: "search", Metric: MetricP95, Limit: 25 * time.Millisecond},
			{Scope: "insert", Metric: MetricP95, Limit: 50 * time.Millisecond},
			{Scope: "tier", Metric: MetricP95, Limit: time.Second},
			{Scope: "*", Metric: MetricErrors, MaxErrorRate: 0.001},
		}},
		{" search : p99.9 = 2s , all:errors=0.001 ", Spec{
			{Scope: "search", Metric: MetricP999, Limit: 2 * time.Second},
			{Scope: "all", Metric: MetricErrors, MaxErrorRate: 0.001},
		}},
		{"insert:max=1m,insert:p50=1ms,insert:p90=2ms,insert:p99=3ms", Spec{
			{Scope: "insert", Metric: MetricMax, Limit: time.Minute},
			{Scope: "insert", Metric: MetricP50, Limit: time.Millisecond},
			{Scope: "insert", Metric: MetricP90, Limit: 2 * time.Millisecond},
			{Scope: "insert", Metric: MetricP99, Limit: 3 * time.Millisecond},
		}},
		{"*:errors=0%", Spec{{Scope: "*", Metric: MetricErrors, MaxErrorRate: NoErrors}}},
		{"*:errors=100%", Spec{{Scope: "*", Metric: MetricErrors, MaxErrorRate: 1}}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseSpec(tt.in)
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
			// String gives back an equivalent spec.
			again, err := ParseSpec(got.String())
			require.NoError(t, err)
			assert.Equal(t, got, again)
		})
	}
}

func TestParseSpecErrors(t *testing.T) {
	tests := []struct {
		in     string
		clause int
		reason string
	}{
		{"search", 1, "want scope:metric=value"},
		{"search:p95", 1, "want metric=value"},
		{":p95=1ms", 1, "empty scope"},
		{"search:p95=25ms,", 2, "empty clause"},
		{"search:p95=25ms,,tier:p95=1s", 2, "empty clause"},
		{"sea rch:p95=1ms", 1, "want an operation name"},
		{"search:p97=1ms", 1, `unknown metric "p97"`},
		{"search:p95=fast", 1, "positive duration"},
		{"search:p95=0s", 1, "positive duration"},
		{"search:p95=-1ms", 1, "positive duration"},
		{"search:p95=25", 1, "positive duration"},
		{"search:errors=lots", 1, "percentage"},
		{"search:errors=150%", 1, "outside 0..100%"},
		{"search:errors=-0.1%", 1, "outside 0..100%"},
		{"search:errors=NaN", 1, "percentage"},
		{"search:p95=1ms,tier:p95=1s,search:p95=2ms", 3, "search:p95 given twice"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseSpec(tt.in)
			require.Error(t, err)
			assert.Nil(t, got)
			require.ErrorIs(t, err, ErrSpec)
			var se *SpecError
			require.True(t, errors.As(err, &se))
			assert.Equal(t, tt.clause, se.Clause)
			assert.Contains(t, se.Reason, tt.reason)
			assert.Equal(t, CodeSpec, se.ErrorCode())
			assert.Regexp(t, `^budget_spec: clause \d+ `, err.Error())
		})
	}
}

func TestCheckSpec(t *testing.T) {
	ms := time.Millisecond
	ops := []OpMeasured{
		{Name: "search", Completed: 700, P95: 20 * ms, P99: 40 * ms, ErrorRate: 0},
		{Name: "insert", Completed: 200, P95: 60 * ms, ErrorRate: 0.002},
		{Name: "tier", Completed: 100, P95: 900 * ms, ErrorRate: 0},
	}
	all := OpMeasured{Name: WholeMix, Completed: 1000, P95: 30 * ms, ErrorRate: 0.0004}
	type row struct {
		op, gate string
		ok       bool
	}
	rows := func(ls []Line) []row {
		var out []row
		for _, l := range ls {
			out = append(out, row{l.Op, l.Name, l.OK})
		}
		return out
	}
	tests := []struct {
		spec string
		want []row
	}{
		{"", nil},
		{"search:p95=25ms,insert:p95=50ms,tier:p95=1s,*:errors=0.1%", []row{
			{"search", "p95", true}, {"search", "errors", true},
			{"insert", "p95", false}, {"insert", "errors", false},
			{"tier", "p95", true}, {"tier", "errors", true},
		}},
		// An operation's own gate replaces the "*" gate of that metric.
		{"*:p95=25ms,tier:p95=1s", []row{{"search", "p95", true}, {"insert", "p95", false}, {"tier", "p95", true}}},
		{"insert:errors=1%,*:errors=0.1%", []row{{"search", "errors", true}, {"insert", "errors", true}, {"tier", "errors", true}}},
		// "all" gates the whole mix only.
		{"all:p95=25ms,all:errors=0.1%", []row{{"all", "p95", false}, {"all", "errors", true}}},
		{"search:p99=39ms", []row{{"search", "p99", false}}},
		// A gate on an operation that did not run fails.
		{"upsert:p95=1s", []row{{"upsert", "p95", false}}},
		{"*:errors=0%", []row{{"search", "errors", true}, {"insert", "errors", false}, {"tier", "errors", true}}},
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			spec, err := ParseSpec(tt.spec)
			require.NoError(t, err)
			assert.Equal(t, tt.want, rows(CheckSpec(spec, ops, all)))
		})
	}
	// Nothing completed: a latency gate cannot hold.
	l := CheckSpec(Spec{{Scope: "search", Metric: MetricP95, Limit: time.Second}}, []OpMeasured{{Name: "search"}}, all)
	require.Len(t, l, 1)
	assert.False(t, l[0].OK)
	assert.Equal(t, "nothing completed", l[0].Measured)

	md := Report{Lines: CheckSpec(Spec{{Scope: "insert", Metric: MetricP95, Limit: 50 * ms}}, ops, all)}.Markdown()
	assert.Contains(t, md, "| insert | p95 | ≤ 50ms | 60ms | **FAIL** |")
}

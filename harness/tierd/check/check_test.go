package check

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tierchaos/tierchaos/harness/tierd/history"
	"github.com/tierchaos/tierchaos/system/api"
)

// builder assembles a hand-written history with explicit timestamps.
type builder struct{ ops []history.Op }

func (b *builder) add(op history.Op) *builder {
	op.Index = len(b.ops)
	if op.Outcome == "" {
		op.Outcome = history.OK
	}
	if op.Collection == "" {
		op.Collection = "c"
	}
	b.ops = append(b.ops, op)
	return b
}

func vec(id string, vals ...float32) api.Vector { return api.Vector{ID: id, Values: vals} }

func create(call, ret int64, metric api.Metric) history.Op {
	return history.Op{Kind: history.KindCreateCollection, Call: call, Return: ret, Dimension: 2, Metric: metric}
}

func insert(call, ret int64, out history.Outcome, vs ...api.Vector) history.Op {
	return history.Op{Kind: history.KindInsert, Call: call, Return: ret, Outcome: out, Vectors: vs}
}

func search(call, ret int64, k int, q []float32, rs ...api.Result) history.Op {
	return history.Op{Kind: history.KindSearch, Call: call, Return: ret, K: k, Query: q, Results: rs}
}

func setTier(call, ret int64, target api.Tier, out history.Outcome, code string) history.Op {
	return history.Op{Kind: history.KindSetTier, Call: call, Return: ret, Target: target, Outcome: out, Code: code}
}

func getTier(call, ret int64, tier api.Tier) history.Op {
	return history.Op{Kind: history.KindGetCollection, Call: call, Return: ret, Tier: tier}
}

func final(vs ...api.Vector) history.Final {
	return history.NewFinal(map[string][]api.Vector{"c": vs})
}

func res(id string, score float64) api.Result { return api.Result{ID: id, Score: score} }

// requireViolation asserts that err is a *Failure of checker whose first
// violation mentions want, and that the named artifact files exist.
func requireViolation(t *testing.T, err error, checker, want string) {
	t.Helper()
	var f *Failure
	require.True(t, errors.As(err, &f), "want a violation of %s, got %v", checker, err)
	require.Contains(t, f.Checkers, checker)
	found := false
	for _, v := range f.Violations {
		if v.Checker == checker && strings.Contains(v.Message, want) {
			found = true
		}
	}
	require.True(t, found, "no %s violation mentions %q:\n%v", checker, want, err)
	require.NoError(t, f.ArtifactErr)
	require.Len(t, f.Files, 3)
	for _, p := range f.Files {
		st, serr := os.Stat(p)
		require.NoError(t, serr)
		assert.Positive(t, st.Size(), p)
		assert.Contains(t, err.Error(), p, "the error names every artifact")
	}
}

func newChecker(t *testing.T, ops []history.Op, cfg Config) *Checker {
	t.Helper()
	cfg.ArtifactDir = t.TempDir()
	c, err := New(ops, cfg)
	require.NoError(t, err)
	return c
}

func TestLostWrites(t *testing.T) {
	tests := []struct {
		name  string
		ops   *builder
		final history.Final
		want  string // "" = must pass
	}{
		{
			name: "acked writes and a later re-insert all present",
			ops: new(builder).add(create(1, 2, api.MetricDot)).
				add(insert(3, 4, history.OK, vec("a", 1, 1), vec("b", 2, 2))).
				add(insert(5, 6, history.OK, vec("a", 9, 9))),
			final: final(vec("a", 9, 9), vec("b", 2, 2)),
		},
		{
			name: "lost acknowledged write",
			ops: new(builder).add(create(1, 2, api.MetricDot)).
				add(insert(3, 4, history.OK, vec("a", 1, 1), vec("b", 2, 2))),
			final: final(vec("a", 1, 1)),
			want:  "acknowledged insert (op 1) is lost",
		},
		{
			name: "stale value after an acknowledged re-insert",
			ops: new(builder).add(create(1, 2, api.MetricDot)).
				add(insert(3, 4, history.OK, vec("a", 1, 1))).
				add(insert(5, 6, history.OK, vec("a", 9, 9))),
			final: final(vec("a", 1, 1)),
			want:  "not the values of any write that may be the last one",
		},
		{
			name: "concurrent re-inserts: either value may win (first)",
			ops: new(builder).add(create(1, 2, api.MetricDot)).
				add(insert(3, 8, history.OK, vec("a", 1, 1))).
				add(insert(4, 7, history.OK, vec("a", 9, 9))),
			final: final(vec("a", 1, 1)),
		},
		{
			name: "concurrent re-inserts: either value may win (second)",
			ops: new(builder).add(create(1, 2, api.MetricDot)).
				add(insert(3, 8, history.OK, vec("a", 1, 1))).
				add(insert(4, 7, history.OK, vec("a", 9, 9))),
			final: final(vec("a", 9, 9)),
		},
		{
			name: "unknown insert absent",
			ops: new(builder).add(create(1, 2, api.MetricDot)).
				add(insert(3, 4, history.Unknown, vec("a", 1, 1), vec("b", 2, 2))),
			final: final(),
		},
		{
			name: "unknown insert present, even over a later acked write",
			ops: new(builder).add(create(1, 2, api.MetricDot)).
				add(insert(3, 4, history.Unknown, vec("a", 1, 1), vec("b", 2, 2))).
				add(insert(5, 6, history.OK, vec("a", 7, 7))),
			final: final(vec("a", 1, 1), vec("b", 2, 2)),
		},
		{
			name: "torn unknown insert",
			ops: new(builder).add(create(1, 2, api.MetricDot)).
				add(insert(3, 4, history.Unknown, vec("a", 1, 1), vec("b", 2, 2))),
			final: final(vec("a", 1, 1)),
			want:  "torn insert",
		},
		{
			name: "failed insert must not appear",
			ops: new(builder).add(create(1, 2, api.MetricDot)).
				add(insert(3, 4, history.Failed, vec("a", 1, 1))),
			final: final(vec("a", 1, 1)),
			want:  "phantom",
		},
		{
			name: "ids known, values not read back",
			ops: new(builder).add(create(1, 2, api.MetricDot)).
				add(insert(3, 4, history.OK, vec("a", 1, 1))),
			final: history.Final{Collections: map[string]history.CollectionState{
				"c": {Exists: true, Vectors: map[string][]float32{"a": nil}},
			}},
		},
		{
			name:  "acknowledged collection gone",
			ops:   new(builder).add(create(1, 2, api.MetricDot)),
			final: history.NewFinal(nil, "c"),
			want:  "never deleted, but is gone",
		},
		{
			name: "deleted collection with its writes",
			ops: new(builder).add(create(1, 2, api.MetricDot)).
				add(insert(3, 4, history.OK, vec("a", 1, 1))).
				add(history.Op{Kind: history.KindDeleteCollection, Call: 5, Return: 6}),
			final: history.NewFinal(nil, "c"),
		},
		{
			name: "write resurrected after an acknowledged delete and re-create",
			ops: new(builder).add(create(1, 2, api.MetricDot)).
				add(insert(3, 4, history.OK, vec("a", 1, 1))).
				add(history.Op{Kind: history.KindDeleteCollection, Call: 5, Return: 6}).
				add(create(7, 8, api.MetricDot)),
			final: final(vec("a", 1, 1)),
			want:  "certainly wiped by a later delete, create or restore",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := newChecker(t, tt.ops.ops, Config{}).LostWrites(tt.final)
			if tt.want == "" {
				require.NoError(t, err)
				return
			}
			requireViolation(t, err, LostWritesName, tt.want)
		})
	}
}

func TestLostWritesNeedsEveryCollection(t *testing.T) {
	ops := new(builder).add(create(1, 2, api.MetricDot)).ops
	err := newChecker(t, ops, Config{}).LostWrites(history.Final{})
	require.ErrorIs(t, err, ErrConfig)
}

func TestSearches(t *testing.T) {
	q := []float32{1, 0}
	base := func() *builder {
		return new(builder).add(create(1, 2, api.MetricDot)).
			add(insert(3, 4, history.OK, vec("a", 5, 0), vec("b", 3, 0)))
	}
	tests := []struct {
		name string
		ops  *builder
		want string
	}{
		{"quiet search equals the oracle", base().add(search(5, 6, 2, q, res("a", 5), res("b", 3))), ""},
		{"stale read misses an acknowledged vector",
			base().add(insert(5, 6, history.OK, vec("c", 9, 0))).
				add(search(7, 8, 2, q, res("a", 5), res("b", 3))),
			"stale or incomplete read"},
		{"stale value after an acknowledged re-insert",
			base().add(insert(5, 6, history.OK, vec("a", 1, 0))).
				add(search(7, 8, 1, q, res("a", 5))),
			"reported score 5"},
		{"concurrent insert may be visible",
			base().add(insert(5, 10, history.OK, vec("c", 9, 0))).
				add(search(6, 7, 1, q, res("c", 9))), ""},
		{"concurrent insert may be invisible",
			base().add(insert(5, 10, history.OK, vec("c", 9, 0))).
				add(search(6, 7, 1, q, res("a", 5))), ""},
		{"unknown insert may be visible later",
			base().add(insert(5, 6, history.Unknown, vec("c", 9, 0))).
				add(search(20, 21, 1, q, res("c", 9))), ""},
		{"read from the future",
			base().add(search(5, 6, 1, q, res("c", 9))).
				add(insert(7, 8, history.OK, vec("c", 9, 0))),
			"id is not in the collection"},
		{"wrong score", base().add(search(5, 6, 1, q, res("a", 4))), "oracle score"},
		{"tie order", new(builder).add(create(1, 2, api.MetricDot)).
			add(insert(3, 4, history.OK, vec("x", 1, 0), vec("y", 1, 0))).
			add(search(5, 6, 2, q, res("y", 1), res("x", 1))),
			"ordered by id ascending"},
		{"truncated result", base().add(search(5, 6, 5, q, res("a", 5))), "existed and was not returned"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := newChecker(t, tt.ops.ops, Config{}).Searches()
			if tt.want == "" {
				require.NoError(t, err)
				return
			}
			requireViolation(t, err, SearchesName, tt.want)
		})
	}
}

func TestSearchesNeedMetric(t *testing.T) {
	ops := new(builder).add(search(1, 2, 1, []float32{1, 0})).ops
	require.ErrorIs(t, newChecker(t, ops, Config{}).Searches(), ErrConfig)
	require.NoError(t, newChecker(t, ops, Config{Metrics: map[string]api.Metric{"c": api.MetricL2}}).Searches())
	observed := new(builder).add(search(1, 2, 1, []float32{1, 0})).
		add(history.Op{Kind: history.KindGetCollection, Call: 3, Return: 4, Tier: api.TierHot, Metric: api.MetricL2}).ops
	require.NoError(t, newChecker(t, observed, Config{}).Searches(), "a get_collection tells the metric")
}

func TestTiers(t *testing.T) {
	searchOK := func(call, ret int64) history.Op { return search(call, ret, 1, []float32{1, 0}) }
	tests := []struct {
		name       string
		ops        *builder
		autoDemote bool
		wantFail   bool
	}{
		{name: "sequential demote, observe, promote on search",
			ops: new(builder).add(create(1, 2, api.MetricDot)).
				add(setTier(3, 4, api.TierWarm, history.OK, "")).
				add(getTier(5, 6, api.TierWarm)).
				add(setTier(7, 8, api.TierCold, history.OK, "")).
				add(getTier(9, 10, api.TierCold)).
				add(searchOK(11, 12)).
				add(getTier(13, 14, api.TierHot))},
		{name: "acknowledged demotion not observed",
			ops: new(builder).add(create(1, 2, api.MetricDot)).
				add(setTier(3, 4, api.TierCold, history.OK, "")).
				add(getTier(5, 6, api.TierHot)),
			wantFail: true},
		{name: "failed transition applied anyway",
			ops: new(builder).add(create(1, 2, api.MetricDot)).
				add(setTier(3, 4, api.TierCold, history.Failed, api.CodeStorageUnavailable)).
				add(getTier(5, 6, api.TierCold)),
			wantFail: true},
		{name: "unknown transition applies late",
			ops: new(builder).add(create(1, 2, api.MetricDot)).
				add(setTier(3, 4, api.TierCold, history.Unknown, "")).
				add(getTier(5, 6, api.TierHot)).
				add(getTier(7, 8, api.TierCold))},
		{name: "concurrent demotions, one wins",
			ops: new(builder).add(create(1, 2, api.MetricDot)).
				add(setTier(3, 10, api.TierWarm, history.OK, "")).
				add(setTier(4, 9, api.TierCold, history.OK, "")).
				add(getTier(11, 12, api.TierWarm)).
				add(getTier(13, 14, api.TierWarm))},
		{name: "concurrent demotions, flip-flop observed",
			ops: new(builder).add(create(1, 2, api.MetricDot)).
				add(setTier(3, 10, api.TierWarm, history.OK, "")).
				add(setTier(4, 9, api.TierCold, history.OK, "")).
				add(getTier(11, 12, api.TierWarm)).
				add(getTier(13, 14, api.TierCold)),
			wantFail: true},
		{name: "transition_in_progress leaves the tier",
			ops: new(builder).add(create(1, 2, api.MetricDot)).
				add(setTier(3, 10, api.TierCold, history.OK, "")).
				add(setTier(4, 5, api.TierWarm, history.Failed, api.CodeTransitionInProgress)).
				add(getTier(11, 12, api.TierCold))},
		{name: "spontaneous demotion without the worker",
			ops: new(builder).add(create(1, 2, api.MetricDot)).
				add(getTier(3, 4, api.TierHot)).
				add(getTier(5, 6, api.TierWarm)),
			wantFail: true},
		{name: "spontaneous demotion with the worker",
			ops: new(builder).add(create(1, 2, api.MetricDot)).
				add(getTier(3, 4, api.TierHot)).
				add(getTier(5, 6, api.TierWarm)),
			autoDemote: true},
		{name: "spontaneous promotion is never allowed",
			ops: new(builder).add(create(1, 2, api.MetricDot)).
				add(setTier(3, 4, api.TierCold, history.OK, "")).
				add(getTier(5, 6, api.TierHot)),
			autoDemote: true, wantFail: true},
		{name: "collections are independent",
			ops: new(builder).add(create(1, 2, api.MetricDot)).
				add(history.Op{Kind: history.KindCreateCollection, Collection: "d", Call: 1, Return: 2}).
				add(history.Op{Kind: history.KindSetTier, Collection: "d", Call: 3, Return: 4, Target: api.TierCold}).
				add(getTier(5, 6, api.TierHot))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := newChecker(t, tt.ops.ops, Config{AutoDemote: tt.autoDemote}).Tiers()
			if !tt.wantFail {
				require.NoError(t, err)
				return
			}
			requireViolation(t, err, TiersName, "not linearizable")
			html, rerr := os.ReadFile(err.(*Failure).Files[2])
			require.NoError(t, rerr)
			assert.True(t, strings.Contains(string(html), "get_collection → ok"), "timeline describes the operations")
		})
	}
}

func TestAllCombinesAndArtifactsRoundTrip(t *testing.T) {
	ops := new(builder).add(create(1, 2, api.MetricDot)).
		add(insert(3, 4, history.OK, vec("a", 1, 0))).
		add(setTier(5, 6, api.TierCold, history.OK, "")).
		add(getTier(7, 8, api.TierWarm)).
		add(search(9, 10, 1, []float32{1, 0})).ops
	c := newChecker(t, ops, Config{})
	err := c.All(final())
	t.Log(err)
	var f *Failure
	require.ErrorAs(t, err, &f)
	assert.ElementsMatch(t, []string{LostWritesName, SearchesName, TiersName}, f.Checkers)
	back, rerr := history.ReadFile(f.Files[0])
	require.NoError(t, rerr)
	assert.Equal(t, ops, back)
}

func TestAllHelperMarksTestFailed(t *testing.T) {
	ops := new(builder).add(create(1, 2, api.MetricDot)).
		add(insert(3, 4, history.OK, vec("a", 1, 0))).ops
	ft := &fakeTB{TB: t}
	ok := All(ft, ops, final(), Config{ArtifactDir: t.TempDir()})
	assert.False(t, ok)
	require.Len(t, ft.errors, 1)
	assert.Contains(t, ft.errors[0], "acknowledged insert (op 1) is lost")
	assert.Contains(t, ft.errors[0], "history.json")

	ft = &fakeTB{TB: t}
	assert.True(t, All(ft, ops, final(vec("a", 1, 0)), Config{ArtifactDir: t.TempDir()}))
	assert.Empty(t, ft.errors)
}

// fakeTB captures Errorf so a test can assert that All fails a test.
type fakeTB struct {
	testing.TB
	errors []string
}

func (f *fakeTB) Errorf(format string, args ...any) {
	f.errors = append(f.errors, strings.TrimSpace(sprintf(format, args...)))
}

func (f *fakeTB) Helper() {}

func sprintf(format string, args ...any) string { return fmt.Sprintf(format, args...) }

// TestTiersManyUnknownOperations: hundreds of operations with unknown
// outcome (8 workers timing out over and over) must neither hide a
// violation that none of them can explain nor make the search blow up: they
// keep their real return times, with pending late effects, so the search
// stays bounded by the number of concurrent workers.
func TestTiersManyUnknownOperations(t *testing.T) {
	b := new(builder).add(create(1, 2, api.MetricDot))
	const workers, rounds = 8, 40
	for r := range rounds {
		for w := range workers {
			call := int64(10 + r*100 + w)
			b.add(setTier(call, call+90, api.TierWarm, history.Unknown, ""))
		}
	}
	end := int64(10 + rounds*100 + 100)
	b.add(setTier(end, end+1, api.TierHot, history.OK, ""))
	b.add(getTier(end+2, end+3, api.TierWarm)) // a late unknown demotion explains this
	good := slices.Clone(b.ops)
	b.add(getTier(end+4, end+5, api.TierCold)) // nothing explains this
	requireViolation(t, newChecker(t, b.ops, Config{}).Tiers(), TiersName, "not linearizable")
	require.NoError(t, newChecker(t, good, Config{}).Tiers())
}

// An unknown delete may take effect at any later moment, so it excuses a
// later acknowledged insert missing at the end; bounded by the death of
// the server that received it (EffectBy), it no longer does.
func TestUnknownEffectBoundedByCrash(t *testing.T) {
	del := history.Op{Kind: history.KindDeleteCollection, Call: 20, Return: 30, Outcome: history.Unknown}
	recreate := create(40, 50, api.MetricL2)
	recreate.Outcome = history.Unknown
	build := func(bound int64) []history.Op {
		b := &builder{}
		b.add(create(0, 10, api.MetricL2))
		d, r := del, recreate
		if bound > 0 {
			d.EffectBy, r.EffectBy = bound, bound+25
		}
		b.add(d).add(r)
		b.add(insert(100, 110, history.OK, vec("a", 1, 2)))
		return b.ops
	}
	// Unbounded: the unknown delete and create may come after the insert.
	require.NoError(t, newChecker(t, build(0), Config{}).LostWrites(final()))
	// Bounded before the insert: the insert must be there.
	ops := build(35)
	require.NoError(t, history.Validate(ops))
	requireViolation(t, newChecker(t, ops, Config{}).LostWrites(final()), LostWritesName, "is lost")
}

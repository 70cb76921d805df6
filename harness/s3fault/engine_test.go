package s3fault

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fires runs n requests of req through a fresh engine with rule r and returns
// the 1-based indexes of the requests the rule hit.
func fires(t *testing.T, layerSeed uint64, r Rule, req Request, n int) []int {
	t.Helper()
	e := newEngine(layerSeed)
	_, err := e.add(r)
	require.NoError(t, err)
	var hit []int
	for i := 1; i <= n; i++ {
		if d := e.decide(req); d.fault != nil {
			hit = append(hit, i)
		}
	}
	return hit
}

func TestTriggers(t *testing.T) {
	put := Request{Op: OpPutObject, Bucket: "b", Key: "collections/c1/snap"}
	tests := []struct {
		name string
		rule Rule
		want []int
	}{
		{"next 3", Rule{Trigger: Next(3), Action: InternalError()}, []int{1, 2, 3}},
		{"every 3rd", Rule{Trigger: EveryNth(3), Action: InternalError()}, []int{3, 6, 9}},
		{"always capped", Rule{Trigger: Always(), MaxFires: 4, Action: InternalError()}, []int{1, 2, 3, 4}},
		{"after 2 then next 1", Rule{After: 2, Trigger: Next(1), Action: InternalError()}, []int{3}},
		{"after 1 every 2nd capped", Rule{After: 1, Trigger: EveryNth(2), MaxFires: 2, Action: InternalError()}, []int{3, 5}},
		{"op filter misses", Rule{Ops: []Op{OpGetObject}, Trigger: Always(), Action: InternalError()}, nil},
		{"bucket filter misses", Rule{Bucket: "other", Trigger: Always(), Action: InternalError()}, nil},
		{"key glob misses", Rule{Key: "wal/*", Trigger: Always(), Action: InternalError()}, nil},
		{"key regexp hits", Rule{KeyRegexp: `c1/`, Trigger: Next(2), Action: InternalError()}, []int{1, 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, fires(t, 0, tt.rule, put, 10))
		})
	}
}

func TestProbabilityIsSeeded(t *testing.T) {
	req := Request{Op: OpGetObject, Bucket: "b", Key: "k"}
	rule := func(seed *uint64) Rule {
		return Rule{Trigger: Probability(0.3), Seed: seed, Action: InternalError()}
	}
	a := fires(t, 0, rule(SeedOf(42)), req, 2000)
	b := fires(t, 7, rule(SeedOf(42)), req, 2000)
	assert.Equal(t, a, b, "same rule seed, same hits whatever the layer seed")
	c := fires(t, 0, rule(SeedOf(43)), req, 2000)
	assert.NotEqual(t, a, c, "another seed, other hits")
	assert.InDelta(t, 600, len(a), 90, "about 30%% of 2000 requests")

	fromLayer := fires(t, 42, rule(nil), req, 2000)
	assert.Equal(t, a, fromLayer, "a rule without seed uses the layer seed")
}

func TestDelayJitterIsSeededAndBounded(t *testing.T) {
	delays := func(seed uint64) []time.Duration {
		e := newEngine(0)
		_, err := e.add(Rule{Trigger: Always(), Seed: SeedOf(seed), Action: Delay(10*time.Millisecond, 5*time.Millisecond)})
		require.NoError(t, err)
		var out []time.Duration
		for range 50 {
			out = append(out, e.decide(Request{Op: OpHeadObject}).delay)
		}
		return out
	}
	a := delays(1)
	assert.Equal(t, a, delays(1))
	assert.NotEqual(t, a, delays(2))
	for _, d := range a {
		assert.GreaterOrEqual(t, d, 10*time.Millisecond)
		assert.LessOrEqual(t, d, 15*time.Millisecond)
	}
}

func TestRuleOrderAndDelayComposition(t *testing.T) {
	e := newEngine(0)
	delay, err := e.add(Rule{Trigger: Always(), Action: Delay(time.Second, 0)})
	require.NoError(t, err)
	first, err := e.add(Rule{Trigger: Next(1), Action: SlowDown(time.Second)})
	require.NoError(t, err)
	second, err := e.add(Rule{Trigger: Always(), Action: InternalError()})
	require.NoError(t, err)

	req := Request{Op: OpPutObject, Bucket: "b", Key: "k"}
	d := e.decide(req)
	assert.Equal(t, time.Second, d.delay)
	require.NotNil(t, d.fault)
	assert.Equal(t, first.ID, d.fault.ruleID, "the first firing rule wins")

	d = e.decide(req)
	assert.Equal(t, time.Second, d.delay)
	require.NotNil(t, d.fault)
	assert.Equal(t, second.ID, d.fault.ruleID, "the exhausted rule is skipped")

	s := e.snapshot()
	assert.Equal(t, int64(2), s.Op(OpPutObject).Seen)
	assert.Equal(t, int64(2), s.Op(OpPutObject).Injected[ActionDelay])
	st, ok := s.Rule(second.ID)
	require.True(t, ok)
	assert.Equal(t, int64(1), st.Matched, "the second rule did not see the request the first one answered")
	rs, err := e.get(first.ID)
	require.NoError(t, err)
	assert.True(t, rs.Exhausted)

	require.NoError(t, e.delete(delay.ID))
	require.ErrorIs(t, e.delete(delay.ID), ErrRuleNotFound)
	s = e.snapshot()
	st, ok = s.Rule(delay.ID)
	require.True(t, ok, "a deleted rule keeps its counters until reset")
	assert.True(t, st.Deleted)
	e.resetStats()
	_, ok = e.snapshot().Rule(delay.ID)
	assert.False(t, ok)
	assert.Len(t, e.snapshot().Rules, 2)
	assert.Equal(t, 2, e.deleteAll())
	assert.Empty(t, e.list())
}

func TestFlipMasksDistinctAndSeeded(t *testing.T) {
	for _, tt := range []struct {
		flips int
		size  int64
		want  int
	}{{1, 100, 1}, {16, 3, 16}, {30, 2, 16}, {5, 0, 0}} {
		t.Run(fmt.Sprintf("%d in %d bytes", tt.flips, tt.size), func(t *testing.T) {
			f := &firing{action: FlipBits(tt.flips), seed: 5}
			m := flipMasks(f, tt.size)
			bits := 0
			for off, mask := range m {
				assert.Less(t, off, tt.size)
				for ; mask != 0; mask &= mask - 1 {
					bits++
				}
			}
			assert.Equal(t, tt.want, bits)
			assert.Equal(t, m, flipMasks(&firing{action: FlipBits(tt.flips), seed: 5}, tt.size))
		})
	}
}

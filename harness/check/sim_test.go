package check

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tierchaos/tierchaos/harness/history"
	"github.com/tierchaos/tierchaos/harness/oracle"
	"github.com/tierchaos/tierchaos/system/api"
)

// simConfig shapes a simulated run of a correct, linearizable tierd.
type simConfig struct {
	ops         int
	lanes       int
	colls       int
	dim         int
	idsPerColl  int
	unknownRate float64
	seed        uint64
}

type simColl struct {
	name    string
	metric  api.Metric
	tier    api.Tier
	vectors map[string][]float32
}

// simOp is an operation with the moment it takes effect.
type simOp struct {
	op  history.Op
	lin int64
	// apply is false for an unknown operation that the simulation drops.
	apply bool
}

// simulate produces a history of a linearizable tier store: every operation
// takes effect atomically at a random point between its call and return,
// unknown ones at that point or never. It returns the history and the final
// state.
func simulate(t testing.TB, cfg simConfig) ([]history.Op, history.Final) {
	t.Helper()
	rng := rand.New(rand.NewPCG(cfg.seed, 0x5eed))
	metrics := []api.Metric{api.MetricDot, api.MetricL2, api.MetricCosine}
	tiers := []api.Tier{api.TierHot, api.TierWarm, api.TierCold}
	colls := make([]*simColl, cfg.colls)
	var pending []simOp
	for i := range colls {
		colls[i] = &simColl{name: fmt.Sprintf("c%d", i), metric: metrics[i%len(metrics)], tier: api.TierHot,
			vectors: map[string][]float32{}}
		call := int64(i * 3)
		pending = append(pending, simOp{op: history.Op{Kind: history.KindCreateCollection, Collection: colls[i].name,
			Client: i % cfg.lanes, Call: call, Return: call + 2, Outcome: history.OK, Dimension: cfg.dim,
			Metric: colls[i].metric}, lin: call + 1, apply: true})
	}
	free := make([]int64, cfg.lanes)
	for i := range free {
		free[i] = int64(cfg.colls*3 + 1)
	}
	randValues := func(integer bool) []float32 {
		v := make([]float32, cfg.dim)
		for i := range v {
			if integer {
				v[i] = float32(rng.IntN(5) - 2) // small integers: many exact score ties
			} else {
				v[i] = float32(rng.NormFloat64())
			}
		}
		v[rng.IntN(cfg.dim)] = float32(rng.IntN(3) + 1) // never the zero vector
		return v
	}
	for len(pending) < cfg.ops {
		lane := 0
		for i := range free {
			if free[i] < free[lane] {
				lane = i
			}
		}
		call := free[lane] + int64(rng.IntN(20)+1)
		dur := int64(rng.IntN(200) + 2)
		ret := call + dur
		free[lane] = ret
		c := colls[rng.IntN(len(colls))]
		op := history.Op{Client: lane, Collection: c.name, Call: call, Return: ret, Outcome: history.OK}
		switch r := rng.Float64(); {
		case r < 0.45:
			op.Kind = history.KindInsert
			for range rng.IntN(4) + 1 {
				id := fmt.Sprintf("v%03d", rng.IntN(cfg.idsPerColl))
				op.Vectors = append(op.Vectors, api.Vector{ID: id, Values: randValues(c.metric == api.MetricDot)})
			}
		case r < 0.85:
			op.Kind = history.KindSearch
			op.Query = randValues(false)
			op.K = rng.IntN(10) + 1
		case r < 0.95:
			op.Kind = history.KindSetTier
			op.Target = tiers[rng.IntN(len(tiers))]
		default:
			op.Kind = history.KindGetCollection
		}
		apply := true
		if op.Kind.IsWrite() && rng.Float64() < cfg.unknownRate {
			op.Outcome = history.Unknown
			op.Error = "simulated timeout"
			apply = rng.IntN(2) == 0
		}
		pending = append(pending, simOp{op: op, lin: call + rng.Int64N(dur+1), apply: apply})
	}
	byName := map[string]*simColl{}
	for _, c := range colls {
		byName[c.name] = c
	}
	order := make([]int, len(pending))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmpInt64(pending[a].lin, pending[b].lin) })
	for _, i := range order {
		p := &pending[i]
		c := byName[p.op.Collection]
		switch p.op.Kind {
		case history.KindInsert:
			if p.apply {
				for _, v := range p.op.Vectors {
					c.vectors[v.ID] = v.Values
				}
				c.tier = api.TierHot
			}
		case history.KindSearch:
			q, err := oracle.NewQuery(c.metric, p.op.Query)
			require.NoError(t, err)
			vs := make([]api.Vector, 0, len(c.vectors))
			for id, vals := range c.vectors {
				vs = append(vs, api.Vector{ID: id, Values: vals})
			}
			p.op.Results, err = q.TopK(vs, p.op.K)
			require.NoError(t, err)
			c.tier = api.TierHot
		case history.KindSetTier:
			if p.apply && p.op.Outcome == history.OK && rng.Float64() < 0.1 {
				p.op.Outcome, p.op.Status, p.op.Code = history.Failed, 409, api.CodeTransitionInProgress
				p.apply = false
			}
			if p.apply {
				c.tier = p.op.Target
			}
		case history.KindGetCollection:
			p.op.Tier, p.op.Count = c.tier, len(c.vectors)
		}
	}
	slices.SortStableFunc(pending, func(a, b simOp) int { return cmpInt64(a.op.Call, b.op.Call) })
	ops := make([]history.Op, len(pending))
	for i, p := range pending {
		ops[i] = p.op
		ops[i].Index = i
	}
	found := map[string][]api.Vector{}
	for _, c := range colls {
		vs := []api.Vector{}
		for id, vals := range c.vectors {
			vs = append(vs, api.Vector{ID: id, Values: vals})
		}
		found[c.name] = vs
	}
	return ops, history.NewFinal(found)
}

// TestSimulatedCorrectHistoriesPass guards against false alarms: histories
// of a linearizable store, with concurrency, re-inserts, exact score ties
// and unknown outcomes, must pass every checker.
func TestSimulatedCorrectHistoriesPass(t *testing.T) {
	for seed := range uint64(12) {
		t.Run(fmt.Sprintf("seed%d", seed), func(t *testing.T) {
			ops, fin := simulate(t, simConfig{ops: 800, lanes: 6, colls: 3, dim: 4, idsPerColl: 30,
				unknownRate: 0.05, seed: seed})
			require.NoError(t, newChecker(t, ops, Config{}).All(fin))
		})
	}
}

// TestSimulatedMutationsAreCaught breaks a correct simulated history in the
// three ways the checkers exist for and requires each to be flagged.
func TestSimulatedMutationsAreCaught(t *testing.T) {
	ops, fin := simulate(t, simConfig{ops: 600, lanes: 5, colls: 3, dim: 4, idsPerColl: 20, seed: 42})
	require.NoError(t, newChecker(t, ops, Config{}).All(fin))

	t.Run("lost write", func(t *testing.T) {
		for _, op := range slices.Backward(ops) {
			if op.Kind != history.KindInsert || op.Outcome != history.OK {
				continue
			}
			broken := history.Final{Collections: map[string]history.CollectionState{}}
			for name, st := range fin.Collections {
				vs := map[string][]float32{}
				for id, v := range st.Vectors {
					if name != op.Collection || id != op.Vectors[0].ID {
						vs[id] = v
					}
				}
				broken.Collections[name] = history.CollectionState{Exists: st.Exists, Vectors: vs}
			}
			requireViolation(t, newChecker(t, ops, Config{}).LostWrites(broken), LostWritesName, "is lost")
			return
		}
		t.Fatal("no acknowledged insert in the simulated history")
	})

	t.Run("stale read", func(t *testing.T) {
		for i, op := range slices.Backward(ops) {
			if op.Kind != history.KindSearch || len(op.Results) < 2 {
				continue
			}
			mut := slices.Clone(ops)
			mut[i].Results = slices.Clone(op.Results[1:]) // the best hit vanished
			requireViolation(t, newChecker(t, mut, Config{}).Searches(), SearchesName, "search op")
			return
		}
		t.Fatal("no search with two hits in the simulated history")
	})

	t.Run("non-linearizable tier", func(t *testing.T) {
		end := int64(0)
		for _, op := range ops {
			end = max(end, op.Return)
		}
		for _, name := range []string{"c0", "c1", "c2"} {
			unknownTargets := map[api.Tier]bool{}
			for _, op := range ops {
				if op.Collection == name && op.Kind == history.KindSetTier && op.Outcome == history.Unknown {
					unknownTargets[op.Target] = true
				}
			}
			for _, wrong := range []api.Tier{api.TierWarm, api.TierCold} {
				if unknownTargets[wrong] {
					continue // an unknown demotion could explain it
				}
				// After everything: an acknowledged promotion to hot,
				// then an observation of a demoted tier that no
				// operation can have caused.
				mut := slices.Clone(ops)
				mut = append(mut,
					history.Op{Index: len(mut), Kind: history.KindSetTier, Collection: name, Call: end + 10,
						Return: end + 11, Outcome: history.OK, Target: api.TierHot},
					history.Op{Index: len(mut) + 1, Kind: history.KindGetCollection, Collection: name, Call: end + 12,
						Return: end + 13, Outcome: history.OK, Tier: wrong})
				requireViolation(t, newChecker(t, mut, Config{}).Tiers(), TiersName, "not linearizable")
				return
			}
		}
		t.Fatal("no collection to mutate")
	})
}

// BenchmarkCheck10k measures the three checkers on a 10,000-operation
// history: 8 lanes, 4 collections of up to 250 ids, dimension 16, 2%
// unknown writes.
func BenchmarkCheck10k(b *testing.B) {
	ops, fin := simulate(b, simConfig{ops: 10_000, lanes: 8, colls: 4, dim: 16, idsPerColl: 250,
		unknownRate: 0.02, seed: 7})
	for b.Loop() {
		c, err := New(ops, Config{ArtifactDir: b.TempDir()})
		if err != nil {
			b.Fatal(err)
		}
		if err := c.All(fin); err != nil {
			b.Fatal(err)
		}
	}
}

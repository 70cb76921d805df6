package check

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tierchaos/tierchaos/harness/tierd/history"
	"github.com/tierchaos/tierchaos/harness/tierd/oracle"
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
	// recreateRate is the share of operations that delete a collection and
	// create it again right after (same lane) with the next metric and
	// another dimension.
	recreateRate float64
	// snapshotRate is the share of operations that take a snapshot (half)
	// or restore one taken earlier (half).
	snapshotRate float64
	seed         uint64
}

// simColl is one collection name in the simulated store.
type simColl struct {
	name      string
	exists    bool
	metric    api.Metric
	dim       int
	tier      api.Tier
	vectors   map[string][]float32
	snapshots map[string]map[string][]float32 // of the current incarnation
}

// simOp is an operation with the moment it takes effect.
type simOp struct {
	op  history.Op
	lin int64
	// apply is false for an unknown operation that the simulation drops.
	apply bool
}

// simFail marks op as answered with a tierd error that promises no
// effect (an unknown operation stays unknown).
func simFail(op *history.Op, code string) {
	if op.Outcome == history.OK {
		op.Outcome, op.Status, op.Code = history.Failed, api.HTTPStatus(code), code
	}
}

// simulate produces a history of a linearizable tier store: every operation
// takes effect atomically at a random point between its call and return,
// unknown ones at that point or never. Outcomes follow tierd's API at that
// point: not_found on a missing collection or snapshot, already_exists,
// invalid_argument for another dimension, transition_in_progress now and
// then. It returns the history and the final state.
func simulate(t testing.TB, cfg simConfig) ([]history.Op, history.Final) {
	t.Helper()
	rng := rand.New(rand.NewPCG(cfg.seed, 0x5eed))
	metrics := []api.Metric{api.MetricDot, api.MetricL2, api.MetricCosine}
	tiers := []api.Tier{api.TierHot, api.TierWarm, api.TierCold}
	colls := make([]*simColl, cfg.colls)
	type belief struct {
		metric api.Metric
		dim    int
		gen    int
		snaps  []history.Op // snapshot ops generated so far (id, return)
	}
	beliefs := make([]*belief, cfg.colls)
	var pending []simOp
	for i := range colls {
		colls[i] = &simColl{name: fmt.Sprintf("c%d", i)}
		beliefs[i] = &belief{metric: metrics[i%len(metrics)], dim: cfg.dim}
		call := int64(i * 3)
		pending = append(pending, simOp{op: history.Op{Kind: history.KindCreateCollection, Collection: colls[i].name,
			Client: i % cfg.lanes, Call: call, Return: call + 2, Outcome: history.OK, Dimension: cfg.dim,
			Metric: beliefs[i].metric}, lin: call + 1, apply: true})
	}
	free := make([]int64, cfg.lanes)
	for i := range free {
		free[i] = int64(cfg.colls*3 + 1)
	}
	randValues := func(dim int, integer bool) []float32 {
		v := make([]float32, dim)
		for i := range v {
			if integer {
				v[i] = float32(rng.IntN(5) - 2) // small integers: many exact score ties
			} else {
				v[i] = float32(rng.NormFloat64())
			}
		}
		v[rng.IntN(dim)] = float32(rng.IntN(3) + 1) // never the zero vector
		return v
	}
	snapshots := 0
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
		ci := rng.IntN(len(colls))
		c, b := colls[ci], beliefs[ci]
		op := history.Op{Client: lane, Collection: c.name, Call: call, Return: ret, Outcome: history.OK}
		var extra *history.Op // the create that follows a delete
		r := rng.Float64()
		switch {
		case r < cfg.recreateRate:
			op.Kind = history.KindDeleteCollection
			b.gen++
			b.metric = metrics[(ci+b.gen)%len(metrics)]
			b.dim = cfg.dim
			if b.gen%2 == 1 {
				b.dim = cfg.dim/2 + 1
			}
			cr := history.Op{Kind: history.KindCreateCollection, Collection: c.name, Client: lane, Call: ret + 1,
				Return: ret + 1 + int64(rng.IntN(50)+2), Outcome: history.OK, Dimension: b.dim, Metric: b.metric}
			free[lane] = cr.Return
			extra = &cr
		case r < cfg.recreateRate+cfg.snapshotRate/2:
			op.Kind = history.KindSnapshot
			snapshots++
			op.Snapshot = fmt.Sprintf("s%d", snapshots) // what tierd will answer
			b.snaps = append(b.snaps, op)
		case r < cfg.recreateRate+cfg.snapshotRate:
			op.Kind = history.KindRestore
			var ids []string
			for _, sn := range b.snaps {
				if sn.Return < call {
					ids = append(ids, sn.Snapshot)
				}
			}
			if len(ids) == 0 {
				op.Kind = history.KindGetCollection
				break
			}
			op.Snapshot = ids[len(ids)-1-rng.IntN(min(len(ids), 3))]
		default:
			r = rng.Float64()
			switch {
			case r < 0.45:
				op.Kind = history.KindInsert
				for range rng.IntN(4) + 1 {
					id := fmt.Sprintf("v%03d", rng.IntN(cfg.idsPerColl))
					op.Vectors = append(op.Vectors, api.Vector{ID: id, Values: randValues(b.dim, b.metric == api.MetricDot)})
				}
			case r < 0.85:
				op.Kind = history.KindSearch
				op.Query = randValues(b.dim, false)
				op.K = rng.IntN(10) + 1
			case r < 0.95:
				op.Kind = history.KindSetTier
				op.Target = tiers[rng.IntN(len(tiers))]
			default:
				op.Kind = history.KindGetCollection
			}
		}
		for _, o := range []*history.Op{&op, extra} {
			if o == nil {
				continue
			}
			apply := true
			if (o.Kind.IsWrite() || o.Kind == history.KindSnapshot) && rng.Float64() < cfg.unknownRate {
				o.Outcome = history.Unknown
				o.Error = "simulated timeout"
				apply = rng.IntN(2) == 0
			}
			pending = append(pending, simOp{op: *o, lin: o.Call + rng.Int64N(o.Return-o.Call+1), apply: apply})
		}
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
		op := &p.op
		c := byName[op.Collection]
		if !p.apply {
			continue
		}
		if !c.exists && op.Kind != history.KindCreateCollection {
			simFail(op, api.CodeNotFound)
			continue
		}
		switch op.Kind {
		case history.KindCreateCollection:
			if c.exists {
				simFail(op, api.CodeAlreadyExists)
				continue
			}
			c.exists, c.metric, c.dim, c.tier = true, op.Metric, op.Dimension, api.TierHot
			c.vectors, c.snapshots = map[string][]float32{}, map[string]map[string][]float32{}
		case history.KindDeleteCollection:
			c.exists = false
		case history.KindInsert:
			if slices.ContainsFunc(op.Vectors, func(v api.Vector) bool { return len(v.Values) != c.dim }) {
				simFail(op, api.CodeInvalidArgument)
				continue
			}
			for _, v := range op.Vectors {
				c.vectors[v.ID] = v.Values
			}
			c.tier = api.TierHot
		case history.KindSearch:
			if len(op.Query) != c.dim {
				simFail(op, api.CodeInvalidArgument)
				continue
			}
			q, err := oracle.NewQuery(c.metric, op.Query)
			require.NoError(t, err)
			vs := make([]api.Vector, 0, len(c.vectors))
			for id, vals := range c.vectors {
				vs = append(vs, api.Vector{ID: id, Values: vals})
			}
			op.Results, err = q.TopK(vs, op.K)
			require.NoError(t, err)
			c.tier = api.TierHot
		case history.KindSetTier:
			if op.Outcome == history.OK && rng.Float64() < 0.1 {
				simFail(op, api.CodeTransitionInProgress)
				continue
			}
			c.tier = op.Target
		case history.KindGetCollection:
			op.Tier, op.Count, op.Metric, op.Dimension = c.tier, len(c.vectors), c.metric, c.dim
		case history.KindSnapshot:
			c.snapshots[op.Snapshot] = maps.Clone(c.vectors)
			op.Count = len(c.vectors)
		case history.KindRestore:
			content, ok := c.snapshots[op.Snapshot]
			if !ok {
				simFail(op, api.CodeNotFound)
				continue
			}
			c.vectors = maps.Clone(content)
			c.tier = api.TierHot
			op.Tier, op.Count = api.TierHot, len(content)
		}
	}
	slices.SortStableFunc(pending, func(a, b simOp) int { return cmpInt64(a.op.Call, b.op.Call) })
	ops := make([]history.Op, len(pending))
	for i, p := range pending {
		op := p.op
		op.Index = i
		if op.Outcome != history.OK {
			op.Results, op.Tier, op.Count = nil, "", 0
			if op.Kind == history.KindSnapshot {
				op.Snapshot = "" // the answer was lost (or was an error)
			}
			if op.Kind == history.KindGetCollection {
				op.Metric, op.Dimension = "", 0
			}
		}
		if !p.apply && op.Outcome == history.OK {
			t.Fatalf("simulation bug: op %d is ok but was not applied", i)
		}
		ops[i] = op
	}
	found := map[string][]api.Vector{}
	var missing []string
	for _, c := range colls {
		if !c.exists {
			missing = append(missing, c.name)
			continue
		}
		vs := []api.Vector{}
		for id, vals := range c.vectors {
			vs = append(vs, api.Vector{ID: id, Values: vals})
		}
		found[c.name] = vs
	}
	require.NoError(t, history.Validate(ops))
	return ops, history.NewFinal(found, missing...)
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

// churnConfig is a simulated run with deletes and re-creates under other
// metrics and dimensions, snapshots and restores, and unknown outcomes.
func churnConfig(seed uint64, ops int) simConfig {
	return simConfig{ops: ops, lanes: 6, colls: 3, dim: 4, idsPerColl: 30, unknownRate: 0.05,
		recreateRate: 0.02, snapshotRate: 0.08, seed: seed}
}

// TestSimulatedChurnPasses guards against false alarms with recreated names
// and restores: such histories of a linearizable store must pass.
func TestSimulatedChurnPasses(t *testing.T) {
	for seed := range uint64(24) {
		t.Run(fmt.Sprintf("seed%d", seed), func(t *testing.T) {
			ops, fin := simulate(t, churnConfig(seed, 800))
			counts := map[string]int{}
			for _, op := range ops {
				if op.Outcome == history.OK {
					counts[string(op.Kind)]++
				}
			}
			t.Logf("acknowledged operations by kind: %v", counts)
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

// TestSimulatedChurnMutationsAreCaught breaks correct churn histories
// (re-created names, snapshots, restores) and requires each break to be
// flagged: a wrong score on a re-created name, a lost write after a
// restore, a restore that installs another snapshot's content, and a
// restore whose hot flip is not observed.
func TestSimulatedChurnMutationsAreCaught(t *testing.T) {
	// mutate tries seeds until find locates a place to break; it fails the
	// test if no seed offers one.
	mutate := func(t *testing.T, find func(ops []history.Op, fin history.Final) bool) {
		t.Helper()
		for seed := range uint64(20) {
			ops, fin := simulate(t, churnConfig(100+seed, 600))
			if find(ops, fin) {
				return
			}
		}
		t.Fatal("no simulated history offers a place for this mutation")
	}
	lastCreate := func(ops []history.Op, name string, before int64) (history.Op, int) {
		var found history.Op
		n := 0
		for _, op := range ops {
			if op.Collection == name && op.Kind == history.KindCreateCollection && op.Outcome == history.OK &&
				op.Return < before {
				found = op
				n++
			}
		}
		return found, n
	}

	t.Run("wrong score on a re-created name", func(t *testing.T) {
		mutate(t, func(ops []history.Op, _ history.Final) bool {
			for i, op := range slices.Backward(ops) {
				if op.Kind != history.KindSearch || op.Outcome != history.OK || len(op.Results) == 0 {
					continue
				}
				if _, n := lastCreate(ops, op.Collection, op.Call); n < 2 {
					continue
				}
				mut := slices.Clone(ops)
				mut[i].Results = slices.Clone(op.Results)
				mut[i].Results[0].Score = 1e6
				requireViolation(t, newChecker(t, mut, Config{}).Searches(), SearchesName, "reported score 1e+06")
				return true
			}
			return false
		})
	})

	t.Run("lost write after a restore", func(t *testing.T) {
		mutate(t, func(ops []history.Op, fin history.Final) bool {
			for _, w := range slices.Backward(ops) {
				if w.Kind != history.KindInsert || w.Outcome != history.OK || !fin.Collections[w.Collection].Exists {
					continue
				}
				restored, wiped := false, false
				for _, op := range ops {
					if op.Collection != w.Collection || op.Outcome == history.Failed {
						continue
					}
					switch op.Kind {
					case history.KindRestore:
						restored = restored || op.Outcome == history.OK && op.Return < w.Call
						wiped = wiped || op.Return > w.Call || op.Outcome == history.Unknown
					case history.KindDeleteCollection, history.KindCreateCollection:
						wiped = wiped || op.Return > w.Call || op.Outcome == history.Unknown
					}
				}
				if !restored || wiped {
					continue
				}
				broken := history.Final{Collections: maps.Clone(fin.Collections)}
				st := broken.Collections[w.Collection]
				st.Vectors = maps.Clone(st.Vectors)
				delete(st.Vectors, w.Vectors[0].ID)
				broken.Collections[w.Collection] = st
				requireViolation(t, newChecker(t, ops, Config{}).LostWrites(broken), LostWritesName,
					"acknowledged insert")
				return true
			}
			return false
		})
	})

	t.Run("restore installs another snapshot's content", func(t *testing.T) {
		mutate(t, func(ops []history.Op, _ history.Final) bool {
			for i, r := range ops {
				if r.Kind != history.KindRestore || r.Outcome != history.OK {
					continue
				}
				cr, _ := lastCreate(ops, r.Collection, r.Call)
				for _, sn := range ops {
					if sn.Collection != r.Collection || sn.Kind != history.KindSnapshot || sn.Outcome != history.OK ||
						sn.Call < cr.Return || sn.Return > r.Call || sn.Count == r.Count {
						continue
					}
					// The restore answered what it installed: another
					// snapshot's content.
					mut := slices.Clone(ops)
					mut[i].Snapshot = sn.Snapshot
					requireViolation(t, newChecker(t, mut, Config{}).Snapshots(), SnapshotsName,
						fmt.Sprintf("answered %d vectors, but the snapshot holds [%d]", r.Count, sn.Count))
					return true
				}
			}
			return false
		})
	})

	t.Run("restore without its hot flip", func(t *testing.T) {
		mutate(t, func(ops []history.Op, fin history.Final) bool {
			end := int64(0)
			for _, op := range ops {
				end = max(end, op.Return)
			}
			for _, name := range sortedKeys(fin.Collections) {
				if !fin.Collections[name].Exists {
					continue
				}
				cr, _ := lastCreate(ops, name, never)
				var id string
				for _, sn := range ops {
					if sn.Collection == name && sn.Kind == history.KindSnapshot && sn.Outcome == history.OK &&
						sn.Call > cr.Return {
						id = sn.Snapshot
					}
				}
				if id == "" {
					continue
				}
				// After everything: a demotion, a restore, and an
				// observation that the restore did not promote.
				n := len(ops)
				mut := append(slices.Clone(ops),
					history.Op{Index: n, Kind: history.KindSetTier, Collection: name, Call: end + 10, Return: end + 11,
						Outcome: history.OK, Target: api.TierCold},
					history.Op{Index: n + 1, Kind: history.KindRestore, Collection: name, Call: end + 12,
						Return: end + 13, Outcome: history.OK, Snapshot: id, Tier: api.TierHot},
					history.Op{Index: n + 2, Kind: history.KindGetCollection, Collection: name, Call: end + 14,
						Return: end + 15, Outcome: history.OK, Tier: api.TierCold})
				require.NoError(t, newChecker(t, mut[:n+2], Config{}).Tiers(), "the neighbour without the observation")
				requireViolation(t, newChecker(t, mut, Config{}).Tiers(), TiersName, "not linearizable")
				return true
			}
			return false
		})
	})
}

// BenchmarkCheck10k measures the four checkers on a 10,000-operation
// history: 8 lanes, 4 collections of up to 250 ids, dimension 16, 2%
// unknown writes.
func BenchmarkCheck10k(b *testing.B) {
	benchCheck(b, simConfig{ops: 10_000, lanes: 8, colls: 4, dim: 16, idsPerColl: 250, unknownRate: 0.02, seed: 7})
}

// BenchmarkCheck10kChurn is BenchmarkCheck10k with 1% delete and re-create
// (other metric and dimension) and 4% snapshots and restores.
func BenchmarkCheck10kChurn(b *testing.B) {
	benchCheck(b, simConfig{ops: 10_000, lanes: 8, colls: 4, dim: 16, idsPerColl: 250, unknownRate: 0.02,
		recreateRate: 0.01, snapshotRate: 0.04, seed: 7})
}

func benchCheck(b *testing.B, cfg simConfig) {
	ops, fin := simulate(b, cfg)
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

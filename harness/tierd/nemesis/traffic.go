package nemesis

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/tierchaos/tierchaos/harness/tierd/history"
	"github.com/tierchaos/tierchaos/load"
	"github.com/tierchaos/tierchaos/system/api"
	"github.com/tierchaos/tierchaos/system/client"
)

// mixEntry is one operation of the traffic and its weight.
type mixEntry struct {
	name   string
	weight float64
}

// The traffic's operations and their weights: every tierd operation, with
// the operations that wipe a collection's content (restore, delete, and a
// create that may re-create) rare enough that an acknowledged insert stays
// checkable for a while.
func trafficMix() []mixEntry {
	return []mixEntry{
		{"insert", 35}, {"search", 20}, {"list_vectors", 8}, {"get", 6}, {"set_tier", 12},
		{"snapshot", 6}, {"list_snapshots", 4}, {"restore", 2}, {"delete", 1}, {"create", 3},
	}
}

// mix is the traffic's operations without those t leaves out.
func (t Traffic) mix() []mixEntry {
	return slices.DeleteFunc(trafficMix(), func(m mixEntry) bool { return slices.Contains(t.Without, m.name) })
}

// seedVectors is how many vectors each collection starts with.
const seedVectors = 16

// traffic sends recorded requests: every choice of request seq comes from
// the traffic seed and seq, so replays send the same requests (their
// interleaving with faults is the machine's).
type traffic struct {
	rc     *history.RecordingClient
	tr     Traffic
	names  []string
	metric []api.Metric

	mu    sync.Mutex
	snaps map[string][]string // collection -> ids of acknowledged snapshots
}

func newTraffic(rc *history.RecordingClient, tr Traffic, prefix string) *traffic {
	t := &traffic{rc: rc, tr: tr, snaps: map[string][]string{}}
	metrics := []api.Metric{api.MetricCosine, api.MetricL2, api.MetricDot}
	r := rand.New(rand.NewPCG(tr.Seed, 1))
	for i := range tr.Collections {
		kind := "c"
		if i < tr.HotCollections {
			kind = "hot"
		}
		t.names = append(t.names, fmt.Sprintf("%s-%s%d", prefix, kind, i))
		t.metric = append(t.metric, metrics[r.IntN(len(metrics))])
	}
	return t
}

// isHot reports whether a collection is one the traffic never demotes.
func isHot(name string) bool {
	i := strings.LastIndexByte(name, '-')
	return i >= 0 && strings.HasPrefix(name[i+1:], "hot")
}

// setup creates the collections and inserts their first vectors.
func (t *traffic) setup(ctx context.Context) error {
	r := rand.New(rand.NewPCG(t.tr.Seed, 2))
	for i, name := range t.names {
		if _, err := t.rc.CreateCollection(ctx, api.CreateCollectionRequest{Name: name, Dimension: t.tr.Dimension, Metric: t.metric[i]}); err != nil {
			return fmt.Errorf("nemesis: create %s: %w", name, err)
		}
		vs := make([]api.Vector, seedVectors)
		for j := range vs {
			vs[j] = api.Vector{ID: "seed-" + strconv.Itoa(j), Values: vector(r, t.tr.Dimension)}
		}
		if _, err := t.rc.Insert(ctx, name, vs); err != nil {
			return fmt.Errorf("nemesis: seed %s: %w", name, err)
		}
	}
	return nil
}

// ops returns the driver's operations.
func (t *traffic) ops() []load.Op {
	mix := t.tr.mix()
	out := make([]load.Op, 0, len(mix))
	for _, m := range mix {
		name := m.name
		out = append(out, load.Op{Name: name, Weight: m.weight, Do: func(ctx context.Context, seq uint64) error {
			return coded(t.do(ctx, name, seq))
		}})
	}
	return out
}

func (t *traffic) do(ctx context.Context, op string, seq uint64) error {
	r := rand.New(rand.NewPCG(t.tr.Seed, seq+1<<32))
	i := t.pick(r, seq)
	if t.lull(seq) && isWrite(op) {
		op = "search" // a read-only lull: writers pause, readers go on
	}
	name := t.names[i]
	switch op {
	case "insert":
		n := batchSize(r)
		vs := make([]api.Vector, n)
		for j := range vs {
			id := fmt.Sprintf("v%d-%d", seq, j)
			if j == 0 && seq > 64 && r.IntN(10) == 0 {
				id = fmt.Sprintf("v%d-0", seq-1-uint64(r.IntN(64))) // overwrite an earlier id
			}
			vs[j] = api.Vector{ID: id, Values: vector(r, t.tr.Dimension)}
		}
		_, err := t.rc.Insert(ctx, name, vs)
		return err
	case "search":
		_, err := t.rc.Search(ctx, name, vector(r, t.tr.Dimension), 5)
		return err
	case "list_vectors":
		_, err := t.rc.ListVectors(ctx, name, "", 50)
		return err
	case "get":
		_, err := t.rc.GetCollection(ctx, name)
		return err
	case "set_tier":
		target := []api.Tier{api.TierHot, api.TierWarm, api.TierCold}[r.IntN(3)]
		if isHot(name) {
			target = api.TierHot
		}
		_, err := t.rc.SetTier(ctx, name, target)
		if err == nil && target == api.TierWarm && !isHot(name) && r.IntN(3) == 0 {
			t.park(ctx, r, i)
		}
		return err
	case "snapshot":
		s, err := t.rc.CreateSnapshot(ctx, name)
		if err == nil {
			t.mu.Lock()
			t.snaps[name] = append(t.snaps[name], s.ID)
			t.mu.Unlock()
		}
		return err
	case "list_snapshots":
		_, err := t.rc.ListSnapshots(ctx, name)
		return err
	case "restore":
		t.mu.Lock()
		ids := t.snaps[name]
		var id string
		if len(ids) > 0 {
			id = ids[r.IntN(len(ids))]
		}
		t.mu.Unlock()
		if id == "" {
			_, err := t.rc.GetCollection(ctx, name)
			return err
		}
		_, err := t.rc.Restore(ctx, name, id)
		return err
	case "delete":
		if isHot(name) {
			_, err := t.rc.GetCollection(ctx, name)
			return err
		}
		return t.rc.DeleteCollection(ctx, name)
	case "create":
		_, err := t.rc.CreateCollection(ctx, api.CreateCollectionRequest{Name: name, Dimension: t.tr.Dimension, Metric: t.metric[i]})
		if client.CodeOf(err) == api.CodeAlreadyExists {
			return nil // the usual answer: most collections exist
		}
		return err
	}
	return fmt.Errorf("nemesis: unknown traffic op %q", op)
}

// park makes up to two more non-hot collections after collection i warm,
// so that tierd's worker finds several small warm collections idle at once
// and demotes them together, as members of one pack. Their answers are
// recorded like any other; a refusal (a transition in progress, say) is
// theirs and does not fail the request that parked them.
func (t *traffic) park(ctx context.Context, r *rand.Rand, i int) {
	hot, others := t.tr.HotCollections, len(t.names)-t.tr.HotCollections
	for k := 1; k <= min(1+r.IntN(2), others-1); k++ {
		_, _ = t.rc.SetTier(ctx, t.names[hot+(i-hot+k)%others], api.TierWarm)
	}
}

// batchSize draws an insert's size from a heavy tail: mostly 1 to 4
// vectors, sometimes tens, now and then a couple of hundred.
func batchSize(r *rand.Rand) int {
	switch x := r.IntN(100); {
	case x < 80:
		return 1 + r.IntN(4)
	case x < 95:
		return 5 + r.IntN(28)
	default:
		return 33 + r.IntN(168)
	}
}

// The working set: hot collections get hotShare of the requests, evenly;
// of the others, half (rounded up) are active at a time and share the rest
// with a skew (the k-th active one weighs 1/(k+1)); every workingSetPeriod
// the active set moves on by one collection. A collection thus sits idle
// for whole periods (long enough for tierd's worker to demote it) and then
// comes back.
const (
	hotShare         = 0.3
	workingSetPeriod = 10 // seconds
)

// writeLull is the read-only tail of every working-set period: writes
// pause (their requests become searches) while reads go on, so tierd's
// background work catches up on an idle log, as it does in the quiet hours
// of a real workload.
const writeLull = 2 // seconds

// lull reports whether request seq falls in a read-only lull.
func (t *traffic) lull(seq uint64) bool {
	period := uint64(max(1, t.tr.Rate*workingSetPeriod))
	quiet := uint64(t.tr.Rate * writeLull)
	return seq%period >= period-quiet
}

// isWrite reports whether a traffic operation changes a collection.
func isWrite(op string) bool {
	switch op {
	case "insert", "set_tier", "snapshot", "restore", "delete", "create":
		return true
	}
	return false
}

// pick chooses request seq's collection.
func (t *traffic) pick(r *rand.Rand, seq uint64) int {
	hot, n := t.tr.HotCollections, len(t.names)
	if hot > 0 && (hot == n || r.Float64() < hotShare) {
		return r.IntN(hot)
	}
	others := n - hot
	active := (others + 1) / 2
	var total float64
	for k := range active {
		total += 1 / float64(k+1)
	}
	x := r.Float64() * total
	rank := active - 1
	for k := range active {
		w := 1 / float64(k+1)
		if x < w {
			rank = k
			break
		}
		x -= w
	}
	epoch := int(seq / uint64(max(1, t.tr.Rate*workingSetPeriod)))
	return hot + (rank+epoch)%others
}

func vector(r *rand.Rand, dim int) []float32 {
	v := make([]float32, dim)
	for i := range v {
		v[i] = float32(r.NormFloat64())
	}
	return v
}

// coded passes tierd's error code to the driver's error accounting.
func coded(err error) error {
	if err == nil {
		return nil
	}
	if code := client.CodeOf(err); code != "" {
		return load.WithCode(code, err)
	}
	return err
}

package check

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"sort"

	"github.com/tierchaos/tierchaos/harness/tierd/history"
	"github.com/tierchaos/tierchaos/system/api"
)

// never is the effective return time of an operation with an unknown
// outcome: it may take effect at any moment after its call.
const never = math.MaxInt64

// write is one vector written by one insert operation, or one value a
// restore may re-install from its snapshot.
type write struct {
	id     string
	op     int
	call   int64
	ret    int64 // never for unknown outcomes
	ok     bool  // acknowledged and certain: for a restore, the id was certainly in the snapshot
	values []float32
	// restored marks a value a restore may re-install.
	restored bool
	// kill is the earliest return time of an acknowledged write of the same
	// id, or acknowledged delete, create or restore of the collection, that
	// started after this write returned: from then on this write's value is
	// certainly gone.
	kill int64
}

// span is the interval of an operation on the whole collection.
type span struct {
	op        int
	call, ret int64 // ret is never for unknown outcomes
	ok        bool
}

// incarnation is one life of a collection name: what one create made, or
// the collection as it existed before the history started.
type incarnation struct {
	op        int   // the create_collection, or -1 before the history
	call, ret int64 // of the create; math.MinInt64 before the history
	ok        bool
	metric    api.Metric
	dim       int // 0 when unknown
}

// String names the incarnation in messages.
func (inc incarnation) String() string {
	dim := "unknown dimension"
	if inc.dim > 0 {
		dim = fmt.Sprintf("dimension %d", inc.dim)
	}
	if inc.op < 0 {
		metric := string(inc.metric)
		if metric == "" {
			metric = "unknown"
		}
		return fmt.Sprintf("the collection as it existed before the history (metric %s, %s)", metric, dim)
	}
	return fmt.Sprintf("the incarnation created by op %d (metric %s, %s)", inc.op, inc.metric, dim)
}

// restoreInfo is what the index resolved about one restore.
type restoreInfo struct {
	op int
	// sources are the snapshot operations whose content the restore may
	// have installed: ok snapshots that answered its id, or, when none
	// did, every snapshot of the collection with an unknown outcome that
	// was called before the restore returned.
	sources []int
	// counts are the vector counts the restore may answer: the counts of
	// its ok sources, or minCount..maxCount for unknown sources.
	counts             []int
	minCount, maxCount int
	rangeKnown         bool
	// problems are violations found while resolving the restore.
	problems []Violation
}

// collection indexes the operations on one collection name.
type collection struct {
	name string
	// creates are the ok or unknown creates, in call order; before holds
	// the possible incarnations from before the history (metric from
	// Config.Metrics or an early get_collection).
	creates []incarnation
	before  []incarnation
	ids     map[string][]*write // per id, in call order
	order   []string            // ids in first-write order
	deletes []span              // ok or unknown deletes
	erasers []span              // ok or unknown deletes, creates and restores: each wipes the content
	present []span              // ok operations other than delete, each proving the collection existed
	inserts []int               // indexes of ok or unknown inserts
	byOp    map[int][]*write
	// snapshots maps a snapshot id to the ok snapshot operations that
	// answered it; unknownSnaps are snapshots with an unknown outcome.
	snapshots    map[string][]int
	unknownSnaps []int
	restores     []*restoreInfo
	// wipers and overwrites give each write's kill (see computeKill).
	wipers     killers
	overwrites map[string]killers
}

// effectiveReturn is the return time a checker must assume for op: for an
// unknown outcome, the time its server died if the history knows it
// (EffectBy), else never.
func effectiveReturn(op history.Op) int64 {
	if op.Outcome == history.Unknown {
		if op.EffectBy > 0 {
			return op.EffectBy
		}
		return never
	}
	return op.Return
}

// buildIndex groups the history by collection. Failed operations had no
// effect and are left out. A restore's effect is resolved from the content
// its snapshot may have captured (see resolveRestore).
func buildIndex(ops []history.Op, metrics map[string]api.Metric) (map[string]*collection, error) {
	colls := map[string]*collection{}
	get := func(name string) *collection {
		c := colls[name]
		if c == nil {
			c = &collection{name: name, ids: map[string][]*write{}, byOp: map[int][]*write{},
				snapshots: map[string][]int{}}
			colls[name] = c
		}
		return c
	}
	snapOwner := map[string]string{} // snapshot id -> collection of an ok snapshot
	for _, op := range ops {
		c := get(op.Collection)
		if op.Outcome == history.Failed {
			continue
		}
		ret := effectiveReturn(op)
		ok := op.Outcome == history.OK
		sp := span{op: op.Index, call: op.Call, ret: ret, ok: ok}
		if ok && op.Kind != history.KindDeleteCollection {
			c.present = append(c.present, sp)
		}
		switch op.Kind {
		case history.KindCreateCollection:
			metric := op.Metric
			if metric == "" {
				metric = metrics[op.Collection]
			}
			c.creates = append(c.creates, incarnation{op: op.Index, call: op.Call, ret: ret, ok: ok,
				metric: metric, dim: op.Dimension})
			c.erasers = append(c.erasers, sp)
		case history.KindDeleteCollection:
			c.deletes = append(c.deletes, sp)
			c.erasers = append(c.erasers, sp)
		case history.KindRestore:
			c.erasers = append(c.erasers, sp)
			c.restores = append(c.restores, &restoreInfo{op: op.Index})
		case history.KindSnapshot:
			if ok {
				c.snapshots[op.Snapshot] = append(c.snapshots[op.Snapshot], op.Index)
				snapOwner[op.Snapshot] = op.Collection
			} else {
				c.unknownSnaps = append(c.unknownSnaps, op.Index)
			}
		case history.KindInsert:
			c.inserts = append(c.inserts, op.Index)
			for _, v := range op.Vectors {
				c.addWrite(&write{id: v.ID, op: op.Index, call: op.Call, ret: ret, ok: ok, values: v.Values})
			}
		}
	}
	for _, name := range sortedKeys(colls) { // sorted: the first error is deterministic
		c := colls[name]
		c.findBefore(ops, metrics[c.name])
		c.computeKill()
		for _, r := range c.restores {
			if err := c.resolveRestore(ops, r, snapOwner); err != nil {
				return nil, err
			}
		}
	}
	return colls, nil
}

// kind names the operation that wrote w, for messages.
func (w *write) kind() history.Kind {
	if w.restored {
		return history.KindRestore
	}
	return history.KindInsert
}

func (c *collection) addWrite(w *write) {
	if _, seen := c.ids[w.id]; !seen {
		c.order = append(c.order, w.id)
	}
	c.ids[w.id] = append(c.ids[w.id], w)
	c.byOp[w.op] = append(c.byOp[w.op], w)
}

// findBefore collects the incarnations the collection may have had before
// the history: the configured metric, and what ok get_collections observed
// before any create of the name was called.
func (c *collection) findBefore(ops []history.Op, configured api.Metric) {
	if configured != "" {
		c.before = append(c.before, incarnation{op: -1, call: math.MinInt64, ret: math.MinInt64, ok: true,
			metric: configured})
	}
	firstCreate := int64(never)
	if len(c.creates) > 0 {
		firstCreate = c.creates[0].call
	}
	for _, op := range ops {
		if op.Collection != c.name || op.Kind != history.KindGetCollection || op.Outcome != history.OK ||
			op.Metric == "" || op.Return >= firstCreate {
			continue
		}
		inc := incarnation{op: -1, call: math.MinInt64, ret: math.MinInt64, ok: true, metric: op.Metric, dim: op.Dimension}
		if !slices.Contains(c.before, inc) {
			c.before = append(c.before, inc)
		}
	}
}

// incarnationsAt returns the incarnations an operation running from call to
// ret may have run against, oldest first. A create is excluded when an
// acknowledged create returned before call and the excluded one cannot
// have taken effect after it (that needs a delete in between); the
// collection from before the history only while no create is certainly
// done (with an empty metric when neither Config.Metrics nor an early
// get_collection tells it).
func (c *collection) incarnationsAt(call, ret int64) []incarnation {
	var top, second *incarnation // the two latest (by call) ok creates done before call
	for i := range c.creates {
		cr := &c.creates[i]
		if !cr.ok || cr.ret >= call {
			continue
		}
		if top == nil || cr.call > top.call {
			second, top = top, cr
		} else if second == nil || cr.call > second.call {
			second = cr
		}
	}
	var out []incarnation
	if top == nil {
		if len(c.before) > 0 {
			out = append(out, c.before...)
		} else {
			out = append(out, incarnation{op: -1, call: math.MinInt64, ret: math.MinInt64, ok: true})
		}
	}
	for i := range c.creates {
		cr := &c.creates[i]
		if cr.call >= ret {
			break
		}
		rival := top
		if rival == cr {
			rival = second
		}
		if rival == nil || rival.call < cr.ret && c.deletedBetween(rival.call, min(cr.ret, ret)) {
			out = append(out, *cr)
		}
	}
	return out
}

// deletedBetween reports whether a delete (ok or unknown) may take effect
// after time from and before time to.
func (c *collection) deletedBetween(from, to int64) bool {
	for _, d := range c.deletes {
		if d.ret > from && d.call < to {
			return true
		}
	}
	return false
}

// erasedBetween reports whether the content may be wiped (by a delete,
// create or restore, ok or unknown, other than operations self and also)
// after time from and before time to.
func (c *collection) erasedBetween(from, to int64, self, also int) bool {
	for _, d := range c.erasers {
		if d.op != self && d.op != also && d.ret > from && d.call < to {
			return true
		}
	}
	return false
}

// idState is what one id may be at some moment: the writes whose value it
// may hold, whether it may be absent, and the acknowledged write that
// certainly returned last before (for messages).
type idState struct {
	id          string
	writes      []*write
	mayBeAbsent bool
	latestAcked *write
}

// stateAt returns, for an operation running from call to ret against
// incarnation inc, each id the collection may hold then, in first-write
// order. An id may hold the value of any write called before ret, not
// certainly overwritten before call, and not certainly done before inc was
// created; writes of another dimension than inc's cannot have been applied.
// The id must exist if an acknowledged write of it returned before call and
// nothing (but operation except, which is known to come later) may have
// wiped the content since.
func (c *collection) stateAt(call, ret int64, inc incarnation, except int) []idState {
	var sc scratch
	return sc.stateAt(c, call, ret, inc, except)
}

// scratch holds buffers that stateAt reuses from one call to the next, so
// that judging thousands of searches does not allocate per id. The slices
// returned by its stateAt are valid until its next call.
type scratch struct {
	states []idState
	writes []*write
}

func (sc *scratch) stateAt(c *collection, call, ret int64, inc incarnation, except int) []idState {
	sc.states, sc.writes = sc.states[:0], sc.writes[:0]
	for _, id := range c.order {
		st := idState{id: id, mayBeAbsent: true}
		start := len(sc.writes)
		for _, w := range c.ids[id] {
			if w.call >= ret || w.kill < call || w.ret <= inc.call {
				continue
			}
			if inc.dim > 0 && len(w.values) != inc.dim {
				continue
			}
			sc.writes = append(sc.writes, w)
			if w.ok && w.ret < call {
				if st.mayBeAbsent && !c.erasedBetween(w.call, ret, w.op, except) {
					st.mayBeAbsent = false
				}
				if st.latestAcked == nil || w.ret > st.latestAcked.ret {
					st.latestAcked = w
				}
			}
		}
		if len(sc.writes) > start {
			st.writes = sc.writes[start:] // for its length: re-sliced below
			sc.states = append(sc.states, st)
		}
	}
	// Appends may have moved the buffer: re-slice every state's writes.
	pos := 0
	for i := range sc.states {
		n := len(sc.states[i].writes)
		sc.states[i].writes = sc.writes[pos : pos+n : pos+n]
		pos += n
	}
	return sc.states
}

// countRange returns how many vectors a state holds at least and at most.
func countRange(states []idState) (lo, hi int) {
	for _, st := range states {
		if !st.mayBeAbsent {
			lo++
		}
	}
	return lo, len(states)
}

// resolveRestore finds the snapshot a restore installs and adds the writes
// it may re-apply: for each id the snapshot may hold, one write per value
// it may have there, acknowledged (certain) only if the restore is and the
// id was certainly in the snapshot. Restores are resolved in call order;
// a restore's snapshot returned before it was called (its id comes from the
// snapshot's answer), so earlier restores the snapshot may have seen are
// already resolved.
func (c *collection) resolveRestore(ops []history.Op, r *restoreInfo, snapOwner map[string]string) error {
	op := ops[r.op]
	ret := effectiveReturn(op)
	ok := op.Outcome == history.OK
	problem := func(involved []int, format string, args ...any) {
		r.problems = append(r.problems, Violation{Checker: SnapshotsName, Collection: c.name,
			Ops: append([]int{r.op}, involved...), Message: fmt.Sprintf(format, args...)})
	}
	type window struct {
		op        int
		call, ret int64
	}
	var windows []window
	for _, s := range c.snapshots[op.Snapshot] {
		sn := ops[s]
		windows = append(windows, window{s, sn.Call, sn.Return})
		r.counts = append(r.counts, sn.Count)
		if sn.Return > op.Call {
			problem([]int{s}, "restore op %d was called before snapshot op %d returned the id %q it uses", r.op, s, op.Snapshot)
		}
		for _, d := range c.deletes {
			if ok && d.ok && d.call > sn.Return && d.ret < op.Call {
				problem([]int{s, d.op}, "restore op %d (ok) installed snapshot %q of an incarnation that delete op %d "+
					"certainly removed before the restore was called (snapshots belong to their incarnation)",
					r.op, op.Snapshot, d.op)
				break
			}
		}
	}
	if len(windows) == 0 {
		if owner, found := snapOwner[op.Snapshot]; found {
			if ok {
				problem(nil, "restore op %d (ok) used snapshot %q, which belongs to collection %q", r.op, op.Snapshot, owner)
				return nil
			}
			// A correct tierd answers not_found: no effect.
			c.erasers = slices.DeleteFunc(c.erasers, func(e span) bool { return e.op == r.op })
			return nil
		}
		for _, s := range c.unknownSnaps {
			if ops[s].Call < ret {
				windows = append(windows, window{s, ops[s].Call, ret})
			}
		}
		if len(windows) == 0 && !ok {
			// No snapshot can have this id: a correct tierd answers
			// not_found, so the restore had no effect.
			c.erasers = slices.DeleteFunc(c.erasers, func(e span) bool { return e.op == r.op })
			return nil
		}
		if len(windows) == 0 {
			return fmt.Errorf("%w: acknowledged restore op %d of collection %q uses snapshot %q, which no recorded snapshot "+
				"of the collection answered and no snapshot with an unknown outcome can have made "+
				"(take the snapshot through history.RecordingClient)", ErrConfig, r.op, c.name, op.Snapshot)
		}
		r.minCount, r.maxCount, r.rangeKnown = math.MaxInt, 0, true
	}
	// The union over every source and every incarnation it may have read.
	type possible struct {
		writes  []*write
		certain int // sources in which the id certainly exists
	}
	byID := map[string]*possible{}
	sources := 0
	for _, w := range windows {
		r.sources = append(r.sources, w.op)
		for _, inc := range c.incarnationsAt(w.call, w.ret) {
			sources++
			states := c.stateAt(w.call, w.ret, inc, r.op)
			if r.rangeKnown {
				lo, hi := countRange(states)
				r.minCount, r.maxCount = min(r.minCount, lo), max(r.maxCount, hi)
			}
			for _, st := range states {
				p := byID[st.id]
				if p == nil {
					p = &possible{}
					byID[st.id] = p
				}
				if !st.mayBeAbsent {
					p.certain++
				}
				for _, w := range st.writes {
					if !slices.ContainsFunc(p.writes, func(x *write) bool { return slices.Equal(x.values, w.values) }) {
						p.writes = append(p.writes, w)
					}
				}
			}
		}
	}
	for _, id := range slices.Clone(c.order) {
		p := byID[id]
		if p == nil {
			continue
		}
		certain := ok && p.certain == sources
		for _, w := range p.writes {
			nw := &write{id: id, op: r.op, call: op.Call, ret: ret, ok: certain, values: w.values, restored: true}
			nw.kill = c.killOf(nw)
			c.addWrite(nw)
		}
	}
	return nil
}

// killers is a set of intervals [call, ret] of acknowledged operations
// that certainly overwrite a value, sorted by call, with suffix minima of
// ret: the earliest moment from which a write that returned at some time
// is certainly gone is one binary search away.
type killers struct {
	calls  []int64
	suffix []int64 // suffix[i] = min ret over entries i..
}

func newKillers(spans [][2]int64) killers {
	slices.SortFunc(spans, func(a, b [2]int64) int { return cmpInt64(a[0], b[0]) })
	k := killers{calls: make([]int64, len(spans)), suffix: make([]int64, len(spans)+1)}
	k.suffix[len(spans)] = never
	for i := len(spans) - 1; i >= 0; i-- {
		k.calls[i] = spans[i][0]
		k.suffix[i] = min(spans[i][1], k.suffix[i+1])
	}
	return k
}

// after returns the earliest return of a killer called after time t.
func (k killers) after(t int64) int64 {
	return k.suffix[sort.Search(len(k.calls), func(i int) bool { return k.calls[i] > t })]
}

// computeKill fills write.kill for every write of c, in O(n log n). The
// killers are the acknowledged erasers (deletes, creates, restores) and,
// per id, the acknowledged inserts. An acknowledged value a restore
// re-installs kills exactly like its restore, which is an eraser already,
// so writes added by later restores never change the kill of earlier
// writes: killOf gives theirs as they are added.
func (c *collection) computeKill() {
	var wipers [][2]int64
	for _, d := range c.erasers {
		if d.ok {
			wipers = append(wipers, [2]int64{d.call, d.ret})
		}
	}
	c.wipers = newKillers(wipers)
	c.overwrites = make(map[string]killers, len(c.ids))
	for id, ws := range c.ids {
		var spans [][2]int64
		for _, w := range ws {
			if w.ok && !w.restored {
				spans = append(spans, [2]int64{w.call, w.ret})
			}
		}
		c.overwrites[id] = newKillers(spans)
		for _, w := range ws {
			w.kill = c.killOf(w)
		}
	}
}

// killOf returns the moment from which w's value is certainly gone.
func (c *collection) killOf(w *write) int64 {
	if w.ret == never {
		return never
	}
	kill := c.wipers.after(w.ret)
	if k, ok := c.overwrites[w.id]; ok {
		kill = min(kill, k.after(w.ret))
	}
	return kill
}

func cmpInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// equalValues compares two vectors exactly (values survive a JSON round trip
// bit for bit). A nil side stands for values that were not read back and
// matches anything.
func equalValues(a, b []float32) bool { return a == nil || b == nil || slices.Equal(a, b) }

// sortedKeys returns the keys of m in ascending order.
func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}

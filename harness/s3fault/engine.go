package s3fault

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"time"
)

// Second words of the PCG state: fixed so that a seed alone decides a stream.
const (
	ruleStream   = 0x5333_6661_756c_7452 // "S3faultR"
	firingStream = 0x5333_6661_756c_7446 // "S3faultF"
)

// RuleStatus is a rule as listed by the layer: its definition, its effective
// seed and its trigger state since it was added (not cleared by a stats
// reset).
type RuleStatus struct {
	// ID identifies the rule ("r1", "r2", ...); ids are never reused.
	ID string `json:"id"`
	// Rule is the rule as added.
	Rule Rule `json:"rule"`
	// Seed is the seed the rule's generator started from.
	Seed uint64 `json:"seed"`
	// Matched counts requests that matched the rule's filter.
	Matched int64 `json:"matched"`
	// Fired counts requests the trigger hit.
	Fired int64 `json:"fired"`
	// Exhausted is true once a Next trigger or MaxFires is used up.
	Exhausted bool `json:"exhausted"`
}

// Stats is a snapshot of the layer's counters since start or the last reset.
type Stats struct {
	// Ops holds the counters per operation; operations never seen are absent.
	Ops map[Op]OpStats `json:"ops"`
	// Rules holds the counters of every rule that existed since the reset,
	// including deleted ones, in the order they were added.
	Rules []RuleStats `json:"rules"`
}

// OpStats are the counters of one operation.
type OpStats struct {
	// Seen counts requests received.
	Seen int64 `json:"seen"`
	// Forwarded counts requests sent upstream (delayed, truncated,
	// bit-flipped and cut ones included; error answers excluded).
	Forwarded int64 `json:"forwarded"`
	// UpstreamErrors counts forwarded requests that got no upstream
	// response (connection refused, reset, ...), cut uploads excluded.
	UpstreamErrors int64 `json:"upstream_errors"`
	// Injected counts faults that took effect, per action kind.
	Injected map[ActionKind]int64 `json:"injected,omitempty"`
}

// RuleStats are the counters of one rule.
type RuleStats struct {
	// ID is the rule id.
	ID string `json:"id"`
	// Name is the rule's name.
	Name string `json:"name,omitempty"`
	// Action is the rule's action kind.
	Action ActionKind `json:"action"`
	// Matched counts requests that matched the filter.
	Matched int64 `json:"matched"`
	// Fired counts requests the trigger hit.
	Fired int64 `json:"fired"`
	// Injected counts hits whose fault took effect. It is below Fired when
	// a body action found a body no longer than its byte offset, a body
	// fault met a non-2xx response, or the client left before the fault.
	Injected int64 `json:"injected"`
	// Deleted is true when the rule was deleted since the reset.
	Deleted bool `json:"deleted,omitempty"`
}

// Op returns the counters of op (zero when never seen).
func (s Stats) Op(op Op) OpStats { return s.Ops[op] }

// Rule returns the counters of the rule with the given id.
func (s Stats) Rule(id string) (RuleStats, bool) {
	for _, r := range s.Rules {
		if r.ID == id {
			return r, true
		}
	}
	return RuleStats{}, false
}

// Injected returns how many faults of kind took effect, over all operations.
func (s Stats) Injected(kind ActionKind) int64 {
	var n int64
	for _, o := range s.Ops {
		n += o.Injected[kind]
	}
	return n
}

// ruleState is a live rule with its matcher, generator and trigger state.
type ruleState struct {
	status RuleStatus
	ops    []Op
	key    keyMatcher
	rng    *rand.Rand
	// seenAfter counts matching requests after the first Rule.After.
	seenAfter int64
}

// statusCopy returns the status with no memory shared with the engine.
func (rs *ruleState) statusCopy() RuleStatus {
	st := rs.status
	st.Rule.Ops = slices.Clone(st.Rule.Ops)
	if st.Rule.Seed != nil {
		st.Rule.Seed = SeedOf(*st.Rule.Seed)
	}
	return st
}

func (rs *ruleState) matches(req Request) bool {
	r := &rs.status.Rule
	if len(rs.ops) > 0 && !slices.Contains(rs.ops, req.Op) {
		return false
	}
	if r.Bucket != "" && r.Bucket != req.Bucket {
		return false
	}
	if rs.key != nil && !rs.key(req.Key) {
		return false
	}
	return true
}

// trigger advances the trigger state for one matching request and reports
// whether it fires.
func (rs *ruleState) trigger() bool {
	r := &rs.status.Rule
	rs.status.Matched++
	if rs.status.Matched <= int64(r.After) {
		return false
	}
	rs.seenAfter++
	var fire bool
	switch r.Trigger.Kind {
	case TriggerAlways:
		fire = true
	case TriggerNext:
		fire = rs.status.Fired < int64(r.Trigger.N)
	case TriggerEveryNth:
		fire = rs.seenAfter%int64(r.Trigger.N) == 0
	case TriggerProbability:
		fire = rs.rng.Float64() < r.Trigger.P
	}
	if !fire {
		return false
	}
	rs.status.Fired++
	if (r.Trigger.Kind == TriggerNext && rs.status.Fired >= int64(r.Trigger.N)) ||
		(r.MaxFires > 0 && rs.status.Fired >= int64(r.MaxFires)) {
		rs.status.Exhausted = true
	}
	return true
}

// firing is one hit of a rule: the action to apply and a seed for the
// random choices the action makes later (bit positions).
type firing struct {
	ruleID string
	action Action
	seed   uint64
	// statsGen is the engine's stats generation when the rule fired, so
	// that unfire does not take a hit back from counters reset since.
	statsGen uint64
}

// rng returns the firing's own generator.
func (f firing) rng() *rand.Rand { return rand.New(rand.NewPCG(f.seed, firingStream)) }

// decision is what the rules decided for one request.
type decision struct {
	// delay is the sum of the fired delay actions.
	delay time.Duration
	// delayRule is the id of the first delay rule that fired.
	delayRule string
	// fault is the first fired non-delay action, if any.
	fault *firing
}

// engine holds the rules and counters; it is safe for concurrent use.
type engine struct {
	mu     sync.Mutex
	seed   uint64
	nextID int
	rules  []*ruleState
	ops    map[Op]*OpStats
	stats  map[string]*RuleStats
	order  []string
	// statsGen counts stats resets.
	statsGen uint64
}

func newEngine(seed uint64) *engine {
	e := &engine{seed: seed}
	e.resetStatsLocked()
	return e
}

func (e *engine) setSeed(seed uint64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.seed = seed
}

func (e *engine) getSeed() uint64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.seed
}

// add validates r and appends it to the rule list.
func (e *engine) add(r Rule) (RuleStatus, error) {
	if err := r.Validate(); err != nil {
		return RuleStatus{}, err
	}
	key, err := compileKey(r)
	if err != nil {
		return RuleStatus{}, err
	}
	r.Ops = slices.Clone(r.Ops)
	if r.Seed != nil {
		r.Seed = SeedOf(*r.Seed)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	seed := e.seed
	if r.Seed != nil {
		seed = *r.Seed
	}
	e.nextID++
	id := "r" + strconv.Itoa(e.nextID)
	rs := &ruleState{
		status: RuleStatus{ID: id, Rule: r, Seed: seed},
		ops:    r.Ops,
		key:    key,
		rng:    rand.New(rand.NewPCG(seed, ruleStream)),
	}
	e.rules = append(e.rules, rs)
	e.stats[id] = &RuleStats{ID: id, Name: r.Name, Action: r.Action.Kind}
	e.order = append(e.order, id)
	return rs.statusCopy(), nil
}

// ErrRuleNotFound is returned (wrapped) for an unknown rule id, by the
// Proxy and by the Client.
var ErrRuleNotFound = errors.New("s3fault: rule not found")

func (e *engine) delete(id string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	i := slices.IndexFunc(e.rules, func(rs *ruleState) bool { return rs.status.ID == id })
	if i < 0 {
		return fmt.Errorf("rule %q: %w", id, ErrRuleNotFound)
	}
	e.rules = slices.Delete(e.rules, i, i+1)
	if st, ok := e.stats[id]; ok {
		st.Deleted = true
	}
	return nil
}

func (e *engine) deleteAll() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := len(e.rules)
	for _, rs := range e.rules {
		if st, ok := e.stats[rs.status.ID]; ok {
			st.Deleted = true
		}
	}
	e.rules = nil
	return n
}

func (e *engine) list() []RuleStatus {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]RuleStatus, 0, len(e.rules))
	for _, rs := range e.rules {
		out = append(out, rs.statusCopy())
	}
	return out
}

func (e *engine) get(id string) (RuleStatus, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, rs := range e.rules {
		if rs.status.ID == id {
			return rs.statusCopy(), nil
		}
	}
	return RuleStatus{}, fmt.Errorf("rule %q: %w", id, ErrRuleNotFound)
}

// decide counts req as seen and runs it through the rules.
func (e *engine) decide(req Request) decision {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.opLocked(req.Op).Seen++
	var d decision
	for _, rs := range e.rules {
		if rs.status.Exhausted || !rs.matches(req) {
			continue
		}
		st := e.stats[rs.status.ID]
		st.Matched++
		if !rs.trigger() {
			continue
		}
		st.Fired++
		f := firing{ruleID: rs.status.ID, action: rs.status.Rule.Action, seed: rs.rng.Uint64(), statsGen: e.statsGen}
		if f.action.Kind == ActionDelay {
			delay := time.Duration(f.action.Latency)
			if j := int64(f.action.Jitter); j > 0 {
				delay += time.Duration(rs.rng.Int64N(j + 1))
			}
			d.delay += delay
			if d.delayRule == "" {
				d.delayRule = f.ruleID
			}
			e.injectedLocked(f.ruleID, req.Op, ActionDelay)
			continue
		}
		d.fault = &f
		break
	}
	return d
}

// unfire takes back the hit f when its fault found nothing to act on (a
// misdirect with no other object under the prefix): the rule's fired counts
// drop by one and a Next trigger or MaxFires that this hit used up is
// available again, as if the trigger had not hit. Probability draws and the
// EveryNth count are not rewound. Counters reset since the hit, and rules
// deleted since, are left alone.
func (e *engine) unfire(f *firing) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if st, ok := e.stats[f.ruleID]; ok && f.statsGen == e.statsGen && st.Fired > 0 {
		st.Fired--
	}
	i := slices.IndexFunc(e.rules, func(rs *ruleState) bool { return rs.status.ID == f.ruleID })
	if i < 0 {
		return
	}
	rs := e.rules[i]
	if rs.status.Fired == 0 {
		return
	}
	rs.status.Fired--
	r := &rs.status.Rule
	rs.status.Exhausted = (r.Trigger.Kind == TriggerNext && rs.status.Fired >= int64(r.Trigger.N)) ||
		(r.MaxFires > 0 && rs.status.Fired >= int64(r.MaxFires))
}

// injected records that a fault of f took effect on a request of op.
func (e *engine) injected(f *firing, op Op) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.injectedLocked(f.ruleID, op, f.action.Kind)
}

func (e *engine) injectedLocked(ruleID string, op Op, kind ActionKind) {
	o := e.opLocked(op)
	if o.Injected == nil {
		o.Injected = make(map[ActionKind]int64)
	}
	o.Injected[kind]++
	if st, ok := e.stats[ruleID]; ok {
		st.Injected++
	}
}

func (e *engine) forwarded(op Op) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.opLocked(op).Forwarded++
}

func (e *engine) upstreamError(op Op) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.opLocked(op).UpstreamErrors++
}

func (e *engine) opLocked(op Op) *OpStats {
	o, ok := e.ops[op]
	if !ok {
		o = &OpStats{}
		e.ops[op] = o
	}
	return o
}

func (e *engine) snapshot() Stats {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := Stats{Ops: make(map[Op]OpStats, len(e.ops)), Rules: make([]RuleStats, 0, len(e.order))}
	for op, o := range e.ops {
		c := *o
		if o.Injected != nil {
			c.Injected = make(map[ActionKind]int64, len(o.Injected))
			for k, v := range o.Injected {
				c.Injected[k] = v
			}
		}
		s.Ops[op] = c
	}
	for _, id := range e.order {
		s.Rules = append(s.Rules, *e.stats[id])
	}
	return s
}

func (e *engine) resetStats() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.resetStatsLocked()
}

// resetStatsLocked zeroes the counters; live rules keep a (zeroed) entry,
// deleted ones are forgotten. Trigger state is untouched.
func (e *engine) resetStatsLocked() {
	e.statsGen++
	e.ops = make(map[Op]*OpStats)
	e.stats = make(map[string]*RuleStats, len(e.rules))
	e.order = e.order[:0]
	for _, rs := range e.rules {
		r := rs.status.Rule
		e.stats[rs.status.ID] = &RuleStats{ID: rs.status.ID, Name: r.Name, Action: r.Action.Kind}
		e.order = append(e.order, rs.status.ID)
	}
}

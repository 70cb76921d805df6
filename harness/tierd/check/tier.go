package check

import (
	"fmt"
	"strings"

	"github.com/anishathalye/porcupine"

	"github.com/tierchaos/tierchaos/harness/linearize"
	"github.com/tierchaos/tierchaos/harness/tierd/history"
	"github.com/tierchaos/tierchaos/system/api"
)

// tierSet is a set of possible states of one collection, as a bit mask.
// The model is deterministic over sets (a power-set construction done by
// hand): operations whose effect is uncertain map a state to several.
type tierSet uint8

const (
	stAbsent tierSet = 1 << iota
	stHot
	stWarm
	stCold

	stPresent = stHot | stWarm | stCold
	stAll     = stAbsent | stPresent
)

func tierBit(t api.Tier) tierSet {
	switch t {
	case api.TierHot:
		return stHot
	case api.TierWarm:
		return stWarm
	case api.TierCold:
		return stCold
	}
	return 0
}

// String renders the set, e.g. "{hot|warm}".
func (s tierSet) String() string {
	var parts []string
	for _, p := range []struct {
		bit  tierSet
		name string
	}{{stAbsent, "absent"}, {stHot, "hot"}, {stWarm, "warm"}, {stCold, "cold"}} {
		if s&p.bit != 0 {
			parts = append(parts, p.name)
		}
	}
	return "{" + strings.Join(parts, "|") + "}"
}

// tierInput and tierOutput are porcupine's view of an operation.
type tierInput struct {
	collection string
	kind       history.Kind
	target     api.Tier
}

type tierOutput struct {
	outcome history.Outcome
	code    string
	tier    api.Tier
}

// effects is a set of state changes that may happen to a collection on
// their own: the late effects of operations with unknown outcome, and
// tierd's own demotions when AutoDemote is set.
type effects uint8

const (
	efHot    effects = 1 << iota // present → hot
	efWarm                       // present → warm
	efCold                       // present → cold
	efDelete                     // present → absent
	efCreate                     // absent → hot
	efDemote                     // hot → warm, warm → cold
)

func targetEffect(t api.Tier) effects {
	switch t {
	case api.TierHot:
		return efHot
	case api.TierWarm:
		return efWarm
	case api.TierCold:
		return efCold
	}
	return 0
}

// image returns the states reachable from s by one of the effects in e.
func (e effects) image(s tierSet) tierSet {
	var out tierSet
	if s&stPresent != 0 {
		if e&efHot != 0 {
			out |= stHot
		}
		if e&efWarm != 0 {
			out |= stWarm
		}
		if e&efCold != 0 {
			out |= stCold
		}
		if e&efDelete != 0 {
			out |= stAbsent
		}
	}
	if e&efCreate != 0 && s&stAbsent != 0 {
		out |= stHot
	}
	if e&efDemote != 0 {
		if s&stHot != 0 {
			out |= stWarm
		}
		if s&stWarm != 0 {
			out |= stCold
		}
	}
	return out
}

// closure returns every state reachable from s by any number of effects.
func (e effects) closure(s tierSet) tierSet {
	for {
		next := s | e.image(s)
		if next == s {
			return s
		}
		s = next
	}
}

func (e effects) String() string {
	var parts []string
	for _, p := range []struct {
		bit  effects
		name string
	}{{efHot, "→hot"}, {efWarm, "→warm"}, {efCold, "→cold"}, {efDelete, "delete"}, {efCreate, "create"},
		{efDemote, "auto-demote"}} {
		if e&p.bit != 0 {
			parts = append(parts, p.name)
		}
	}
	return "{" + strings.Join(parts, " ") + "}"
}

// tierState is the model state: the set of possible states of the
// collection and the effects that may still happen at any moment. It is a
// comparable integer, so porcupine can hash and compare it cheaply.
type tierState uint16

func packState(s tierSet, e effects) tierState { return tierState(s) | tierState(e)<<8 }

func (st tierState) unpack() (tierSet, effects) { return tierSet(st & 0xff), effects(st >> 8) }

// String renders the state, e.g. "{warm|cold} pending {→cold}".
func (st tierState) String() string {
	s, e := st.unpack()
	if e == 0 {
		return s.String()
	}
	return s.String() + " pending " + e.String()
}

// step is the sequential specification of one collection's tier state.
//   - create ok: absent → hot. failed already_exists: observes present.
//   - delete ok: present → absent; failed not_found: observes absent.
//   - set_tier ok: present → target; failed: unchanged.
//   - get_collection ok: observes its tier; failed not_found: observes absent.
//   - snapshot ok: observes present, tier unchanged; failed not_found:
//     observes absent.
//   - restore ok: present → hot; failed: unchanged (not_found may be about
//     the snapshot id, so it observes nothing).
//   - insert or search ok: present → hot (transparent promotion); failed:
//     may have promoted.
//   - an operation with unknown outcome may take effect at its
//     linearization point or at any later moment; its effect is added to
//     the pending effects, which may happen before every later operation.
//     (This over-approximates "at most once, at some moment": it never
//     rejects a correct history and keeps the search polynomial, where
//     operations left open until infinity make porcupine's search
//     exponential on a failing history.)
//
// It returns 0 when the operation cannot take effect in any state.
func step(st tierState, in tierInput, out tierOutput) tierState {
	s, pend := st.unpack()
	s = pend.closure(s)
	present := s & stPresent
	maybe := func(e effects) tierState {
		if out.outcome == history.Unknown {
			return packState(s|e.image(s), pend|e)
		}
		return packState(s|e.image(s), pend)
	}
	var next tierSet
	switch in.kind {
	case history.KindCreateCollection:
		switch {
		case out.outcome == history.OK:
			next = s & stAbsent
			if next != 0 {
				next = stHot
			}
		case out.outcome == history.Unknown:
			return maybe(efCreate)
		case out.code == api.CodeAlreadyExists:
			next = present
		default:
			next = s
		}
	case history.KindDeleteCollection:
		switch {
		case out.outcome == history.OK:
			if present != 0 {
				next = stAbsent
			}
		case out.outcome == history.Unknown:
			return maybe(efDelete)
		case out.code == api.CodeNotFound:
			next = s & stAbsent
		default:
			next = s
		}
	case history.KindSetTier:
		switch {
		case out.outcome == history.OK:
			if present != 0 {
				next = tierBit(in.target)
			}
		case out.outcome == history.Unknown:
			return maybe(targetEffect(in.target))
		default:
			next = s
		}
	case history.KindGetCollection:
		switch {
		case out.outcome == history.OK:
			next = s & tierBit(out.tier)
		case out.code == api.CodeNotFound:
			next = s & stAbsent
		default:
			next = s
		}
	case history.KindSnapshot:
		switch {
		case out.outcome == history.OK:
			next = present
		case out.code == api.CodeNotFound:
			next = s & stAbsent
		default:
			next = s
		}
	case history.KindRestore:
		switch {
		case out.outcome == history.OK:
			if present != 0 {
				next = stHot
			}
		case out.outcome == history.Unknown:
			return maybe(efHot)
		default:
			// not_found may mean an unknown snapshot id: no observation.
			next = s
		}
	case history.KindInsert, history.KindSearch:
		switch {
		case out.outcome == history.OK:
			if present != 0 {
				next = stHot
			}
		case out.code == api.CodeNotFound:
			next = s
		default:
			return maybe(efHot)
		}
	default:
		next = s
	}
	if next == 0 {
		return 0
	}
	return packState(next, pend)
}

// tierModel returns the porcupine model, partitioned per collection.
// Operation metadata is the history index; ops describes it.
func tierModel(autoDemote bool, ops []history.Op) porcupine.Model {
	return porcupine.Model{
		Partition: func(h []porcupine.Operation) [][]porcupine.Operation {
			byColl := map[string][]porcupine.Operation{}
			var order []string
			for _, op := range h {
				name := op.Input.(tierInput).collection
				if _, ok := byColl[name]; !ok {
					order = append(order, name)
				}
				byColl[name] = append(byColl[name], op)
			}
			out := make([][]porcupine.Operation, 0, len(order))
			for _, name := range order {
				out = append(out, byColl[name])
			}
			return out
		},
		Init: func() any {
			if autoDemote {
				return packState(stAll, efDemote)
			}
			return packState(stAll, 0)
		},
		Step: func(state, input, output any) (bool, any) {
			next := step(state.(tierState), input.(tierInput), output.(tierOutput))
			return next != 0, next
		},
		Hash: func(state any) uint64 { return uint64(state.(tierState)) },
		DescribeOperation: func(input, output any) string {
			in, out := input.(tierInput), output.(tierOutput)
			s := string(in.kind)
			if in.kind == history.KindSetTier {
				s += "(" + string(in.target) + ")"
			}
			s += " → " + string(out.outcome)
			if out.tier != "" {
				s += " " + string(out.tier)
			}
			if out.code != "" {
				s += " " + out.code
			}
			return s
		},
		DescribeState: func(state any) string { return state.(tierState).String() },
		DescribeOperationMetadata: func(info any) string {
			idx, ok := info.(int)
			if !ok || idx < 0 || idx >= len(ops) {
				return fmt.Sprint(info)
			}
			return ops[idx].String()
		},
	}
}

// tierOps converts the history for porcupine. Operations that can neither
// change nor observe the tier are left out. Unknown operations keep their
// real return time: their late effect is modelled by the pending effects.
func tierOps(ops []history.Op) []porcupine.Operation {
	out := make([]porcupine.Operation, 0, len(ops))
	for _, op := range ops {
		if op.Kind == history.KindListVectors || op.Kind == history.KindListSnapshots {
			continue // listings neither change nor report the tier
		}
		if (op.Kind == history.KindGetCollection || op.Kind == history.KindSnapshot) &&
			op.Outcome != history.OK && op.Code != api.CodeNotFound {
			continue
		}
		if op.Kind == history.KindRestore && op.Outcome == history.Failed {
			continue
		}
		if op.Kind == history.KindInsert || op.Kind == history.KindSearch {
			if op.Outcome == history.Failed && op.Code == api.CodeNotFound {
				continue
			}
		}
		out = append(out, porcupine.Operation{
			ClientId: op.Client,
			Input:    tierInput{collection: op.Collection, kind: op.Kind, target: op.Target},
			Call:     op.Call,
			Output:   tierOutput{outcome: op.Outcome, code: op.Code, tier: op.Tier},
			Return:   op.Return,
			Metadata: op.Index,
		})
	}
	return out
}

// Tiers checks that each collection's tier history is linearizable against
// the tier state machine (see step), with porcupine.
func (c *Checker) Tiers() error {
	vs, err := c.tiers()
	if err != nil {
		return err
	}
	return c.fail(vs)
}

func (c *Checker) tiers() ([]Violation, error) {
	model := tierModel(c.cfg.AutoDemote, c.ops)
	res, err := linearize.Check(model, tierOps(c.ops), linearize.Options{Timeout: c.cfg.TierTimeout})
	if err != nil {
		return nil, err
	}
	switch res.Verdict {
	case porcupine.Ok:
		return nil, nil
	case porcupine.Unknown:
		return []Violation{{Checker: TiersName, Message: fmt.Sprintf(
			"inconclusive: linearizability search did not finish within %s (raise Config.TierTimeout or shorten the history)",
			c.cfg.TierTimeout)}}, nil
	}
	// One violation per failing collection (partitions are checked separately).
	out := make([]Violation, 0, len(res.Failures))
	for _, f := range res.Failures {
		out = append(out, c.explainTiers(f))
	}
	return out, nil
}

// explainTiers describes why one collection's tier history is not
// linearizable: the longest linearizable prefix porcupine found, the state
// it reaches, and the operations none of which can come next.
func (c *Checker) explainTiers(f linearize.Failure) Violation {
	name := f.Partition[0].Input.(tierInput).collection
	v := Violation{Checker: TiersName, Collection: name}
	var next []string
	for _, op := range f.Stuck {
		idx := op.Metadata.(int)
		v.Ops = append(v.Ops, idx)
		next = append(next, c.ops[idx].String())
	}
	const maxNext = 6
	if len(next) > maxNext {
		next = append(next[:maxNext], fmt.Sprintf("…+%d", len(next)-maxNext))
	}
	v.Message = fmt.Sprintf("tier history of %d operations is not linearizable: the longest linearizable prefix has %d "+
		"operations and ends in state %s, from which none of the possible next operations can take effect: %s (model: %s)",
		len(f.Partition), len(f.Prefix), f.State, strings.Join(next, "; "), tierModelSummary)
	return v
}

const tierModelSummary = "set_tier ok sets the target, failed ones change nothing, unknown ones may apply then or later; " +
	"get_collection observes the tier; ok insert/search/restore promote to hot; ok snapshot observes presence"

// visualize writes porcupine's HTML timeline of the tier model over the
// whole history, with every violation annotated.
func (c *Checker) visualize(path string, vs []Violation) error {
	var anns []porcupine.Annotation
	for _, v := range vs {
		for _, idx := range v.Ops {
			op := c.ops[idx]
			anns = append(anns, porcupine.Annotation{
				Tag:             "violations",
				Start:           op.Call,
				End:             op.Return,
				Description:     fmt.Sprintf("%s: op %d", v.Checker, idx),
				Details:         v.String(),
				BackgroundColor: "#f7c6c6",
			})
		}
		if len(v.Ops) == 0 && len(c.ops) > 0 {
			last := c.ops[len(c.ops)-1]
			anns = append(anns, porcupine.Annotation{Tag: "violations", Start: last.Return,
				Description: v.Checker, Details: v.String(), BackgroundColor: "#f7c6c6"})
		}
	}
	return linearize.WriteTimeline(tierModel(c.cfg.AutoDemote, c.ops), tierOps(c.ops), path,
		linearize.Options{Timeout: c.cfg.TierTimeout, Annotations: anns})
}

package check

import (
	"fmt"
	"strings"

	"github.com/anishathalye/porcupine"

	"github.com/tierchaos/tierchaos/harness/history"
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

// step is the sequential specification of one collection's tier state.
//   - create ok: absent → hot. failed already_exists: observes present.
//   - delete ok: present → absent; failed not_found: observes absent.
//   - set_tier ok: present → target; failed: unchanged.
//   - get_collection ok: observes its tier; failed not_found: observes absent.
//   - insert or search ok: present → hot (transparent promotion); failed or
//     unknown: may have promoted.
//   - unknown writes: may or may not apply (their return is at infinity, so
//     they may also apply after any later operation).
//
// With autoDemote, hot may become warm and warm cold before any operation.
func step(s tierSet, in tierInput, out tierOutput, autoDemote bool) tierSet {
	if autoDemote {
		if s&stHot != 0 {
			s |= stWarm
		}
		if s&stWarm != 0 {
			s |= stCold
		}
	}
	present := s & stPresent
	switch in.kind {
	case history.KindCreateCollection:
		switch {
		case out.outcome == history.OK:
			if s&stAbsent == 0 {
				return 0
			}
			return stHot
		case out.outcome == history.Unknown && s&stAbsent != 0:
			return s | stHot
		case out.code == api.CodeAlreadyExists:
			return present
		}
	case history.KindDeleteCollection:
		switch {
		case out.outcome == history.OK:
			if present == 0 {
				return 0
			}
			return stAbsent
		case out.outcome == history.Unknown && present != 0:
			return s | stAbsent
		case out.code == api.CodeNotFound:
			return s & stAbsent
		}
	case history.KindSetTier:
		switch {
		case out.outcome == history.OK:
			if present == 0 {
				return 0
			}
			return tierBit(in.target)
		case out.outcome == history.Unknown && present != 0:
			return s | tierBit(in.target)
		}
	case history.KindGetCollection:
		switch {
		case out.outcome == history.OK:
			return s & tierBit(out.tier)
		case out.code == api.CodeNotFound:
			return s & stAbsent
		}
	case history.KindInsert, history.KindSearch:
		switch {
		case out.outcome == history.OK:
			if present == 0 {
				return 0
			}
			return stHot
		case present != 0 && out.code != api.CodeNotFound:
			return s | stHot
		}
	}
	return s
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
		Init: func() any { return stAll },
		Step: func(state, input, output any) (bool, any) {
			next := step(state.(tierSet), input.(tierInput), output.(tierOutput), autoDemote)
			return next != 0, next
		},
		Hash: func(state any) uint64 { return uint64(state.(tierSet)) },
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
		DescribeState: func(state any) string { return state.(tierSet).String() },
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
// change nor observe the tier are left out; unknown ones return at
// infinity.
func tierOps(ops []history.Op) []porcupine.Operation {
	out := make([]porcupine.Operation, 0, len(ops))
	for _, op := range ops {
		if op.Kind == history.KindGetCollection && op.Outcome != history.OK && op.Code != api.CodeNotFound {
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
			Return:   effectiveReturn(op),
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
	pops := tierOps(c.ops)
	res := porcupine.CheckOperationsTimeout(model, pops, c.cfg.TierTimeout)
	switch res {
	case porcupine.Ok:
		return nil, nil
	case porcupine.Unknown:
		return []Violation{{Checker: TiersName, Message: fmt.Sprintf(
			"inconclusive: linearizability search did not finish within %s (raise Config.TierTimeout or shorten the history)",
			c.cfg.TierTimeout)}}, nil
	}
	// Find the failing collections (partitions are checked separately).
	var out []Violation
	for _, part := range model.Partition(pops) {
		if porcupine.CheckOperationsTimeout(model, part, c.cfg.TierTimeout) == porcupine.Ok {
			continue
		}
		out = append(out, c.explainTiers(model, part))
	}
	return out, nil
}

// explainTiers describes why one collection's tier history is not
// linearizable: the longest linearizable prefix porcupine found, the state
// it reaches, and the operations none of which can come next.
func (c *Checker) explainTiers(model porcupine.Model, part []porcupine.Operation) Violation {
	name := part[0].Input.(tierInput).collection
	v := Violation{Checker: TiersName, Collection: name}
	_, info := porcupine.CheckOperationsVerbose(model, part, c.cfg.TierTimeout)
	var longest []porcupine.Operation
	for _, p := range info.PartialLinearizationsOperations() {
		for _, lin := range p {
			if len(lin) > len(longest) {
				longest = lin
			}
		}
	}
	state := model.Init()
	done := map[int]bool{}
	for _, op := range longest {
		_, state = model.Step(state, op.Input, op.Output)
		done[op.Metadata.(int)] = true
	}
	// The operations that could be linearized next: not yet linearized and
	// called before the earliest return among the rest.
	minRet := int64(never)
	for _, op := range part {
		if !done[op.Metadata.(int)] {
			minRet = min(minRet, op.Return)
		}
	}
	var next []string
	for _, op := range part {
		idx := op.Metadata.(int)
		if !done[idx] && op.Call <= minRet {
			v.Ops = append(v.Ops, idx)
			next = append(next, c.ops[idx].String())
		}
	}
	const maxNext = 6
	if len(next) > maxNext {
		next = append(next[:maxNext], fmt.Sprintf("…+%d", len(next)-maxNext))
	}
	v.Message = fmt.Sprintf("tier history of %d operations is not linearizable: the longest linearizable prefix has %d "+
		"operations and ends in state %s, from which none of the possible next operations can take effect: %s (model: %s)",
		len(part), len(longest), model.DescribeState(state), strings.Join(next, "; "), tierModelSummary)
	return v
}

const tierModelSummary = "set_tier ok sets the target, failed ones change nothing, unknown ones may apply; " +
	"get_collection observes the tier; ok insert/search promote to hot"

// visualize writes porcupine's HTML timeline of the tier model over the
// whole history, with every violation annotated.
func (c *Checker) visualize(path string, vs []Violation) error {
	model := tierModel(c.cfg.AutoDemote, c.ops)
	pops := tierOps(c.ops)
	_, info := porcupine.CheckOperationsVerbose(model, pops, c.cfg.TierTimeout)
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
	info.AddAnnotations(anns)
	if err := porcupine.VisualizePath(model, info, path); err != nil {
		return fmt.Errorf("check: visualize: %w", err)
	}
	return nil
}

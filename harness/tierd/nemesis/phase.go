package nemesis

import (
	"github.com/tierchaos/tierchaos/harness/fault"
	core "github.com/tierchaos/tierchaos/harness/nemesis"
	"github.com/tierchaos/tierchaos/harness/tierd/history"
	"github.com/tierchaos/tierchaos/system/api"
)

// Phase names (core's).
const (
	PhaseSteady   = core.PhaseSteady
	PhaseBetween  = core.PhaseBetween
	PhaseRecovery = core.PhaseRecovery
	PhaseAnyFault = core.PhaseAnyFault
)

// ClassHot is the class of the operations on the collections the traffic
// never demotes (their path never needs S3): a Budget with this Class
// judges only them.
const ClassHot = "hot"

// FaultPhase is the phase of operations called while a fault of the family
// is in effect.
func FaultPhase(f fault.Family) string { return core.FaultPhase(f) }

// Budget is a gate on the operations of one phase (core's).
type Budget = core.Budget

// PhaseReport is the statistics of one phase and its budget verdicts.
type PhaseReport = core.PhaseReport

// KindStats are one operation kind's figures in a phase.
type KindStats = core.KindStats

// BudgetLine is one checked gate.
type BudgetLine = core.BudgetLine

// Kinds turns history kinds into the names budgets select by.
func Kinds(ks ...history.Kind) []string {
	out := make([]string, len(ks))
	for i, k := range ks {
		out[i] = string(k)
	}
	return out
}

// expected are the error codes concurrent traffic always produces.
func expected(code string) bool {
	return code == api.CodeNotFound || code == api.CodeAlreadyExists || code == api.CodeTransitionInProgress
}

// coreOps maps tierd's history onto the operations budgets judge.
func coreOps(ops []history.Op) []core.Op {
	out := make([]core.Op, len(ops))
	for i, op := range ops {
		out[i] = core.Op{Kind: string(op.Kind), Call: op.Call, Return: op.Return, OK: op.Outcome == history.OK,
			Code: op.Code, Expected: op.Outcome != history.OK && expected(op.Code), Subject: op.Collection}
		if isHot(op.Collection) {
			out[i].Class = ClassHot
		}
	}
	return out
}

// phaseReports splits the operations called during the traffic into
// phases by the applied steps, and checks the budgets.
func phaseReports(ops []history.Op, applied []Applied, runStart int64, sch Schedule, budgets []Budget) []PhaseReport {
	return core.Judge(coreOps(ops), applied, runStart, sch.Length(), budgets)
}

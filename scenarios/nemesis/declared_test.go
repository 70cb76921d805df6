//go:build e2e

package nemesis

import (
	"testing"
	"time"

	"github.com/tierchaos/tierchaos/harness/fault"
	"github.com/tierchaos/tierchaos/harness/scenario"
	"github.com/tierchaos/tierchaos/harness/tierd"
	"github.com/tierchaos/tierchaos/harness/tierd/nemesis"
)

// declaredRows are tierd rows given wholly as values: the faults, tierd's
// nemesis traffic, the budgets per phase and the history check.
// TestDeclared runs them with their faults placed by their Timing,
// TestDeclaredNemesis runs the same values under random schedules of
// their own faults.
func declaredRows() []scenario.Scenario[*tierd.Case] {
	tr := nemesis.RowTraffic{Traffic: nemesis.Traffic{Rate: 100, Collections: 8, HotCollections: 2, Dimension: 8}}
	timing := scenario.Timing{Quiet: 3 * time.Second, Hold: 3 * time.Second, Gap: 2 * time.Second, Recovery: 6 * time.Second}
	checks := nemesis.RowChecks()
	return []scenario.Scenario[*tierd.Case]{
		{
			Name:    "declared-s3-partition",
			Faults:  []scenario.Fault{fault.Net{Toxic: "down"}, fault.S3{Action: "internal_error", Probability: 0.5}},
			Guards:  "a partition from S3, then failing S3 answers, never reach the hot path nor the catalog; an ok search comes within 5 s of each fault; no acknowledged write is lost",
			Traffic: tr, Timing: timing, Checks: checks,
			Budgets: []nemesis.Budget{steady, hotPath, catalog, recovery, backSoon(fault.FamilyNet, 5*time.Second), backSoon(fault.FamilyS3, 5*time.Second)},
		},
		{
			Name: "declared-kill-under-load",
			// A worker cycle that meets tierd still restarting is a note
			// of the runner (nemesis.Excused), not a finding.
			Faults:  []scenario.Fault{fault.Worker{Action: "run_once"}, fault.Process{Action: "kill"}, fault.Worker{Action: "run_once"}},
			Guards:  "a kill between worker cycles loses no acknowledged write; an ok search comes within 10 s of it, and the mix recovers",
			Traffic: tr, Timing: timing, Checks: checks,
			Budgets: []nemesis.Budget{steady, recovery, backSoon(fault.FamilyProcess, 10*time.Second)},
		},
	}
}

// TestDeclared runs the declarative rows with their faults in sequence.
func TestDeclared(t *testing.T) {
	scenario.Run(t, declaredRows(), stack.CaseFor)
}

// TestDeclaredNemesis runs the same rows under random schedules drawn
// from each row's own faults and the case's seed.
func TestDeclaredNemesis(t *testing.T) {
	scenario.RunNemesis(t, declaredRows(), stack.CaseFor, scenario.NemesisOptions{Length: 20 * time.Second})
}

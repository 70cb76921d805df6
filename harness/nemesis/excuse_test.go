package nemesis

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/tierchaos/tierchaos/harness/fault"
)

func TestExcusedOnlyWhenTheServiceWasDown(t *testing.T) {
	s := time.Second
	kill := Applied{Step: 0, Kind: fault.KindProcessKill, Family: fault.FamilyProcess, Start: 5 * s, End: 8 * s}
	worker := func(start time.Duration, err string) Applied {
		return Applied{Step: 1, Kind: "worker.run_once", Family: fault.FamilyWorker, Start: start, End: start + 10*time.Millisecond, Error: err}
	}
	tests := []struct {
		name    string
		applied []Applied
		want    bool
	}{
		{"worker failed while tierd restarted", []Applied{kill, worker(7*s, "EOF")}, true},
		{"worker failed as the kill began", []Applied{kill, worker(5*s-5*time.Millisecond, "EOF")}, true},
		{"worker failed after tierd was ready", []Applied{kill, worker(9*s, "EOF")}, false},
		{"worker failed before the kill", []Applied{kill, worker(2*s, "EOF")}, false},
		{"worker failed with no process fault", []Applied{{Kind: "net.down", Family: fault.FamilyNet, Start: 5 * s, End: 8 * s}, worker(7*s, "EOF")}, false},
		{"worker failed beside a skipped kill", []Applied{{Family: fault.FamilyProcess}, worker(7*s, "EOF")}, false},
		{"worker succeeded", []Applied{kill, worker(7*s, "")}, false},
		{"a net fault that failed during the kill", []Applied{kill, {Step: 1, Kind: "net.down", Family: fault.FamilyNet, Start: 7 * s, End: 7 * s, Error: "toxiproxy: refused"}}, false},
		{"a kill's own failure beside a restart", []Applied{{Kind: fault.KindProcessRestart, Family: fault.FamilyProcess, Start: 7 * s, End: 9 * s}, {Step: 1, Kind: fault.KindProcessKill, Family: fault.FamilyProcess, Start: 7 * s, End: 8 * s, Error: "not ready"}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, Excused(tt.applied, len(tt.applied)-1))
		})
	}
}

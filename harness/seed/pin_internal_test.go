package seed

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRunDepth(t *testing.T) {
	tests := []struct {
		pattern string
		want    int
	}{
		{"", 1},
		{"^TestX$", 1},
		{"^TestX$/^a$", 2},
		{"TestX/a/b", 3},
		{`^TestX$/^a\/b$`, 2},    // an escaped slash is not a level
		{"TestX/[/]", 2},         // nor one in brackets
		{"TestX/(a/b)", 2},       // nor one in parentheses
		{"TestX/a|TestY/b/c", 3}, // alternatives: the deepest
		{"TestX|TestY", 1},
	}
	for _, tt := range tests {
		t.Run(tt.pattern, func(t *testing.T) {
			assert.Equal(t, tt.want, runDepth(tt.pattern))
		})
	}
}

// TestBeginCountsIterationsAndPins drives the per-process bookkeeping
// behind For: iterations of one name, For calls sharing an iteration, and
// the pin of -chaos.case-seed.
func TestBeginCountsIterationsAndPins(t *testing.T) {
	type call struct {
		name, run string
		end       bool // end the previous call of this name first
		wantIter  int
		wantSeed  func(run uint64) uint64
		wantPin   bool
		wantErr   bool
	}
	derived := func(name string, n int) func(uint64) uint64 {
		return func(run uint64) uint64 { return Iteration(Derive(run, name), n) }
	}
	pinned := func(n int) func(uint64) uint64 {
		return func(uint64) uint64 { return Iteration(99, n) }
	}
	tests := []struct {
		name  string
		pin   bool
		calls []call
	}{
		{"iterations-without-pin", false, []call{
			{name: "TestX/a", run: "", wantIter: 1, wantSeed: derived("TestX/a", 1)},
			{name: "TestX/a", run: "", end: true, wantIter: 2, wantSeed: derived("TestX/a", 2)},
			{name: "TestX/b", run: "", wantIter: 1, wantSeed: derived("TestX/b", 1)},
			{name: "TestX/a", run: "", end: true, wantIter: 3, wantSeed: derived("TestX/a", 3)},
		}},
		{"two-calls-while-open-share-an-iteration", false, []call{
			{name: "TestX/a", wantIter: 1, wantSeed: derived("TestX/a", 1)},
			{name: "TestX/a", wantIter: 1, wantSeed: derived("TestX/a", 1)},
		}},
		{"pin-goes-to-the-case-at-runs-depth", true, []call{
			{name: "TestX", run: "^TestX$/^a$", wantIter: 1, wantSeed: derived("TestX", 1)},
			{name: "TestX/a", run: "^TestX$/^a$", wantIter: 1, wantSeed: pinned(1), wantPin: true},
			{name: "TestX/a", run: "^TestX$/^a$", end: true, wantIter: 2, wantSeed: pinned(2), wantPin: true},
		}},
		{"pin-refuses-a-second-case", true, []call{
			{name: "TestX/a", run: "TestX/", wantIter: 1, wantSeed: pinned(1), wantPin: true},
			{name: "TestX/b", run: "TestX/", wantErr: true},
		}},
		{"pin-needs-run", true, []call{
			{name: "TestX/a", run: "", wantErr: true},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := &Value{seed: 7}
			if tt.pin {
				require.NoError(t, caseSeedFlag{v}.Set("99"))
			}
			for i, c := range tt.calls {
				if c.end {
					v.end(c.name)
				}
				got, err := v.begin(c.name, c.run)
				if c.wantErr {
					require.Error(t, err, "call %d", i)
					assert.True(t, errors.Is(err, ErrPin), "call %d: %v", i, err)
					continue
				}
				require.NoError(t, err, "call %d", i)
				assert.Equal(t, c.wantIter, got.Iteration, "call %d", i)
				assert.Equal(t, c.wantSeed(7), got.Seed, "call %d", i)
				assert.Equal(t, c.wantPin, got.Pinned, "call %d", i)
				assert.Equal(t, uint64(7), got.Run, "call %d", i)
			}
		})
	}
}

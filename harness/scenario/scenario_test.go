package scenario_test

import (
	"context"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tierchaos/tierchaos/harness/scenario"
)

// testCase is the case type of the tests' tables: what newCase saw.
type testCase struct {
	row     string
	variant string
}

// newTestCase records the row and variant newCase was given.
func newTestCase(t *testing.T, s scenario.Scenario[*testCase]) *testCase {
	t.Helper()
	return &testCase{row: s.Name, variant: s.Variant}
}

// row is a valid row named name whose Run does nothing.
func row(name string) scenario.Scenario[*testCase] {
	return scenario.Scenario[*testCase]{
		Name:   name,
		Faults: []scenario.Fault{scenario.Described("none: a test row")},
		Guards: "nothing",
		Run:    func(context.Context, *testing.T, *testCase) {},
	}
}

// with is row(name) changed by f.
func with(name string, f func(*scenario.Scenario[*testCase])) scenario.Scenario[*testCase] {
	s := row(name)
	f(&s)
	return s
}

// kindOnly is a fault with a kind and the given description.
type kindOnly struct{ kind, text string }

func (k kindOnly) Kind() string   { return k.kind }
func (k kindOnly) String() string { return k.text }

func TestDescribed(t *testing.T) {
	f := scenario.Described("S3 upload held 1.5 s")
	require.Equal(t, scenario.KindCustom, f.Kind())
	require.Equal(t, "custom", f.Kind())
	require.Equal(t, "S3 upload held 1.5 s", f.String())
}

func TestValidate(t *testing.T) {
	cases := []struct {
		name  string
		table []scenario.Scenario[*testCase]
		// want are the parts of the error, in order; none for a valid
		// table.
		want []string
	}{
		{name: "valid", table: []scenario.Scenario[*testCase]{row("a"), row("b")}},
		{name: "empty table", table: nil, want: []string{"no rows"}},
		{
			name:  "duplicate name",
			table: []scenario.Scenario[*testCase]{row("a"), row("b"), row("a")},
			want:  []string{`row 2 "a": name already used by row 0`},
		},
		{
			name:  "empty name",
			table: []scenario.Scenario[*testCase]{row("a"), row("")},
			want:  []string{`row 1 "": no name`},
		},
		{
			name:  "no run",
			table: []scenario.Scenario[*testCase]{with("lazy", func(s *scenario.Scenario[*testCase]) { s.Run = nil })},
			want:  []string{`row 0 "lazy": no Run`},
		},
		{
			name:  "no faults",
			table: []scenario.Scenario[*testCase]{with("calm", func(s *scenario.Scenario[*testCase]) { s.Faults = nil })},
			want:  []string{`row 0 "calm": no Faults`},
		},
		{
			name: "nil, kindless and empty faults",
			table: []scenario.Scenario[*testCase]{with("odd", func(s *scenario.Scenario[*testCase]) {
				s.Faults = []scenario.Fault{nil, kindOnly{text: "x"}, scenario.Described("")}
			})},
			want: []string{`row 0 "odd": fault 0 is nil`, `row 0 "odd": fault 1 (x) has no kind`, `row 0 "odd": fault 2 of kind custom has no description`},
		},
		{
			name:  "no guards",
			table: []scenario.Scenario[*testCase]{with("vague", func(s *scenario.Scenario[*testCase]) { s.Guards = "" })},
			want:  []string{`row 0 "vague": no Guards`},
		},
		{
			name:  "negative timeout",
			table: []scenario.Scenario[*testCase]{with("late", func(s *scenario.Scenario[*testCase]) { s.Timeout = -time.Second })},
			want:  []string{`row 0 "late": negative Timeout -1s`},
		},
		{
			name: "every bad row named",
			table: []scenario.Scenario[*testCase]{
				row("a"),
				with("b", func(s *scenario.Scenario[*testCase]) { s.Run = nil }),
				with("c", func(s *scenario.Scenario[*testCase]) { s.Faults = nil }),
			},
			want: []string{`row 1 "b": no Run`, `row 2 "c": no Faults`},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := scenario.Validate(tc.table)
			if len(tc.want) == 0 {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, scenario.ErrInvalid)
			msg := err.Error()
			last := -1
			for _, w := range tc.want {
				require.Contains(t, msg, w)
				i := strings.Index(msg, w)
				require.Greater(t, i, last, "%q after the previous part in %q", w, msg)
				last = i
			}
		})
	}
}

// TestRunNamesSubtestsAndPassesTheRow: each row runs once, as a subtest
// named after it, on the case newCase made from that very row.
func TestRunNamesSubtestsAndPassesTheRow(t *testing.T) {
	var (
		mu   sync.Mutex
		seen = map[string]testCase{}
	)
	record := func(_ context.Context, t *testing.T, c *testCase) {
		mu.Lock()
		defer mu.Unlock()
		seen[t.Name()] = *c
	}
	table := []scenario.Scenario[*testCase]{
		with("plain", func(s *scenario.Scenario[*testCase]) { s.Run = record }),
		with("over-grpc", func(s *scenario.Scenario[*testCase]) { s.Run = record; s.Variant = "grpc" }),
	}
	scenario.Run(t, table, newTestCase)
	require.Equal(t, map[string]testCase{
		t.Name() + "/plain":     {row: "plain"},
		t.Name() + "/over-grpc": {row: "over-grpc", variant: "grpc"},
	}, seen)
}

// TestRunAppliesTimeout: Run's context ends by the row's timeout, or by
// DefaultTimeout when the row sets none.
func TestRunAppliesTimeout(t *testing.T) {
	cases := []struct {
		name    string
		timeout time.Duration
		want    time.Duration
	}{
		{name: "default", timeout: 0, want: scenario.DefaultTimeout},
		{name: "own", timeout: 4 * time.Minute, want: 4 * time.Minute},
		{name: "short", timeout: 5 * time.Second, want: 5 * time.Second},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var (
				left     time.Duration
				deadline bool
			)
			table := []scenario.Scenario[*testCase]{with(tc.name, func(s *scenario.Scenario[*testCase]) {
				s.Timeout = tc.timeout
				s.Run = func(ctx context.Context, _ *testing.T, _ *testCase) {
					var d time.Time
					d, deadline = ctx.Deadline()
					left = time.Until(d)
				}
			})}
			scenario.Run(t, table, newTestCase)
			require.True(t, deadline, "Run's context has a deadline")
			assert.Positive(t, left)
			assert.LessOrEqual(t, left, tc.want)
		})
	}
	t.Run("ends the context", func(t *testing.T) {
		var err error
		table := []scenario.Scenario[*testCase]{with("waits", func(s *scenario.Scenario[*testCase]) {
			s.Timeout = 10 * time.Millisecond
			s.Run = func(ctx context.Context, _ *testing.T, _ *testCase) {
				<-ctx.Done()
				err = ctx.Err()
			}
		})}
		scenario.Run(t, table, newTestCase)
		require.ErrorIs(t, err, context.DeadlineExceeded)
	})
}

// badTableEnv makes TestRunFailsOnBadTable run the bad table itself (in
// the child process it starts).
const badTableEnv = "SCENARIO_TEST_BAD_TABLE"

// TestRunFailsOnBadTable: Run fails the test on a bad table, names the bad
// row, and runs no row. The failing run happens in a child test process,
// so that its failure is observed rather than inherited.
func TestRunFailsOnBadTable(t *testing.T) {
	if os.Getenv(badTableEnv) == "1" {
		table := []scenario.Scenario[*testCase]{
			with("ran", func(s *scenario.Scenario[*testCase]) {
				s.Run = func(_ context.Context, t *testing.T, _ *testCase) { t.Log("ROW RAN") }
			}),
			row("ran"),
		}
		scenario.Run(t, table, newTestCase)
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestRunFailsOnBadTable$", "-test.v")
	cmd.Env = append(os.Environ(), badTableEnv+"=1")
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit, "the child fails: %s", out)
	assert.Contains(t, string(out), `row 1 "ran": name already used by row 0`)
	assert.NotContains(t, string(out), "ROW RAN")
	assert.Contains(t, string(out), "--- FAIL: TestRunFailsOnBadTable")
}

// TestRunLogsSummaryOnFailure: a failing row still logs its faults and its
// summary. Checked in a child process, whose failure is expected.
func TestRunLogsSummaryOnFailure(t *testing.T) {
	const env = "SCENARIO_TEST_FAILING_ROW"
	if os.Getenv(env) == "1" {
		table := []scenario.Scenario[*testCase]{with("breaks", func(s *scenario.Scenario[*testCase]) {
			s.Faults = []scenario.Fault{kindOnly{kind: "process.kill", text: "SIGKILL"}, scenario.Described("S3 held")}
			s.Run = func(_ context.Context, t *testing.T, _ *testCase) { t.Fatal("the row's check failed") }
		})}
		scenario.Run(t, table, newTestCase)
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestRunLogsSummaryOnFailure$", "-test.v")
	cmd.Env = append(os.Environ(), env+"=1")
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit, "the child fails: %s", out)
	lines := string(out)
	for _, want := range []string{
		"fault (process.kill): SIGKILL",
		"fault (custom): S3 held",
		"guards: nothing",
		"the row's check failed",
		"case breaks failed after",
		"(faults: 2, timeout 2m0s)",
	} {
		assert.Contains(t, lines, want)
	}
}

// TestRunOrder: rows run in table order.
func TestRunOrder(t *testing.T) {
	var order []string
	names := []string{"c", "a", "b"}
	var table []scenario.Scenario[*testCase]
	for _, n := range names {
		table = append(table, with(n, func(s *scenario.Scenario[*testCase]) {
			s.Run = func(_ context.Context, _ *testing.T, c *testCase) { order = append(order, c.row) }
		}))
	}
	scenario.Run(t, table, newTestCase)
	require.Equal(t, names, order)
	require.False(t, slices.IsSorted(order), "the table order is not the sorted order, so the check can fail")
}

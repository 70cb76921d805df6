// Package seed makes every random choice of a chaos run reproducible.
//
// One run seed comes from the -chaos.seed flag (random when not given) and is
// printed at start. Each test case derives its own seed from the run seed
// and its full name (t.Name()). Under go test -count=N every iteration of a
// case gets a seed of its own: iteration 1 the derived one, iteration n the
// hash of that seed and "#n". When a case fails, the exact command that
// reruns just that case is logged: -run selecting it, the run seed, the
// failing iteration's case seed pinned with -chaos.case-seed, and -count=1.
//
// Wiring, in the test package:
//
//	func TestMain(m *testing.M) {
//		seed.Init(os.Stderr) // registers -chaos.seed, parses flags, prints the seed
//		os.Exit(m.Run())
//	}
//
//	func TestX(t *testing.T) {
//		rng := seed.For(t).Rand()
//		...
//	}
//
// The package keeps no state of its own: the run seed lives in the flag
// registered on flag.CommandLine.
package seed

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/zeebo/xxh3"
)

// FlagName is the name of the run-seed flag.
const FlagName = "chaos.seed"

// CaseSeedFlagName is the name of the flag that pins the case seed of the
// one case -run selects (the rerun command of a failing case sets it).
const CaseSeedFlagName = "chaos.case-seed"

// EnvPrefix marks environment variables that shape a run (for example
// TIERCHAOS_SUT=inprocess); those set are repeated in the rerun command.
const EnvPrefix = "TIERCHAOS_"

// EnvArtifacts names the folder where tests write the files of failing
// cases. It only says where output goes, so the rerun command leaves it out.
const EnvArtifacts = "TIERCHAOS_ARTIFACTS"

// ErrNotRegistered is returned when -chaos.seed was not registered.
var ErrNotRegistered = errors.New("seed: -" + FlagName + " is not registered: call seed.Init or seed.Register from TestMain")

// ErrPin is wrapped by the errors For reports when -chaos.case-seed cannot
// say which case it pins.
var ErrPin = errors.New("seed: -" + CaseSeedFlagName + " pins the case seed of exactly one case, the one -run selects")

// Value is the flag.Value behind -chaos.seed. It also holds the pinned
// case seed (-chaos.case-seed) and counts the iterations of each case in
// this process.
type Value struct {
	seed    uint64
	fromCLI bool

	mu     sync.Mutex
	pin    uint64
	pinned bool
	// pinName is the case the pin went to (the first at -run's depth).
	pinName string
	runs    map[string]*caseRuns
}

// caseRuns counts how often a case (one full test name) began in this
// process, and how many of its For calls are still open.
type caseRuns struct {
	iteration int
	open      int
}

// String implements flag.Value.
func (v *Value) String() string {
	if v == nil {
		return "0"
	}
	return strconv.FormatUint(v.seed, 10)
}

// Set implements flag.Value: a decimal uint64.
func (v *Value) Set(s string) error {
	n, err := strconv.ParseUint(strings.TrimSpace(s), 10, 64)
	if err != nil {
		return fmt.Errorf("seed: -%s wants a decimal number from 0 to %d: %w", FlagName, uint64(1<<64-1), err)
	}
	v.seed, v.fromCLI = n, true
	return nil
}

// Get implements flag.Getter.
func (v *Value) Get() any { return v.seed }

// Seed returns the run seed.
func (v *Value) Seed() uint64 { return v.seed }

// FromFlag reports whether the seed was given on the command line.
func (v *Value) FromFlag() bool { return v.fromCLI }

// CaseSeed returns the case seed pinned with -chaos.case-seed and whether
// one was given.
func (v *Value) CaseSeed() (uint64, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.pin, v.pinned
}

// caseSeedFlag is the flag.Value behind -chaos.case-seed; it writes into
// the run seed's Value.
type caseSeedFlag struct{ v *Value }

// String implements flag.Value.
func (f caseSeedFlag) String() string {
	if f.v == nil {
		return ""
	}
	if s, ok := f.v.CaseSeed(); ok {
		return strconv.FormatUint(s, 10)
	}
	return ""
}

// Set implements flag.Value: a decimal uint64.
func (f caseSeedFlag) Set(s string) error {
	n, err := strconv.ParseUint(strings.TrimSpace(s), 10, 64)
	if err != nil {
		return fmt.Errorf("seed: -%s wants a decimal number from 0 to %d: %w", CaseSeedFlagName, uint64(1<<64-1), err)
	}
	f.v.mu.Lock()
	defer f.v.mu.Unlock()
	f.v.pin, f.v.pinned = n, true
	return nil
}

// RegisterFlags registers -chaos.seed and -chaos.case-seed on fs, the run
// seed with a fresh random default, and returns the run seed's value.
func RegisterFlags(fs *flag.FlagSet) *Value {
	v := &Value{seed: rand.Uint64()}
	fs.Var(v, FlagName, "seed of every random choice of the chaos run (default: random, printed at start)")
	fs.Var(caseSeedFlag{v}, CaseSeedFlagName,
		"case seed of the one case -run selects, for its first iteration (a failing case prints it in its rerun command)")
	return v
}

// Register registers -chaos.seed on flag.CommandLine, once: a second call
// returns the value registered first.
func Register() *Value {
	if v, err := lookup(flag.CommandLine); err == nil {
		return v
	}
	return RegisterFlags(flag.CommandLine)
}

// Init registers the flag, parses the command line if the test binary has
// not yet, prints the run seed to w, and returns it. Call it from TestMain.
func Init(w io.Writer) uint64 {
	v := Register()
	if !flag.Parsed() {
		flag.Parse()
	}
	origin := "random"
	if v.FromFlag() {
		origin = "from -" + FlagName
	}
	fmt.Fprintf(w, "chaos: run seed %d (%s); rerun with -%s=%d\n", v.Seed(), origin, FlagName, v.Seed())
	if pin, ok := v.CaseSeed(); ok {
		fmt.Fprintf(w, "chaos: case seed %d pinned (-%s) for the case -run selects\n", pin, CaseSeedFlagName)
	}
	return v.Seed()
}

func lookup(fs *flag.FlagSet) (*Value, error) {
	f := fs.Lookup(FlagName)
	if f == nil {
		return nil, ErrNotRegistered
	}
	v, ok := f.Value.(*Value)
	if !ok {
		return nil, fmt.Errorf("seed: -%s is registered with a foreign type %T", FlagName, f.Value)
	}
	return v, nil
}

// Run returns the run seed from flag.CommandLine.
func Run() (uint64, error) {
	v, err := lookup(flag.CommandLine)
	if err != nil {
		return 0, err
	}
	return v.Seed(), nil
}

// Derive returns the seed of the named case (or stream) of a run: the xxh3
// hash of name seeded with the run seed.
func Derive(run uint64, name string) uint64 {
	return xxh3.HashStringSeed(name, run)
}

// Iteration returns the case seed of iteration n (1-based) of a case whose
// first iteration has the case seed first: first itself for n <= 1, else
// Derive(first, "#n"). go test -count=N reruns the same test names in one
// process; each iteration draws its own randomness (and so, for example,
// its own collection names).
func Iteration(first uint64, n int) uint64 {
	if n <= 1 {
		return first
	}
	return Derive(first, fmt.Sprintf("#%d", n))
}

// Case is the randomness of one test case.
type Case struct {
	// Run is the run seed.
	Run uint64
	// Name is the case's full test name.
	Name string
	// Seed is the case seed: Iteration(first, Iteration) where first is
	// Derive(Run, Name), or the pinned -chaos.case-seed.
	Seed uint64
	// Iteration counts the runs of this case in this process, from 1
	// (go test -count=N runs it N times).
	Iteration int
	// Pinned is true when the first iteration's seed came from
	// -chaos.case-seed.
	Pinned bool
}

// Rand returns a new generator for the case; every call returns a generator
// with the same sequence.
func (c *Case) Rand() *rand.Rand {
	return rand.New(rand.NewPCG(c.Seed, c.Run))
}

// Stream returns a generator for one named stream of the case (for example
// one per worker goroutine), independent of the other streams and of the
// order in which goroutines run.
func (c *Case) Stream(name string) *rand.Rand {
	return rand.New(rand.NewPCG(Derive(c.Seed, name), c.Run))
}

// For returns t's case seed, logs it, and registers a cleanup that logs the
// command rerunning just this case, this iteration, when it fails. It fails
// t when the flag was not registered, or when -chaos.case-seed is set and
// -run does not select exactly one case at its depth. Call it once per test
// or subtest (calls made while t runs share one iteration).
func For(t testing.TB) *Case {
	t.Helper()
	v, err := lookup(flag.CommandLine)
	if err != nil {
		t.Fatal(err)
	}
	c, err := v.begin(t.Name(), runFlag())
	if err != nil {
		t.Fatal(err)
	}
	switch {
	case c.Iteration > 1:
		t.Logf("chaos: case seed %d (run seed %d, iteration %d in this process)", c.Seed, c.Run, c.Iteration)
	case c.Pinned:
		t.Logf("chaos: case seed %d (run seed %d, pinned by -%s)", c.Seed, c.Run, CaseSeedFlagName)
	default:
		t.Logf("chaos: case seed %d (run seed %d)", c.Seed, c.Run)
	}
	t.Cleanup(func() {
		v.end(c.Name)
		if t.Failed() {
			t.Logf("chaos: reproduce this case with:\n\t%s", c.Command(Environment()))
		}
	})
	return c
}

// begin starts (or joins, while a For call of the same test is open) an
// iteration of the case named name and returns its seeds. run is the -run
// pattern of the test binary.
func (v *Value) begin(name, run string) (*Case, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.runs == nil {
		v.runs = map[string]*caseRuns{}
	}
	r := v.runs[name]
	if r == nil {
		r = &caseRuns{}
		v.runs[name] = r
	}
	if r.open == 0 {
		r.iteration++
	}
	c := &Case{Run: v.seed, Name: name, Iteration: r.iteration}
	first := Derive(v.seed, name)
	if v.pinned && run == "" {
		return nil, fmt.Errorf("%w: -run is empty", ErrPin)
	}
	if v.pinned && depth(name) == runDepth(run) {
		if v.pinName != "" && v.pinName != name {
			return nil, fmt.Errorf("%w: -run %q selects both %q and %q", ErrPin, run, v.pinName, name)
		}
		v.pinName = name
		first, c.Pinned = v.pin, true
	}
	r.open++
	c.Seed = Iteration(first, c.Iteration)
	return c, nil
}

// end closes one For call of the case named name.
func (v *Value) end(name string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if r := v.runs[name]; r != nil && r.open > 0 {
		r.open--
	}
}

// runFlag returns the test binary's -test.run pattern ("" when unset).
func runFlag() string {
	if f := flag.Lookup("test.run"); f != nil {
		return f.Value.String()
	}
	return ""
}

// depth counts the levels of a test name ("TestX/a/b" has 3).
func depth(name string) int { return strings.Count(name, "/") + 1 }

// runDepth counts the levels of a -run pattern the way the testing package
// splits it: at slashes outside brackets and parentheses. With top-level
// alternatives ("A/b|C") the deepest counts. An empty pattern has depth 1.
func runDepth(pattern string) int {
	best, cur := 1, 1
	brackets, parens := 0, 0
	for i := 0; i < len(pattern); i++ {
		switch pattern[i] {
		case '\\':
			i++
		case '[':
			brackets++
		case ']':
			brackets = max(brackets-1, 0)
		case '(':
			if brackets == 0 {
				parens++
			}
		case ')':
			if brackets == 0 {
				parens = max(parens-1, 0)
			}
		case '/':
			if brackets == 0 && parens == 0 {
				cur++
			}
		case '|':
			if brackets == 0 && parens == 0 {
				best, cur = max(best, cur), 1
			}
		}
	}
	return max(best, cur)
}

// Build describes how the test binary was built and where it runs, as far
// as the rerun command needs it.
type Build struct {
	// Tags are the build tags (-tags).
	Tags string
	// Race is true for -race builds.
	Race bool
	// Package is the package directory relative to the module root, as
	// "./scenarios/failure" ("." at the root).
	Package string
	// Env lists NAME=value pairs to prefix the command with.
	Env []string
}

// Environment reads the build settings of the running binary, its package
// directory (go test runs test binaries in it) and the set TIERCHAOS_*
// variables.
func Environment() Build {
	var b Build
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			switch s.Key {
			case "-tags":
				b.Tags = s.Value
			case "-race":
				b.Race = s.Value == "true"
			}
		}
	}
	b.Package = "."
	if wd, err := os.Getwd(); err == nil {
		b.Package = packagePath(wd)
	}
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, EnvPrefix) && !strings.HasPrefix(kv, EnvArtifacts+"=") {
			b.Env = append(b.Env, kv)
		}
	}
	slices.Sort(b.Env)
	return b
}

// packagePath returns dir relative to the nearest enclosing module root
// (a directory with go.mod), as "./a/b", or "." if there is none.
func packagePath(dir string) string {
	for root := dir; ; {
		if _, err := os.Stat(filepath.Join(root, "go.mod")); err == nil {
			rel, err := filepath.Rel(root, dir)
			if err != nil || rel == "." {
				return "."
			}
			return "./" + filepath.ToSlash(rel)
		}
		parent := filepath.Dir(root)
		if parent == root {
			return "."
		}
		root = parent
	}
}

// RunPattern returns the -run regular expression that selects exactly the
// test named name ("TestX/case/sub"): each level anchored and quoted.
func RunPattern(name string) string {
	parts := strings.Split(name, "/")
	for i, p := range parts {
		parts[i] = "^" + regexp.QuoteMeta(p) + "$"
	}
	return strings.Join(parts, "/")
}

// Command returns the shell command that reruns the test named name with
// the given run seed, for example
//
//	go test -tags e2e -run '^TestX$/^case$' ./scenarios/failure -chaos.seed=7 -count=1
//
// It reruns the first iteration of each case; Case.Command reruns one
// iteration of one case.
func Command(name string, run uint64, b Build) string {
	return command(name, b, fmt.Sprintf("-%s=%d", FlagName, run))
}

// Command returns the shell command that reruns exactly this iteration of
// the case: its run seed, its own case seed pinned, and -count=1, for
// example
//
//	go test -tags e2e -run '^TestX$/^case$' ./scenarios/failure -chaos.seed=7 -chaos.case-seed=42 -count=1
func (c *Case) Command(b Build) string {
	return command(c.Name, b, fmt.Sprintf("-%s=%d", FlagName, c.Run), fmt.Sprintf("-%s=%d", CaseSeedFlagName, c.Seed))
}

// command builds a rerun command for the test named name with the given
// test flags, followed by -count=1.
func command(name string, b Build, flags ...string) string {
	var parts []string
	for _, kv := range b.Env {
		k, v, _ := strings.Cut(kv, "=")
		parts = append(parts, k+"="+shellQuote(v))
	}
	parts = append(parts, "go", "test")
	if b.Race {
		parts = append(parts, "-race")
	}
	if b.Tags != "" {
		parts = append(parts, "-tags", shellQuote(b.Tags))
	}
	parts = append(parts, "-run", shellQuote(RunPattern(name)), b.Package)
	parts = append(parts, flags...)
	parts = append(parts, "-count=1")
	return strings.Join(parts, " ")
}

var shellSafe = regexp.MustCompile(`^[A-Za-z0-9_./=,:+-]+$`)

// shellQuote quotes s for a POSIX shell when needed.
func shellQuote(s string) string {
	if s != "" && shellSafe.MatchString(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

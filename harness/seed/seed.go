// Package seed makes every random choice of a chaos run reproducible.
//
// One run seed comes from the -chaos.seed flag (random when not given) and is
// printed at start. Each test case derives its own seed from the run seed
// and its full name (t.Name()), so a case rerun alone with -run and the same
// -chaos.seed sees exactly the same randomness. When a case fails, the exact
// command that reruns just that case is logged.
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
	"testing"

	"github.com/zeebo/xxh3"
)

// FlagName is the name of the run-seed flag.
const FlagName = "chaos.seed"

// EnvPrefix marks environment variables that shape a run (for example
// TIERCHAOS_SUT=inprocess); those set are repeated in the rerun command.
const EnvPrefix = "TIERCHAOS_"

// ErrNotRegistered is returned when -chaos.seed was not registered.
var ErrNotRegistered = errors.New("seed: -" + FlagName + " is not registered: call seed.Init or seed.Register from TestMain")

// Value is the flag.Value behind -chaos.seed.
type Value struct {
	seed    uint64
	fromCLI bool
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

// RegisterFlags registers -chaos.seed on fs with a fresh random default
// and returns its value.
func RegisterFlags(fs *flag.FlagSet) *Value {
	v := &Value{seed: rand.Uint64()}
	fs.Var(v, FlagName, "seed of every random choice of the chaos run (default: random, printed at start)")
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

// Case is the randomness of one test case.
type Case struct {
	// Run is the run seed.
	Run uint64
	// Name is the case's full test name.
	Name string
	// Seed is Derive(Run, Name).
	Seed uint64
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
// command rerunning just this case when it fails. It fails t when the flag
// was not registered. Call it once per test or subtest.
func For(t testing.TB) *Case {
	t.Helper()
	run, err := Run()
	if err != nil {
		t.Fatal(err)
	}
	c := &Case{Run: run, Name: t.Name(), Seed: Derive(run, t.Name())}
	t.Logf("chaos: case seed %d (run seed %d)", c.Seed, run)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("chaos: reproduce this case with:\n\t%s", Command(t.Name(), run, Environment()))
		}
	})
	return c
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
		if strings.HasPrefix(kv, EnvPrefix) {
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
func Command(name string, run uint64, b Build) string {
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
	parts = append(parts, "-run", shellQuote(RunPattern(name)), b.Package,
		fmt.Sprintf("-%s=%d", FlagName, run), "-count=1")
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

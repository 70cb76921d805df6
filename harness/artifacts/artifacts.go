// Package artifacts gives a test case a folder for the files that explain
// its failure (checker histories and timelines, tierd's log), in one place
// a CI job can collect.
//
// Dir picks, in this order: the testing package's own artifact folder when
// the test binary runs with -artifacts (t.ArtifactDir()); a new folder
// under $TIERCHAOS_ARTIFACTS (make test sets it to test-results/artifacts/
// <part>), named after the package and the test; else a new folder
// tierchaos-<test>-* under os.TempDir(). A folder Dir made is removed when
// the test ends if nothing was written into it, so passing cases leave
// nothing behind.
package artifacts

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/tierchaos/tierchaos/harness/seed"
)

// EnvRoot names the folder under which Dir makes the test folders.
const EnvRoot = seed.EnvArtifacts

// ErrDir is wrapped by Dir's errors.
var ErrDir = errors.New("artifacts: no folder for the test's files")

var unsafePath = regexp.MustCompile(`[^A-Za-z0-9_.-]+`)

// Dir returns a folder for t's artifacts (see the package comment).
func Dir(t testing.TB) (string, error) {
	t.Helper()
	if f := flag.Lookup("test.artifacts"); f != nil && f.Value.String() == "true" {
		return t.ArtifactDir(), nil
	}
	name := Name(t.Name())
	var dir string
	var err error
	if root := os.Getenv(EnvRoot); root != "" {
		parent := filepath.Join(root, packageDir())
		if err := os.MkdirAll(parent, 0o755); err != nil {
			return "", fmt.Errorf("%w: %w", ErrDir, err)
		}
		dir, err = os.MkdirTemp(parent, name+"-")
	} else {
		dir, err = os.MkdirTemp("", "tierchaos-"+name+"-")
	}
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrDir, err)
	}
	t.Cleanup(func() { _ = os.Remove(dir) }) // only removes it while empty
	return dir, nil
}

// Name turns a test name into one path element: "TestX/a b" becomes
// "TestX_a_b".
func Name(test string) string {
	return strings.Trim(unsafePath.ReplaceAllString(test, "_"), "_.")
}

// packageDir is the test's package folder relative to the module root
// ("scenarios/failure"), or "root" for the module root.
func packageDir() string {
	p := strings.TrimPrefix(seed.Environment().Package, "./")
	if p == "." || p == "" {
		return "root"
	}
	return filepath.FromSlash(p)
}

// Package depcheck lists a package's dependencies with go list, for the
// tests that keep the generic parts of the harness free of any service.
package depcheck

import (
	"os/exec"
	"strings"
	"testing"
)

// Module is this repository's module path.
const Module = "github.com/tierchaos/tierchaos"

// Service are the packages of the services under test, as patterns for
// Matching: tierd (system/...), tierd's harness adapter
// (harness/tierd/...) and the examples.
var Service = []string{Module + "/system/...", Module + "/examples/...", Module + "/harness/tierd/..."}

// Deps returns every package pkg (a path inside the module, e.g.
// "harness/fault") depends on, with its tests' dependencies when
// withTests is set. It fails t when go list does.
func Deps(t testing.TB, pkg string, withTests bool) []string {
	t.Helper()
	if _, err := exec.LookPath("go"); err != nil {
		t.Fatalf("go list needs the go command: %v", err)
	}
	args := []string{"list", "-deps"}
	if withTests {
		args = append(args, "-test")
	}
	out, err := exec.Command("go", append(args, Module+"/"+pkg)...).CombinedOutput()
	if err != nil {
		t.Fatalf("go list %s: %v: %s", pkg, err, out)
	}
	return strings.Fields(string(out))
}

// Matching returns the packages among deps that match one of patterns:
// a full import path matches itself; one ending in "/..." matches that
// path and every package below it.
func Matching(deps, patterns []string) []string {
	var out []string
	for _, d := range deps {
		for _, p := range patterns {
			tree, ok := strings.CutSuffix(p, "/...")
			if d == p || ok && (d == tree || strings.HasPrefix(d, tree+"/")) {
				out = append(out, d)
				break
			}
		}
	}
	return out
}

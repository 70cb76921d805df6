// Package visibleskip holds a test package built only with the build tag
// visibleskip: its TestMain is tierd.Main, and the package's own test
// (built without that tag) runs it in a child go test to show how a
// skipped or refused container suite looks in go test's normal output.
package visibleskip

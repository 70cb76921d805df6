package main

import (
	"encoding/json"
	"encoding/xml"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// junitDoc builds a part's JUnit file the way gotestsum writes it.
func junitDoc(t *testing.T, dir, part string, cases map[string]bool) string {
	t.Helper()
	s := junitSuite{Name: "example.com/p", Time: "1.5"}
	for name, failed := range cases {
		c := junitCase{Classname: "example.com/p", Name: name, Time: "0.1"}
		if name == "TestMain" {
			c.Classname = "" // as gotestsum writes a package that failed outside its tests
		}
		if failed {
			c.Failure = &junitResult{Message: "Failed", Body: "--- FAIL: " + name}
			s.Failures++
		}
		s.Tests++
		s.Cases = append(s.Cases, c)
	}
	doc := junitSuites{Tests: s.Tests, Failures: s.Failures, Time: "1.5", Suites: []junitSuite{s}}
	b, err := xml.MarshalIndent(doc, "", "\t")
	require.NoError(t, err)
	file := filepath.Join(dir, part+".xml")
	require.NoError(t, os.WriteFile(file, append([]byte(xml.Header), b...), 0o644))
	return file
}

func TestJUnitMergesEveryPart(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name        string
		parts       map[string]map[string]bool // part -> case -> failed
		missing     []string
		wantTests   int
		wantFailing []string
		wantErr     bool
	}{
		{"two-parts-one-failure", map[string]map[string]bool{
			"unit": {"TestA": false},
			"e2e":  {"TestB": false, "TestB/x": true},
		}, nil, 3, []string{"example.com/p [e2e] TestB/x"}, false},
		{"a-package-that-failed-in-testmain", map[string]map[string]bool{
			"e2e": {"TestMain": true},
		}, nil, 1, []string{"example.com/p [e2e] TestMain"}, false},
		{"a-missing-part-is-an-error-but-the-rest-is-merged", map[string]map[string]bool{
			"unit": {"TestA": true},
		}, []string{"e2e-race"}, 1, []string{"example.com/p [unit] TestA"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sub := filepath.Join(dir, tt.name)
			require.NoError(t, os.MkdirAll(sub, 0o755))
			var files []string
			for part, cases := range tt.parts {
				files = append(files, junitDoc(t, sub, part, cases))
			}
			for _, m := range tt.missing {
				files = append(files, filepath.Join(sub, m+".xml"))
			}
			out := filepath.Join(sub, "junit.xml")
			var stdout strings.Builder
			err := runJUnit(append([]string{"-o", out}, files...), &stdout)
			if tt.wantErr {
				require.ErrorIs(t, err, ErrResults)
			} else {
				require.NoError(t, err)
			}
			b, err := os.ReadFile(out)
			require.NoError(t, err)
			var doc junitSuites
			require.NoError(t, xml.Unmarshal(b, &doc))
			assert.Equal(t, tt.wantTests, doc.Tests)
			assert.Len(t, doc.Suites, len(tt.parts))
			assert.ElementsMatch(t, tt.wantFailing, doc.failing())
			for _, f := range tt.wantFailing {
				assert.Contains(t, stdout.String(), "junit: FAIL "+f)
			}
		})
	}
}

// events writes a part's go test -json file.
func events(t *testing.T, file string, evs []testEvent) {
	t.Helper()
	f, err := os.Create(file)
	require.NoError(t, err)
	defer f.Close()
	enc := json.NewEncoder(f)
	for _, ev := range evs {
		require.NoError(t, enc.Encode(ev))
	}
}

func TestSummaryNamesLeavesRerunsAndArtifacts(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "artifacts")
	art := filepath.Join(root, "scenarios", "failure", "TestF_row-123")
	out := func(test, s string) testEvent {
		return testEvent{Action: "output", Package: "example.com/f", Test: test, Output: s + "\n"}
	}
	file := filepath.Join(dir, "e2e.json")
	events(t, file, []testEvent{
		{Action: "run", Package: "example.com/f", Test: "TestF"},
		out("TestF/row", "    check.go:1: lost writes; artifacts: "+art+"/lost-history.json,"),
		out("TestF/row", "    seed.go:284: chaos: reproduce this case with:"),
		out("TestF/row", "        \tgo test -tags e2e -run '^TestF$/^row$' ./f -chaos.seed=1 -chaos.case-seed=2 -count=1"),
		out("TestF/row", "    case.go:9: tierd log: "+art+"/tierd.log"),
		{Action: "fail", Package: "example.com/f", Test: "TestF/row"},
		{Action: "pass", Package: "example.com/f", Test: "TestF/fine"},
		{Action: "fail", Package: "example.com/f", Test: "TestF"},
		out("", "harness: FAIL: start stack: boom"),
		{Action: "fail", Package: "example.com/g"},
		{Action: "fail", Package: "example.com/f"},
	})
	fails, err := readFailures(file, root)
	require.NoError(t, err)
	require.Len(t, fails, 2, "the leaf TestF/row and package g; not TestF nor package f")
	row := fails[0]
	assert.Equal(t, "TestF/row", row.Test)
	assert.Equal(t, "e2e", row.Part)
	assert.Equal(t, []string{"go test -tags e2e -run '^TestF$/^row$' ./f -chaos.seed=1 -chaos.case-seed=2 -count=1"}, row.Reruns)
	assert.Equal(t, []string{art + "/lost-history.json", art + "/tierd.log"}, row.Artifacts)
	assert.Equal(t, "example.com/g", fails[1].Package)
	assert.Empty(t, fails[1].Test)

	var md strings.Builder
	writeSummary(&md, []string{"e2e"}, fails, dir)
	assert.Contains(t, md.String(), "## 2 failing tests")
	assert.Contains(t, md.String(), "### `TestF/row` (e2e, `example.com/f`)")
	assert.Contains(t, md.String(), "```sh\ngo test -tags e2e -run '^TestF$/^row$' ./f -chaos.seed=1 -chaos.case-seed=2 -count=1\n```")
	assert.Contains(t, md.String(), "- artifact: `artifacts/scenarios/failure/TestF_row-123/tierd.log`")
	assert.Contains(t, md.String(), "(package: TestMain, build or setup)")
}

func TestSummaryReportsAMissingPart(t *testing.T) {
	var md strings.Builder
	err := runSummary([]string{filepath.Join(t.TempDir(), "e2e.json")}, &md)
	require.ErrorIs(t, err, ErrResults)
	assert.Contains(t, md.String(), "no results")
}

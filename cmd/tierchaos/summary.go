package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// rerunMarkers precede, on the next output line, a command that reruns a
// failing case: harness/seed's line and the nemesis's replay line.
var rerunMarkers = []string{"chaos: reproduce this case with:", "nemesis: replay this schedule with:"}

// tailLines is how many output lines of a failing test the summary shows.
const tailLines = 40

// testEvent is one line of go test -json (gotestsum --jsonfile).
type testEvent struct {
	Action  string
	Package string
	Test    string
	Output  string
}

// failure is one failing test (or package, when Test is empty) of a part.
type failure struct {
	Part, Package, Test string
	Reruns              []string
	Artifacts           []string
	Output              []string
}

// readFailures reads one part's go test -json file and returns its
// failing tests, leaves first: a parent that failed only because a subtest
// did is left out. artifactRoot (absolute) selects the paths reported as
// artifacts.
func readFailures(file, artifactRoot string) ([]failure, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("%w: part %s: %w", ErrResults, partOf(file), err)
	}
	defer f.Close()
	type key struct{ pkg, test string }
	output := map[key][]string{}
	var failed []key
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Bytes()
		if len(line) == 0 || line[0] != '{' {
			continue // go test prints build errors as text
		}
		var ev testEvent
		if err := json.Unmarshal(line, &ev); err != nil {
			return nil, fmt.Errorf("%w: %s:%d: %w", ErrResults, file, n, err)
		}
		k := key{ev.Package, ev.Test}
		switch ev.Action {
		case "output":
			output[k] = append(output[k], strings.TrimRight(ev.Output, "\n"))
		case "fail":
			failed = append(failed, k)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrResults, file, err)
	}
	hasFailedChild := func(k key) bool {
		return slices.ContainsFunc(failed, func(o key) bool {
			if o.pkg != k.pkg || o == k {
				return false
			}
			return k.test == "" || strings.HasPrefix(o.test, k.test+"/")
		})
	}
	var out []failure
	for _, k := range failed {
		if hasFailedChild(k) {
			continue
		}
		lines := output[k]
		fl := failure{Part: partOf(file), Package: k.pkg, Test: k.test}
		for i, l := range lines {
			for _, m := range rerunMarkers {
				if strings.Contains(l, m) && i+1 < len(lines) {
					fl.Reruns = append(fl.Reruns, strings.TrimSpace(lines[i+1]))
				}
			}
			for _, w := range strings.Fields(l) {
				w = strings.TrimRight(w, ",.;:)'\"")
				if artifactRoot != "" && strings.HasPrefix(w, artifactRoot+string(filepath.Separator)) && !slices.Contains(fl.Artifacts, w) {
					fl.Artifacts = append(fl.Artifacts, w)
				}
			}
		}
		fl.Output = lines[max(0, len(lines)-tailLines):]
		out = append(out, fl)
	}
	return out, nil
}

// writeSummary writes the failing tests as Markdown (for
// $GITHUB_STEP_SUMMARY): each with its rerun command, its artifact paths
// relative to base, and the tail of its output.
func writeSummary(w io.Writer, parts []string, fails []failure, base string) {
	if len(fails) == 0 {
		fmt.Fprintf(w, "## No failing test in %s\n", strings.Join(parts, ", "))
		return
	}
	fmt.Fprintf(w, "## %d failing tests\n\n", len(fails))
	for _, f := range fails {
		name := f.Test
		if name == "" {
			name = "(package: TestMain, build or setup)"
		}
		fmt.Fprintf(w, "### `%s` (%s, `%s`)\n\n", name, f.Part, f.Package)
		for _, r := range f.Reruns {
			fmt.Fprintf(w, "```sh\n%s\n```\n\n", fence(r))
		}
		for _, a := range f.Artifacts {
			if rel, err := filepath.Rel(base, a); err == nil && !strings.HasPrefix(rel, "..") {
				a = rel
			}
			fmt.Fprintf(w, "- artifact: `%s`\n", a)
		}
		if len(f.Artifacts) > 0 {
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "<details><summary>output (last %d lines)</summary>\n\n```\n%s\n```\n\n</details>\n\n",
			len(f.Output), fence(strings.Join(f.Output, "\n")))
	}
}

// fence keeps text from closing a Markdown code block.
func fence(s string) string { return strings.ReplaceAll(s, "```", "'''") }

// runSummary is "tierchaos summary [-artifacts DIR] PART.json...".
func runSummary(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("summary", flag.ContinueOnError)
	root := fs.String("artifacts", "test-results/artifacts", "the folder failing cases write their files to (TIERCHAOS_ARTIFACTS)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return fmt.Errorf("%w: usage: tierchaos summary [-artifacts DIR] PART.json...", ErrResults)
	}
	base, err := os.Getwd()
	if err != nil {
		return fmt.Errorf("%w: %w", ErrResults, err)
	}
	absRoot, err := filepath.Abs(*root)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrResults, err)
	}
	var all []failure
	var parts []string
	var errs []error
	for _, file := range fs.Args() {
		fails, err := readFailures(file, absRoot)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		parts = append(parts, partOf(file))
		all = append(all, fails...)
	}
	writeSummary(stdout, parts, all, base)
	for _, err := range errs {
		fmt.Fprintf(stdout, "- no results: %v\n", err)
	}
	return errors.Join(errs...)
}

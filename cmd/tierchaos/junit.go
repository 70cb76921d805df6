package main

import (
	"encoding/xml"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// ErrResults is wrapped by the errors of the junit and summary commands
// about their input.
var ErrResults = errors.New("tierchaos: test results")

// junitSuites is the JUnit XML document gotestsum writes (--junitfile).
type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Errors   int          `xml:"errors,attr"`
	Time     string       `xml:"time,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

// junitSuite is one package of one part.
type junitSuite struct {
	Tests      int              `xml:"tests,attr"`
	Failures   int              `xml:"failures,attr"`
	Errors     int              `xml:"errors,attr,omitempty"`
	Skipped    int              `xml:"skipped,attr,omitempty"`
	Time       string           `xml:"time,attr"`
	Name       string           `xml:"name,attr"`
	Timestamp  string           `xml:"timestamp,attr,omitempty"`
	Properties *junitProperties `xml:"properties,omitempty"`
	Cases      []junitCase      `xml:"testcase"`
	SystemOut  string           `xml:"system-out,omitempty"`
}

type junitProperties struct {
	Properties []junitProperty `xml:"property"`
}

type junitProperty struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

// junitCase is one test or subtest.
type junitCase struct {
	Classname string       `xml:"classname,attr"`
	Name      string       `xml:"name,attr"`
	Time      string       `xml:"time,attr"`
	Failure   *junitResult `xml:"failure,omitempty"`
	Error     *junitResult `xml:"error,omitempty"`
	Skipped   *junitResult `xml:"skipped,omitempty"`
	SystemOut string       `xml:"system-out,omitempty"`
}

type junitResult struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr,omitempty"`
	Body    string `xml:",chardata"`
}

// partOf names a results file's part: "test-results/e2e-race.xml" is
// "e2e-race".
func partOf(file string) string {
	return strings.TrimSuffix(filepath.Base(file), filepath.Ext(file))
}

// mergeJUnit reads the JUnit files of the parts and returns one document
// holding every suite, each suite and class name suffixed with " [part]"
// (the e2e and e2e-race parts test the same packages); a case without a
// class name (gotestsum's TestMain case of a package that failed outside
// its tests) gets its suite's name. A file that is
// missing or unreadable is reported in the error; the others are merged.
func mergeJUnit(files []string) (*junitSuites, error) {
	out := &junitSuites{}
	var total float64
	var errs []error
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			errs = append(errs, fmt.Errorf("%w: part %s: %w", ErrResults, partOf(f), err))
			continue
		}
		var doc junitSuites
		if err := xml.Unmarshal(b, &doc); err != nil {
			errs = append(errs, fmt.Errorf("%w: %s is not JUnit XML: %w", ErrResults, f, err))
			continue
		}
		tag := " [" + partOf(f) + "]"
		for _, s := range doc.Suites {
			for i := range s.Cases {
				if s.Cases[i].Classname == "" {
					s.Cases[i].Classname = s.Name // a package that failed outside its tests (TestMain)
				}
				s.Cases[i].Classname += tag
			}
			s.Name += tag
			out.Suites = append(out.Suites, s)
		}
		out.Tests += doc.Tests
		out.Failures += doc.Failures
		out.Errors += doc.Errors
		if t, err := strconv.ParseFloat(doc.Time, 64); err == nil {
			total += t
		}
	}
	out.Time = strconv.FormatFloat(total, 'f', 6, 64)
	return out, errors.Join(errs...)
}

// failing lists "name [part]" of every failed or errored case.
func (d *junitSuites) failing() []string {
	var names []string
	for _, s := range d.Suites {
		for _, c := range s.Cases {
			if c.Failure != nil || c.Error != nil {
				names = append(names, c.Classname+" "+c.Name)
			}
		}
	}
	return names
}

// runJUnit is "tierchaos junit -o OUT PART.xml...".
func runJUnit(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("junit", flag.ContinueOnError)
	out := fs.String("o", "test-results/junit.xml", "the merged file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return fmt.Errorf("%w: usage: tierchaos junit [-o FILE] PART.xml...", ErrResults)
	}
	doc, mergeErr := mergeJUnit(fs.Args())
	b, err := xml.MarshalIndent(doc, "", "\t")
	if err != nil {
		return fmt.Errorf("%w: encode: %w", ErrResults, err)
	}
	if err := os.MkdirAll(filepath.Dir(*out), 0o755); err != nil {
		return fmt.Errorf("%w: %w", ErrResults, err)
	}
	if err := os.WriteFile(*out, append([]byte(xml.Header), append(b, '\n')...), 0o644); err != nil {
		return fmt.Errorf("%w: %w", ErrResults, err)
	}
	failing := doc.failing()
	fmt.Fprintf(stdout, "junit: %d tests, %d failing, in %s\n", doc.Tests, len(failing), *out)
	for _, n := range failing {
		fmt.Fprintf(stdout, "junit: FAIL %s\n", n)
	}
	return mergeErr
}

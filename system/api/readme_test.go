package api

import (
	"bufio"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// codesInSource returns the values of the Code* constants of errors.go.
func codesInSource(t *testing.T) []string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "errors.go", nil, 0)
	require.NoError(t, err)
	var codes []string
	for _, d := range f.Decls {
		gd, ok := d.(*ast.GenDecl)
		if !ok || gd.Tok != token.CONST {
			continue
		}
		for _, spec := range gd.Specs {
			vs := spec.(*ast.ValueSpec)
			for i, n := range vs.Names {
				if !strings.HasPrefix(n.Name, "Code") || i >= len(vs.Values) {
					continue
				}
				lit, ok := vs.Values[i].(*ast.BasicLit)
				require.True(t, ok && lit.Kind == token.STRING, "%s is not a string literal", n.Name)
				v, err := strconv.Unquote(lit.Value)
				require.NoError(t, err)
				codes = append(codes, v)
			}
		}
	}
	require.NotEmpty(t, codes)
	return codes
}

var readmeRow = regexp.MustCompile("^\\| `([a-z_]+)` \\| (\\d{3}) \\|")

// codesInReadme returns code -> status of the error table of path: the
// table that follows the line starting with "Errors:".
func codesInReadme(t *testing.T, path string) map[string]int {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	out := map[string]int{}
	inSection, inTable := false, false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "Errors:"):
			inSection = true
		case inSection && strings.HasPrefix(line, "|"):
			inTable = true
			if m := readmeRow.FindStringSubmatch(line); m != nil {
				_, dup := out[m[1]]
				require.False(t, dup, "code %s listed twice", m[1])
				out[m[1]], _ = strconv.Atoi(m[2])
			}
		case inTable:
			return out // the first line after the table
		}
	}
	require.NoError(t, sc.Err())
	return out
}

// TestReadmeListsEveryErrorCode: system/README.md's error table lists
// exactly the codes of errors.go, each with its HTTP status, and Codes()
// returns them all.
func TestReadmeListsEveryErrorCode(t *testing.T) {
	src := codesInSource(t)
	table := codesInReadme(t, "../README.md")
	require.NotEmpty(t, table, "no error table after \"Errors:\" in system/README.md")
	var listed []string
	for code, status := range table {
		listed = append(listed, code)
		require.Equal(t, HTTPStatus(code), status, "README status of %s", code)
	}
	require.ElementsMatch(t, src, listed, "codes in errors.go vs the README table")
	require.ElementsMatch(t, src, Codes())
	require.Len(t, src, len(slices.Compact(slices.Sorted(slices.Values(src)))), "a code value is used twice")
}

// TestReadmeTableCheckFails: the parser sees a missing and an extra row.
func TestReadmeTableCheckFails(t *testing.T) {
	data, err := os.ReadFile("../README.md")
	require.NoError(t, err)
	text := string(data)
	row := "| `overloaded` | 503 |"
	require.Contains(t, text, row)
	dir := t.TempDir()
	broken := dir + "/README.md"
	require.NoError(t, os.WriteFile(broken, []byte(strings.Replace(text, row, "| `overloaded_x` | 503 |", 1)), 0o600))
	table := codesInReadme(t, broken)
	_, ok := table["overloaded"]
	require.False(t, ok)
	require.Contains(t, table, "overloaded_x")
}

package main

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const sample = `goos: linux
BenchmarkMinIOParallel/target=direct/mode=parallel/n=100/c=8-2   3  1000 ns/op  1200 obj/s
BenchmarkMinIOParallel/target=direct/mode=parallel/n=100/c=8-2   3  1000 ns/op  1000 obj/s
BenchmarkMinIOParallel/target=direct/mode=parallel/n=100/c=8-2   3  1000 ns/op  1100 obj/s
BenchmarkMinIOSizes/target=direct/mode=bare/size=16MiB/c=8-2     3  1000 ns/op  74.90 MB/s  4.5 obj/s
PASS
`

func TestParseAndMedian(t *testing.T) {
	rs, err := parse(strings.NewReader(sample))
	require.NoError(t, err)
	require.Len(t, rs, 4)
	assert.Equal(t, "BenchmarkMinIOParallel", rs[0].group)
	assert.Equal(t, map[string]string{"target": "direct", "mode": "parallel", "n": "100", "c": "8"}, rs[0].keys)

	tests := []struct {
		name  string
		group string
		unit  string
		keys  map[string]string
		want  float64
		found bool
	}{
		{"median of three", "BenchmarkMinIOParallel", "obj/s", map[string]string{"c": "8"}, 1100, true},
		{"MB/s with extra metric", "BenchmarkMinIOSizes", "MB/s", map[string]string{"size": "16MiB"}, 74.9, true},
		{"no match", "BenchmarkMinIOParallel", "obj/s", map[string]string{"c": "16"}, 0, false},
		{"wrong unit", "BenchmarkMinIOSizes", "snap/s", nil, 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v, ok := find(rs, tc.group, tc.unit, tc.keys)
			assert.Equal(t, tc.found, ok)
			assert.InDelta(t, tc.want, v, 1e-9)
		})
	}
}

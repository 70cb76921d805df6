package progress

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tierchaos/tierchaos/load"
)

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestResolve(t *testing.T) {
	tests := []struct {
		name string
		mode Mode
		env  map[string]string
		want Mode
	}{
		{"explicit bar", Bar, map[string]string{"CI": "true"}, Bar},
		{"explicit plain", Plain, nil, Plain},
		{"ci", Auto, map[string]string{"CI": "true"}, Plain},
		{"not a terminal", Auto, map[string]string{"CI": "false"}, Plain},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, Resolve(tt.mode, &bytes.Buffer{}, env(tt.env)))
		})
	}
}

func TestPlainLinesPerInterval(t *testing.T) {
	var out bytes.Buffer
	r := New(&out, "test", 300*time.Millisecond, Plain)
	res, err := load.Run(context.Background(), load.Config{
		Ops:  []load.Op{load.Simple("op", 1, func(context.Context) error { return nil })},
		Rate: 100, Duration: 300 * time.Millisecond, Tick: 50 * time.Millisecond, Interval: 100 * time.Millisecond,
		OnTick: r.OnTick, OnInterval: r.OnInterval,
	})
	require.NoError(t, err)
	r.Close()
	lines := bytes.Count(out.Bytes(), []byte("\n"))
	assert.Equal(t, len(res.Intervals), lines)
	assert.Contains(t, out.String(), "test [")
	assert.Contains(t, out.String(), "rate ")
}

// syncBuffer is a bytes.Buffer safe for the bar's render goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestBarRendersStatus(t *testing.T) {
	var out syncBuffer
	r := New(&out, "bar", time.Second, Bar)
	require.Equal(t, Bar, r.Mode())
	r.OnTick(load.Tick{Elapsed: 500 * time.Millisecond, Rate: 123, P95: 2 * time.Millisecond, Errors: 4})
	r.OnInterval(load.Interval{}) // ignored in Bar mode
	require.Eventually(t, func() bool {
		s := out.String()
		return strings.Contains(s, "rate 123/s") && strings.Contains(s, "p95 2ms") && strings.Contains(s, "errors 4")
	}, 5*time.Second, 20*time.Millisecond, "bar output: %q", out.String())
	r.Close()
	assert.NotContains(t, out.String(), "sent ", "no interval lines in bar mode")
}

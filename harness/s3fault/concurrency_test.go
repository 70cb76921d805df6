package s3fault

import (
	"net/http"
	"strconv"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// TestConcurrentCountsAreExact hammers the proxy from many goroutines: the
// counters and the count-based triggers stay exact.
func TestConcurrentCountsAreExact(t *testing.T) {
	s := newTestStack(t)
	for i := range 8 {
		s.s3.putObject("b", "k"+strconv.Itoa(i), []byte("v"))
	}
	every := s.addRule(t, Rule{Ops: []Op{OpGetObject}, Trigger: EveryNth(4), Action: InternalError()})
	next := s.addRule(t, Rule{Ops: []Op{OpHeadObject}, Trigger: Next(7), Action: SlowDown(0)})
	const workers, perWorker = 8, 25
	var wg sync.WaitGroup
	var mu sync.Mutex
	codes := map[string]map[int]int{"GET": {}, "HEAD": {}}
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWorker {
				method := http.MethodGet
				if i%2 == 1 {
					method = http.MethodHead
				}
				res, err := s.do(t, method, "/b/k"+strconv.Itoa(w), nil, 0)
				if !assert.NoError(t, err) {
					return
				}
				mu.Lock()
				codes[method][res.resp.StatusCode]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	gets, heads := workers*13, workers*12
	assert.Equal(t, map[int]int{500: gets / 4, 200: gets - gets/4}, codes["GET"])
	assert.Equal(t, map[int]int{503: 7, 200: heads - 7}, codes["HEAD"])

	st := s.stats(t)
	assert.Equal(t, OpStats{Seen: int64(gets), Forwarded: int64(gets - gets/4),
		Injected: map[ActionKind]int64{ActionInternalError: int64(gets / 4)}}, st.Op(OpGetObject))
	assert.Equal(t, OpStats{Seen: int64(heads), Forwarded: int64(heads - 7),
		Injected: map[ActionKind]int64{ActionSlowDown: 7}}, st.Op(OpHeadObject))
	rs, ok := st.Rule(every)
	require.True(t, ok)
	assert.Equal(t, int64(gets), rs.Matched)
	rs, ok = st.Rule(next)
	require.True(t, ok)
	assert.Equal(t, int64(7), rs.Injected)

	// The journal has every request once, with the status its client got.
	journaled := map[string]map[int]int{"GET": {}, "HEAD": {}}
	for _, e := range s.proxy.Journal() {
		method := map[Op]string{OpGetObject: "GET", OpHeadObject: "HEAD"}[e.Op]
		journaled[method][e.Status]++
	}
	assert.Equal(t, codes, journaled)
}

package workload

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"

	"github.com/tierchaos/tierchaos/internal/tierdtest"
	"github.com/tierchaos/tierchaos/load"
	"github.com/tierchaos/tierchaos/system/api"
	"github.com/tierchaos/tierchaos/system/client"
	"github.com/tierchaos/tierchaos/system/grpcclient"
)

// tierd starts an in-process tierd with an in-memory cold tier.
func tierd(t *testing.T) *client.Client {
	t.Helper()
	return client.New(tierdtest.Start(t, nil).URL, client.WithHTTPClient(NewHTTPClient(64, 10*time.Second)))
}

func TestParseMix(t *testing.T) {
	tests := []struct {
		in   string
		want Mix
		ok   bool
	}{
		{"search=70,insert=20,tier=10", Mix{OpSearch: 70, OpInsert: 20, OpTier: 10}, true},
		{" search = 1 ", Mix{OpSearch: 1}, true},
		{"search=1,tier=0", Mix{OpSearch: 1, OpTier: 0}, true},
		{"search", nil, false},
		{"delete=5", nil, false},
		{"search=-1", nil, false},
		{"search=x", nil, false},
		{"search=0", nil, false},
		{"", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			m, err := ParseMix(tt.in)
			if !tt.ok {
				require.ErrorIs(t, err, ErrConfig)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, m)
			back, err := ParseMix(m.String())
			require.NoError(t, err)
			assert.Equal(t, m, back)
		})
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
	}{
		{"shares over 1", Config{WarmShare: 0.7, ColdShare: 0.5}},
		{"negative share", Config{WarmShare: -0.1}},
		{"bad k", Config{K: 5000}},
		{"batch over vectors", Config{Vectors: 5, InsertBatch: 10}},
		{"bad prefix", Config{Prefix: "Load!"}},
		{"bad metric", Config{Metric: "manhattan"}},
		{"negative collections", Config{Collections: -1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { require.ErrorIs(t, tt.cfg.Validate(), ErrConfig) })
	}
	require.NoError(t, Config{}.Validate())
}

func TestWorkloadAgainstInProcessTierd(t *testing.T) {
	c := tierd(t)
	ctx := context.Background()
	cfg := Config{Seed: 7, Prefix: "wl", Collections: 8, Dimension: 16, Vectors: 50, WarmShare: 0.25, ColdShare: 0.25}
	w, err := Setup(ctx, c, cfg)
	require.NoError(t, err)
	assert.Equal(t, map[api.Tier]int{api.TierHot: 4, api.TierWarm: 2, api.TierCold: 2}, w.Tiers())
	for i, name := range w.Collections() {
		col, err := c.GetCollection(ctx, name)
		require.NoError(t, err)
		assert.Equal(t, 50, col.Vectors, name)
		if i < 2 {
			assert.Equal(t, api.TierCold, col.Tier, name)
		}
	}

	// Setup again replaces the collections rather than failing.
	w, err = Setup(ctx, c, cfg)
	require.NoError(t, err)

	ops := w.Ops()
	require.Len(t, ops, 3)
	assert.Equal(t, OpSearch, ops[0].Name)
	res, err := load.Run(ctx, load.Config{Ops: ops, Rate: 60, Duration: time.Second, Seed: 7, LateAfter: time.Second})
	require.NoError(t, err)
	o := res.Overall
	assert.Equal(t, o.Scheduled, o.Completed)
	assert.Equal(t, o.Completed, o.OK, "errors: %v", o.Errors)
	for _, name := range []string{OpSearch, OpInsert, OpTier} {
		r, ok := res.Op(name)
		require.True(t, ok)
		assert.Positive(t, r.OK, name)
	}
	// Inserts replace ids within the seeded id space: sizes do not grow.
	for _, name := range w.Collections() {
		col, err := c.GetCollection(ctx, name)
		require.NoError(t, err)
		assert.Equal(t, 50, col.Vectors, name)
	}

	require.NoError(t, w.Cleanup(ctx))
	list, err := c.ListCollections(ctx)
	require.NoError(t, err)
	assert.Empty(t, list)
}

func TestCodedErrors(t *testing.T) {
	assert.NoError(t, coded(nil))
	assert.Equal(t, api.CodeNotFound, load.CodeOf(coded(&client.Error{StatusCode: 404, Code: api.CodeNotFound})))
	assert.Equal(t, "http_502", load.CodeOf(coded(&client.Error{StatusCode: 502})))
	assert.Equal(t, load.CodeCanceled, load.CodeOf(coded(context.Canceled)))
	// Over gRPC: tierd's code from the ErrorInfo, else the status.
	assert.Equal(t, api.CodeQuotaExceeded, load.CodeOf(coded(&grpcclient.Error{Status: codes.ResourceExhausted, Code: api.CodeQuotaExceeded})))
	assert.Equal(t, "grpc_unavailable", load.CodeOf(coded(&grpcclient.Error{Status: codes.Unavailable})))
	assert.Equal(t, load.CodeTimeout, load.CodeOf(coded(&grpcclient.Error{Status: codes.DeadlineExceeded})))
	assert.ErrorContains(t, coded(&grpcclient.Error{Method: "Search", Status: codes.Unavailable, Message: "connection refused"}), "connection refused")
}

func TestAcquireWaitsWhenEveryCollectionIsBusy(t *testing.T) {
	w := &Workload{}
	for i := range 2 {
		w.colls = append(w.colls, &collection{name: "c" + string(rune('0'+i)), transitioning: make(chan struct{}, 1)})
	}
	first := w.acquire(context.Background(), 0)
	second := w.acquire(context.Background(), 0)
	require.NotNil(t, first)
	require.NotNil(t, second)
	assert.NotSame(t, first, second, "a free collection is preferred")

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	assert.Nil(t, w.acquire(ctx, 1), "all busy: waits until ctx ends")

	got := make(chan *collection, 1)
	go func() { got <- w.acquire(context.Background(), 1) }()
	<-w.colls[1].transitioning // release collection 1
	select {
	case c := <-got:
		assert.Same(t, w.colls[1], c)
	case <-time.After(5 * time.Second):
		t.Fatal("acquire did not take the released collection")
	}
}

func TestNewSystemRejectsBadOptions(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    SystemOptions
		want string
	}{
		{"unknown API", SystemOptions{URL: "http://127.0.0.1:1", API: "soap"}, `API "soap": want "rest" or "grpc"`},
		{"REST without URL", SystemOptions{}, "no tierd URL"},
		{"gRPC without address", SystemOptions{API: APIGRPC}, "no tierd gRPC address"},
		{"bad workload", SystemOptions{URL: "http://127.0.0.1:1", Workload: Config{WarmShare: 2}}, "warm"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewSystem(tc.o)
			require.ErrorIs(t, err, ErrConfig)
			require.ErrorContains(t, err, tc.want)
		})
	}
}

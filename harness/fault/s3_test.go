package fault

import (
	"encoding/json"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tierchaos/tierchaos/harness/s3fault"
	"github.com/tierchaos/tierchaos/harness/stack"
)

func TestS3CountRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		f    S3
		want string
	}{
		{"next five 503s", S3{Action: "slow_down", Ops: []s3fault.Op{s3fault.OpPutObject, s3fault.OpUploadPart}, Key: "collections/c-*/data/*", Count: 5},
			`{"kind":"s3.slow_down","ops":["PutObject","UploadPart"],"key":"collections/c-*/data/*","count":5}`},
		{"one cut part", S3{Action: "cut_part", Count: 1, Bytes: 256 << 10},
			`{"kind":"s3.cut_part","count":1,"bytes":262144}`},
		{"one held part", S3{Action: "delay", Ops: []s3fault.Op{s3fault.OpUploadPart}, Count: 1, Latency: Duration(time.Minute)},
			`{"kind":"s3.delay","ops":["UploadPart"],"count":1,"latency":"1m0s"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.NoError(t, tt.f.Validate())
			b, err := json.Marshal(Spec{Fault: tt.f})
			require.NoError(t, err)
			assert.JSONEq(t, tt.want, string(b))
			var back Spec
			require.NoError(t, json.Unmarshal(b, &back))
			assert.Equal(t, tt.f, back.Fault)
			assert.False(t, IsInstant(back.Fault), "an S3 rule lasts until removed")
			assert.Contains(t, back.String(), "count=")
		})
	}
}

func TestS3TriggerValidation(t *testing.T) {
	tests := []struct {
		name string
		json string
	}{
		{"negative count", `{"kind":"s3.internal_error","count":-1}`},
		{"count and probability", `{"kind":"s3.internal_error","count":3,"probability":0.5}`},
		{"count and probability 1", `{"kind":"s3.slow_down","count":1,"probability":1}`},
		{"count not a number", `{"kind":"s3.slow_down","count":"five"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s Spec
			err := json.Unmarshal([]byte(tt.json), &s)
			require.ErrorIs(t, err, ErrInvalid)
			var fe *Error
			require.ErrorAs(t, err, &fe)
			assert.Equal(t, CodeBadParameter, fe.Code, err.Error())
		})
	}
	// Rule refuses what Validate refuses, so Apply cannot add such a rule.
	_, err := S3{Action: "delay", Latency: Duration(time.Second), Count: 2, Probability: 0.3}.Rule()
	var fe *Error
	require.ErrorAs(t, err, &fe)
	assert.Equal(t, CodeBadParameter, fe.Code)
	assert.Contains(t, fe.Msg, "exclude each other")
}

func TestS3Rule(t *testing.T) {
	tests := []struct {
		name    string
		f       S3
		ops     []s3fault.Op
		trigger s3fault.Trigger
		action  s3fault.Action
		seed    *uint64
	}{
		{"count", S3{Action: "slow_down", Ops: []s3fault.Op{s3fault.OpPutObject}, Count: 5},
			[]s3fault.Op{s3fault.OpPutObject}, s3fault.Next(5), s3fault.SlowDown(0), nil},
		{"every request", S3{Action: "internal_error"},
			nil, s3fault.Always(), s3fault.InternalError(), nil},
		{"probability 1 is every request", S3{Action: "internal_error", Probability: 1},
			nil, s3fault.Always(), s3fault.InternalError(), nil},
		{"probability with a seed", S3{Action: "internal_error", Key: "collections/*", Probability: 0.3, Seed: 9},
			nil, s3fault.Probability(0.3), s3fault.InternalError(), s3fault.SeedOf(9)},
		{"a hold", S3{Action: "delay", Ops: []s3fault.Op{s3fault.OpHeadObject}, Latency: Duration(10 * time.Minute)},
			[]s3fault.Op{s3fault.OpHeadObject}, s3fault.Always(), s3fault.Delay(10*time.Minute, 0), nil},
		{"count on a default op", S3{Action: "cut_put", Count: 1, Bytes: 50_000},
			[]s3fault.Op{s3fault.OpPutObject}, s3fault.Next(1), s3fault.CutRequestBody(50_000), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := tt.f.Rule()
			require.NoError(t, err)
			assert.Equal(t, s3fault.Rule{Name: "fault:" + tt.f.Kind(), Ops: tt.ops, Key: tt.f.Key, Trigger: tt.trigger, Seed: tt.seed, Action: tt.action}, r)
		})
	}
}

func TestS3String(t *testing.T) {
	assert.Equal(t, "s3.slow_down ops=[PutObject UploadPart] key=collections/* count=5 retry_after=0s",
		S3{Action: "slow_down", Ops: []s3fault.Op{s3fault.OpPutObject, s3fault.OpUploadPart}, Key: "collections/*", Count: 5}.String())
	assert.Equal(t, "s3.internal_error p=0.30", S3{Action: "internal_error", Probability: 0.3}.String())
	assert.Equal(t, "s3.delay ops=[HeadObject] 10m0s±0s", S3{Action: "delay", Ops: []s3fault.Op{s3fault.OpHeadObject}, Latency: Duration(10 * time.Minute)}.String())
}

// layer is an S3 fault layer served in the test, with a client on its
// control API, as a core stack's S3Faults.
func layer(t *testing.T) *stack.Stack {
	t.Helper()
	p, err := s3fault.NewProxy("http://127.0.0.1:1")
	require.NoError(t, err)
	srv := httptest.NewServer(s3fault.NewInsecureControlHandler(p))
	t.Cleanup(srv.Close)
	c, err := s3fault.NewClient(srv.URL)
	require.NoError(t, err)
	return &stack.Stack{S3Faults: c}
}

func TestS3ApplyNamesItsRule(t *testing.T) {
	ctx := t.Context()
	s := layer(t)
	f := S3{Action: "slow_down", Ops: []s3fault.Op{s3fault.OpPutObject}, Key: "collections/*", Count: 5}
	a, err := Inject(ctx, s, f)
	require.NoError(t, err)
	r, ok := a.(*S3Rule)
	require.True(t, ok, "Apply's Active is an *S3Rule, got %T", a)
	st, err := s.S3Faults.Rule(ctx, r.ID)
	require.NoError(t, err)
	want, err := f.Rule()
	require.NoError(t, err)
	assert.Equal(t, want, st.Rule, "the layer holds the fault's rule")

	require.NoError(t, a.Remove(ctx))
	_, err = s.S3Faults.Rule(ctx, r.ID)
	require.ErrorIs(t, err, s3fault.ErrRuleNotFound)
	require.NoError(t, a.Remove(ctx), "removing twice is a no-op")

	// A rule a reset took away counts as removed.
	b, err := Inject(ctx, s, f)
	require.NoError(t, err)
	require.NoError(t, s.S3Faults.Reset(ctx))
	require.NoError(t, b.Remove(ctx))
}

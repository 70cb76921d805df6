package fault

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tierchaos/tierchaos/harness/s3fault"
)

func TestSpecRoundTrip(t *testing.T) {
	tests := []struct {
		name    string
		f       Fault
		want    string
		instant bool
	}{
		{"latency", Net{Toxic: "latency", Latency: Duration(200 * time.Millisecond), Jitter: Duration(50 * time.Millisecond)},
			`{"kind":"net.latency","latency":"200ms","jitter":"50ms"}`, false},
		{"down", Net{Toxic: "down"}, `{"kind":"net.down"}`, false},
		{"slicer", Net{Toxic: "slicer", AvgSize: 100, SizeVariation: 10, Delay: Duration(time.Millisecond)},
			`{"kind":"net.slicer","delay":"1ms","avg_size":100,"size_variation":10}`, false},
		{"slow down", S3{Action: "slow_down", Ops: []s3fault.Op{s3fault.OpPutObject}, Probability: 0.3, Seed: 7},
			`{"kind":"s3.slow_down","ops":["PutObject"],"probability":0.3,"seed":7}`, false},
		{"misdirect", S3{Action: "misdirect"}, `{"kind":"s3.misdirect"}`, false},
		{"kill", Process{Action: "kill"}, `{"kind":"process.kill"}`, true},
		{"pause", Process{Action: "pause"}, `{"kind":"process.pause"}`, false},
		{"reconfigure", Process{Action: "reconfigure", Env: map[string]string{"TIERD_WORKER_INTERVAL": "1s"}},
			`{"kind":"process.reconfigure","env":{"TIERD_WORKER_INTERVAL":"1s"}}`, true},
		{"power cut", PowerCut{}, `{"kind":"process.power_cut"}`, true},
		{"torn power cut", PowerCut{Seed: 9, Torn: true}, `{"kind":"process.power_cut","seed":9,"torn":true}`, true},
		{"run once", Worker{Action: "run_once"}, `{"kind":"worker.run_once"}`, true},
		{"worker pause", Worker{Action: "pause"}, `{"kind":"worker.pause"}`, false},
		{"disk", Disk{}, `{"kind":"disk.fill"}`, false},
		{"minio stop", MinIO{Action: "stop"}, `{"kind":"minio.stop"}`, false},
		{"minio restart", MinIO{Action: "restart"}, `{"kind":"minio.restart"}`, true},
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
			assert.Equal(t, tt.instant, IsInstant(back.Fault))
			assert.Contains(t, Kinds(), back.Kind())
		})
	}
}

func TestEveryKindDecodes(t *testing.T) {
	for _, k := range Kinds() {
		_, ok := New(k)
		assert.True(t, ok, k)
	}
}

func TestSpecRejectsBadInput(t *testing.T) {
	tests := []struct {
		name string
		json string
		code ErrorCode
	}{
		{"unknown kind", `{"kind":"net.teleport"}`, CodeUnknownKind},
		{"no kind", `{"latency":"1s"}`, CodeUnknownKind},
		{"unknown field", `{"kind":"net.latency","latency":"1s","colour":"red"}`, CodeBadParameter},
		{"negative latency", `{"kind":"net.latency","latency":"-1s"}`, CodeBadParameter},
		{"probability above 1", `{"kind":"s3.internal_error","probability":1.5}`, CodeBadParameter},
		{"misdirect on a PUT", `{"kind":"s3.misdirect","ops":["PutObject"]}`, CodeBadParameter},
		{"env on a kill", `{"kind":"process.kill","env":{"TIERD_X":"1"}}`, CodeBadParameter},
		{"reconfigure without settings", `{"kind":"process.reconfigure"}`, CodeBadParameter},
		{"reconfigure of a bad variable name", `{"kind":"process.reconfigure","env":{"A=B":"1"}}`, CodeBadParameter},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s Spec
			err := json.Unmarshal([]byte(tt.json), &s)
			require.Error(t, err)
			require.ErrorIs(t, err, ErrInvalid)
			var fe *Error
			require.ErrorAs(t, err, &fe)
			assert.Equal(t, tt.code, fe.Code, err.Error())
		})
	}
}

func TestExclusiveGroups(t *testing.T) {
	assert.Equal(t, "process", Exclusive(Process{Action: "kill"}))
	assert.Equal(t, "minio", Exclusive(MinIO{Action: "stop"}))
	assert.Equal(t, "disk", Exclusive(Disk{}))
	assert.Equal(t, "", Exclusive(Net{Toxic: "down"}))
	assert.Equal(t, "", Exclusive(Worker{Action: "run_once"}))
}

func TestSpecKeepsTheFaultsNature(t *testing.T) {
	assert.False(t, IsInstant(Spec{Fault: S3{Action: "cut_part"}}))
	assert.True(t, IsInstant(Spec{Fault: Process{Action: "kill"}}))
	assert.Equal(t, "process", Exclusive(Spec{Fault: Process{Action: "pause"}}))
}

func TestNetDirectionAndToxicity(t *testing.T) {
	n := Net{Toxic: "latency", Latency: Duration(100 * time.Millisecond), Upstream: true, Toxicity: 0.5}
	require.NoError(t, n.Validate())
	assert.Contains(t, n.String(), "upstream")
	assert.Contains(t, n.String(), "toxicity=0.5")
	assert.Contains(t, Net{Toxic: "bandwidth", RateKBps: 64}.String(), "downstream")
}

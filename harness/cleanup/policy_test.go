package cleanup

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestJudge(t *testing.T) {
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	const self, other = Origin("linux:boot=a:pidns=1"), Origin("linux:boot=b:pidns=1")
	labels := func(origin Origin, pid string) map[string]string {
		l := map[string]string{LabelManaged: "true", LabelRun: "r", LabelPID: pid, LabelPIDStarted: "1765108800000", LabelPIDStart: "4242"}
		if origin != "" {
			l[LabelOrigin] = string(origin)
		}
		return l
	}
	// The fake process table: pid 1 alive, 2 dead, 3 unknown.
	liveness := func(_ context.Context, pid, start string) Liveness {
		require.Equal(t, "1765108800000", start)
		return map[string]Liveness{"1": LivenessAlive, "2": LivenessDead}[pid]
	}
	tests := []struct {
		name    string
		labels  map[string]string
		created time.Time
		age     time.Duration
		remove  bool
		reason  string
	}{
		{"this origin, owner dead", labels(self, "2"), now.Add(-time.Minute), DefaultForeignAge, true, ReasonOwnerDead},
		{"this origin, owner dead, age off", labels(self, "2"), now.Add(-time.Minute), 0, true, ReasonOwnerDead},
		{"this origin, owner alive", labels(self, "1"), now.Add(-time.Minute), DefaultForeignAge, false, ReasonOwnerAlive},
		{"this origin, owner alive for days", labels(self, "1"), now.Add(-72 * time.Hour), DefaultForeignAge, false, ReasonOwnerAlive},
		{"this origin, owner unknown, young", labels(self, "3"), now.Add(-time.Hour), DefaultForeignAge, false, ReasonUnknownYoung},
		{"this origin, owner unknown, old", labels(self, "3"), now.Add(-25 * time.Hour), DefaultForeignAge, true, ReasonUnknownOld},
		{"other origin, owner dead here, young", labels(other, "2"), now.Add(-time.Minute), DefaultForeignAge, false, ReasonForeignYoung},
		{"other origin, owner alive here, young", labels(other, "1"), now.Add(-time.Minute), DefaultForeignAge, false, ReasonForeignYoung},
		{"other origin, just under the age", labels(other, "2"), now.Add(-DefaultForeignAge), DefaultForeignAge, false, ReasonForeignYoung},
		{"other origin, older than the age", labels(other, "2"), now.Add(-DefaultForeignAge - time.Second), DefaultForeignAge, true, ReasonForeignOld},
		{"other origin, old, custom age", labels(other, "2"), now.Add(-2 * time.Hour), time.Hour, true, ReasonForeignOld},
		{"other origin, old, age off", labels(other, "2"), now.Add(-365 * 24 * time.Hour), 0, false, ReasonForeignNeverOld},
		{"other origin, creation unknown", labels(other, "2"), time.Time{}, DefaultForeignAge, false, ReasonForeignAgeless},
		{"no origin (older harness), young", labels("", "2"), now.Add(-time.Hour), DefaultForeignAge, false, ReasonForeignYoung},
		{"no origin (older harness), old", labels("", "2"), now.Add(-48 * time.Hour), DefaultForeignAge, true, ReasonForeignOld},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := Policy{Origin: self, ForeignAge: tt.age, Now: func() time.Time { return now }, Liveness: liveness}
			v := p.Judge(context.Background(), tt.labels, tt.created)
			assert.Equal(t, tt.remove, v.Remove, v.Reason)
			assert.Equal(t, tt.reason, v.Reason)
		})
	}
}

func TestParseForeignAge(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"", DefaultForeignAge, true},
		{"off", 0, true},
		{" 90m ", 90 * time.Minute, true},
		{"48h", 48 * time.Hour, true},
		{"0", 0, false},
		{"0s", 0, false},
		{"-1h", 0, false},
		{"a day", 0, false},
		{"24", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseForeignAge(tt.in)
			if tt.ok {
				require.NoError(t, err)
				assert.Equal(t, tt.want, got)
				return
			}
			var ce *ConfigError
			require.True(t, errors.As(err, &ce), "%v", err)
			assert.Equal(t, CodeBadForeignAge, ce.Code)
			assert.Equal(t, EnvForeignAge, ce.Var)
			assert.Contains(t, err.Error(), string(CodeBadForeignAge))
		})
	}
}

func TestPolicyFromEnv(t *testing.T) {
	env := func(v string) func(string) string {
		return func(k string) string {
			if k == EnvForeignAge {
				return v
			}
			return ""
		}
	}
	p, err := PolicyFromEnv(context.Background(), env("36h"))
	require.NoError(t, err)
	assert.Equal(t, 36*time.Hour, p.ForeignAge)
	assert.Equal(t, LocalOrigin(context.Background()), p.Origin)

	_, err = PolicyFromEnv(context.Background(), env("soon"))
	var ce *ConfigError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, CodeBadForeignAge, ce.Code)
}

func TestSweepRefusesPolicyWithoutOrigin(t *testing.T) {
	_, err := Policy{}.Sweep(context.Background(), nil)
	require.ErrorIs(t, err, errNoOrigin)
}

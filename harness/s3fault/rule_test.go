package s3fault

import (
	"encoding/json"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRuleValidate(t *testing.T) {
	put := []Op{OpPutObject}
	get := []Op{OpGetObject}
	tests := []struct {
		name      string
		rule      Rule
		wantCode  ErrorCode
		wantField string
	}{
		{"slow down", Rule{Ops: put, Key: "collections/*", Trigger: Next(5), Action: SlowDown(2 * time.Second)}, "", ""},
		{"internal error every 3rd", Rule{Trigger: EveryNth(3), Action: InternalError()}, "", ""},
		{"custom error", Rule{Trigger: Always(), Action: S3Error(403, "AccessDenied", "")}, "", ""},
		{"delay with probability", Rule{KeyRegexp: `^a/.*\.parquet$`, Trigger: Probability(0.5), Action: Delay(time.Millisecond, time.Millisecond)}, "", ""},
		{"truncate get", Rule{Ops: get, Trigger: Always(), Action: TruncateBody(0)}, "", ""},
		{"flip list", Rule{Ops: []Op{OpListObjectsV2}, Trigger: Always(), Action: FlipBits(3)}, "", ""},
		{"cut upload part", Rule{Ops: []Op{OpUploadPart, OpPutObject}, After: 1, Trigger: Next(1), Action: CutRequestBody(10)}, "", ""},
		{"misdirect get", Rule{Ops: get, Key: "collections/*", Trigger: Probability(0.1), Action: Misdirect()}, "", ""},
		{"misdirect get at depth", Rule{Ops: get, Trigger: Next(1), Action: MisdirectDepth(2)}, "", ""},

		{"no trigger", Rule{Action: InternalError()}, CodeInvalidTrigger, "trigger.kind"},
		{"unknown trigger", Rule{Trigger: Trigger{Kind: "sometimes"}, Action: InternalError()}, CodeInvalidTrigger, "trigger.kind"},
		{"next zero", Rule{Trigger: Next(0), Action: InternalError()}, CodeInvalidTrigger, "trigger.n"},
		{"every negative", Rule{Trigger: EveryNth(-1), Action: InternalError()}, CodeInvalidTrigger, "trigger.n"},
		{"probability zero", Rule{Trigger: Probability(0), Action: InternalError()}, CodeInvalidTrigger, "trigger.p"},
		{"probability above one", Rule{Trigger: Probability(1.5), Action: InternalError()}, CodeInvalidTrigger, "trigger.p"},
		{"probability NaN", Rule{Trigger: Probability(math.NaN()), Action: InternalError()}, CodeInvalidTrigger, "trigger.p"},
		{"always with n", Rule{Trigger: Trigger{Kind: TriggerAlways, N: 2}, Action: InternalError()}, CodeInvalidTrigger, "trigger"},
		{"no action", Rule{Trigger: Always()}, CodeInvalidAction, "action.kind"},
		{"unknown action", Rule{Trigger: Always(), Action: Action{Kind: "explode"}}, CodeInvalidAction, "action.kind"},
		{"stray field", Rule{Trigger: Always(), Action: Action{Kind: ActionDelay, Latency: Duration(time.Second), Bytes: 3}}, CodeInvalidAction, "action.bytes"},
		{"negative retry after", Rule{Trigger: Always(), Action: SlowDown(-time.Second)}, CodeInvalidAction, "action.retry_after"},
		{"error status", Rule{Trigger: Always(), Action: S3Error(200, "Fine", "")}, CodeInvalidAction, "action.status"},
		{"error code", Rule{Trigger: Always(), Action: S3Error(400, "bad code!", "")}, CodeInvalidAction, "action.code"},
		{"zero delay", Rule{Trigger: Always(), Action: Delay(0, 0)}, CodeInvalidAction, "action.latency"},
		{"huge delay", Rule{Trigger: Always(), Action: Delay(2*time.Hour, 0)}, CodeInvalidAction, "action.latency"},
		{"negative truncate", Rule{Ops: get, Trigger: Always(), Action: TruncateBody(-1)}, CodeInvalidAction, "action.bytes"},
		{"no flips", Rule{Ops: get, Trigger: Always(), Action: FlipBits(0)}, CodeInvalidAction, "action.flips"},
		{"truncate without ops", Rule{Trigger: Always(), Action: TruncateBody(5)}, CodeActionNotApplicable, "ops"},
		{"truncate put", Rule{Ops: []Op{OpGetObject, OpPutObject}, Trigger: Always(), Action: TruncateBody(5)}, CodeActionNotApplicable, "ops[1]"},
		{"cut get", Rule{Ops: get, Trigger: Always(), Action: CutRequestBody(5)}, CodeActionNotApplicable, "ops[0]"},
		{"misdirect put", Rule{Ops: put, Trigger: Always(), Action: Misdirect()}, CodeActionNotApplicable, "ops[0]"},
		{"misdirect head", Rule{Ops: []Op{OpGetObject, OpHeadObject}, Trigger: Always(), Action: Misdirect()}, CodeActionNotApplicable, "ops[1]"},
		{"misdirect without ops", Rule{Trigger: Always(), Action: Misdirect()}, CodeActionNotApplicable, "ops"},
		{"misdirect negative depth", Rule{Ops: get, Trigger: Always(), Action: MisdirectDepth(-1)}, CodeInvalidAction, "action.prefix_depth"},
		{"misdirect huge depth", Rule{Ops: get, Trigger: Always(), Action: MisdirectDepth(1025)}, CodeInvalidAction, "action.prefix_depth"},
		{"prefix depth on truncate", Rule{Ops: get, Trigger: Always(), Action: Action{Kind: ActionTruncateBody, Bytes: 1, PrefixDepth: 1}}, CodeInvalidAction, "action.prefix_depth"},
		{"misdirect with bytes", Rule{Ops: get, Trigger: Always(), Action: Action{Kind: ActionMisdirect, Bytes: 1}}, CodeInvalidAction, "action.bytes"},
		{"unknown op", Rule{Ops: []Op{"PutObjects"}, Trigger: Always(), Action: InternalError()}, CodeInvalidOp, "ops[0]"},
		{"both key patterns", Rule{Key: "a*", KeyRegexp: "a.*", Trigger: Always(), Action: InternalError()}, CodeInvalidKeyPattern, "key"},
		{"bad regexp", Rule{KeyRegexp: "a(", Trigger: Always(), Action: InternalError()}, CodeInvalidKeyPattern, "key_regexp"},
		{"bad glob", Rule{Key: `a\`, Trigger: Always(), Action: InternalError()}, CodeInvalidKeyPattern, "key"},
		{"bucket slash", Rule{Bucket: "a/b", Trigger: Always(), Action: InternalError()}, CodeInvalidRule, "bucket"},
		{"negative after", Rule{After: -1, Trigger: Always(), Action: InternalError()}, CodeInvalidRule, "after"},
		{"negative max fires", Rule{MaxFires: -1, Trigger: Always(), Action: InternalError()}, CodeInvalidRule, "max_fires"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.rule.Validate()
			if tt.wantCode == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, ErrInvalidRule)
			var re *RuleError
			require.True(t, errors.As(err, &re))
			assert.Equal(t, tt.wantCode, re.Code, re.Error())
			assert.Equal(t, tt.wantField, re.Field, re.Error())
		})
	}
}

func TestKeyGlob(t *testing.T) {
	tests := []struct {
		glob, key string
		want      bool
	}{
		{"collections/*", "collections/a/snap-1.parquet", true},
		{"collections/*", "collections/", true},
		{"collections/*", "other/collections/a", false},
		{"*.parquet", "a/b/c.parquet", true},
		{"*.parquet", "a/b/c.parquet.tmp", false},
		{"snap-?.parquet", "snap-1.parquet", true},
		{"snap-?.parquet", "snap-10.parquet", false},
		{`literal\*`, "literal*", true},
		{`literal\*`, "literalx", false},
		{"a.b", "axb", false},
		{"exact", "exact", true},
		{"exact", "exactly", false},
	}
	for _, tt := range tests {
		t.Run(tt.glob+" "+tt.key, func(t *testing.T) {
			m, err := compileKey(Rule{Key: tt.glob})
			require.NoError(t, err)
			assert.Equal(t, tt.want, m(tt.key))
		})
	}
}

func TestRuleJSONRoundTrip(t *testing.T) {
	r := Rule{
		Name: "throttle", Ops: []Op{OpPutObject, OpUploadPart}, Bucket: "tier", Key: "collections/*",
		After: 2, Trigger: Probability(0.25), MaxFires: 7, Seed: SeedOf(99), Action: Delay(250*time.Millisecond, time.Second),
	}
	b, err := json.Marshal(r)
	require.NoError(t, err)
	assert.Contains(t, string(b), `"latency":"250ms"`)
	assert.Contains(t, string(b), `"jitter":"1s"`)
	var back Rule
	require.NoError(t, json.Unmarshal(b, &back))
	assert.Equal(t, r, back)

	var d Duration
	require.Error(t, json.Unmarshal([]byte(`1000`), &d), "durations must be strings")
	require.Error(t, json.Unmarshal([]byte(`"soon"`), &d))
}

func TestRetryAfterHeader(t *testing.T) {
	for d, want := range map[time.Duration]string{0: "0", time.Second: "1", 1500 * time.Millisecond: "2", time.Minute: "60"} {
		assert.Equal(t, want, retryAfterHeader(Duration(d)), d)
	}
}

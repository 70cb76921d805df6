package fault

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/tierchaos/tierchaos/harness/s3fault"
)

// S3 fault kinds (the S3 fault layer, on tierd's path to S3).
const (
	// KindS3SlowDown answers 503 SlowDown with Retry-After.
	KindS3SlowDown = "s3.slow_down"
	// KindS3InternalError answers 500 InternalError.
	KindS3InternalError = "s3.internal_error"
	// KindS3AccessDenied answers 403 AccessDenied: not retryable.
	KindS3AccessDenied = "s3.access_denied"
	// KindS3Delay delays requests.
	KindS3Delay = "s3.delay"
	// KindS3TruncateGet cuts GET bodies short.
	KindS3TruncateGet = "s3.truncate_get"
	// KindS3FlipGet flips bits in GET bodies.
	KindS3FlipGet = "s3.flip_get"
	// KindS3Misdirect serves the well-formed body of another object of the
	// same collection for a GET.
	KindS3Misdirect = "s3.misdirect"
	// KindS3CutPut cuts PutObject request bodies.
	KindS3CutPut = "s3.cut_put"
	// KindS3CutPart cuts UploadPart request bodies.
	KindS3CutPart = "s3.cut_part"
)

// S3 is one rule of the S3 fault layer. Ops narrows the operations (each
// kind has a default: GETs for body faults, PUT and parts for cuts, every
// operation otherwise), Key narrows keys by glob. Which of the matching
// requests are hit: every one; with Probability, each with that
// probability, drawn from the rule's seeded generator; with Count, the
// next Count of them, after which the rule is used up (it stays listed
// until removed). Probability and Count exclude each other. Seed seeds
// the rule (0: the layer's seed, s3fault.Client.SetSeed).
type S3 struct {
	Action      string       `json:"-"`
	Ops         []s3fault.Op `json:"ops,omitempty"`
	Key         string       `json:"key,omitempty"`
	Probability float64      `json:"probability,omitempty"`
	Count       int          `json:"count,omitempty"`
	Seed        uint64       `json:"seed,omitempty"`
	RetryAfter  Duration     `json:"retry_after,omitempty"`
	Latency     Duration     `json:"latency,omitempty"`
	Jitter      Duration     `json:"jitter,omitempty"`
	Bytes       int64        `json:"bytes,omitempty"`
	Flips       int          `json:"flips,omitempty"`
}

// Kind is "s3." followed by the action.
func (f S3) Kind() string { return "s3." + f.Action }

// Family is FamilyS3.
func (S3) Family() Family { return FamilyS3 }

// Rule is the S3 fault layer's rule for the fault.
func (f S3) Rule() (s3fault.Rule, error) {
	if err := f.checkTrigger(); err != nil {
		return s3fault.Rule{}, err
	}
	r := s3fault.Rule{Name: "fault:" + f.Kind(), Ops: f.Ops, Key: f.Key, Trigger: s3fault.Always()}
	switch {
	case f.Count > 0:
		r.Trigger = s3fault.Next(f.Count)
	case f.Probability > 0 && f.Probability < 1:
		r.Trigger = s3fault.Probability(f.Probability)
	}
	if f.Seed != 0 {
		r.Seed = s3fault.SeedOf(f.Seed)
	}
	ops := func(def ...s3fault.Op) {
		if len(r.Ops) == 0 {
			r.Ops = def
		}
	}
	switch f.Action {
	case "slow_down":
		r.Action = s3fault.SlowDown(f.RetryAfter.D())
	case "internal_error":
		r.Action = s3fault.InternalError()
	case "access_denied":
		r.Action = s3fault.S3Error(403, "AccessDenied", "Access Denied.")
	case "delay":
		r.Action = s3fault.Delay(f.Latency.D(), f.Jitter.D())
	case "truncate_get":
		ops(s3fault.OpGetObject)
		r.Action = s3fault.TruncateBody(f.Bytes)
	case "flip_get":
		ops(s3fault.OpGetObject)
		flips := f.Flips
		if flips == 0 {
			flips = 1
		}
		r.Action = s3fault.FlipBits(flips)
	case "misdirect":
		ops(s3fault.OpGetObject)
		r.Action = s3fault.Misdirect()
	case "cut_put":
		ops(s3fault.OpPutObject)
		r.Action = s3fault.CutRequestBody(f.Bytes)
	case "cut_part":
		ops(s3fault.OpUploadPart)
		r.Action = s3fault.CutRequestBody(f.Bytes)
	default:
		return s3fault.Rule{}, &Error{Code: CodeUnknownKind, Kind: f.Kind(), Msg: "unknown S3 action"}
	}
	if err := r.Validate(); err != nil {
		return s3fault.Rule{}, &Error{Code: CodeBadParameter, Kind: f.Kind(), Msg: "rule", Err: err}
	}
	return r, nil
}

// Validate checks the rule the fault makes.
func (f S3) Validate() error {
	_, err := f.Rule()
	return err
}

// checkTrigger checks the fields that pick the requests to hit.
func (f S3) checkTrigger() error {
	if f.Probability < 0 || f.Probability > 1 {
		return invalid(f.Kind(), "probability %v outside [0, 1]", f.Probability)
	}
	if f.Count < 0 {
		return invalid(f.Kind(), "count %d below 0", f.Count)
	}
	if f.Count > 0 && f.Probability > 0 {
		return invalid(f.Kind(), "probability and count exclude each other (probability %v, count %d)", f.Probability, f.Count)
	}
	return nil
}

// Retryable reports whether tierd's S3 client should retry requests this
// fault fails (503 and 500 are retryable; 403 is not).
func (f S3) Retryable() bool { return f.Action != "access_denied" }

// String describes the fault.
func (f S3) String() string {
	var b strings.Builder
	b.WriteString(f.Kind())
	if len(f.Ops) > 0 {
		fmt.Fprintf(&b, " ops=%v", f.Ops)
	}
	if f.Key != "" {
		fmt.Fprintf(&b, " key=%s", f.Key)
	}
	if f.Probability > 0 {
		fmt.Fprintf(&b, " p=%.2f", f.Probability)
	}
	if f.Count > 0 {
		fmt.Fprintf(&b, " count=%d", f.Count)
	}
	switch f.Action {
	case "slow_down":
		fmt.Fprintf(&b, " retry_after=%s", f.RetryAfter.D())
	case "delay":
		fmt.Fprintf(&b, " %s±%s", f.Latency.D(), f.Jitter.D())
	case "truncate_get", "cut_put", "cut_part":
		fmt.Fprintf(&b, " bytes=%d", f.Bytes)
	case "flip_get":
		fmt.Fprintf(&b, " flips=%d", max(f.Flips, 1))
	}
	return b.String()
}

// Apply adds the rule to the S3 fault layer; Remove deletes it. The
// Active is an *S3Rule, which names the rule.
func (f S3) Apply(ctx context.Context, s Stack) (Active, error) {
	r, err := f.Rule()
	if err != nil {
		return nil, err
	}
	faults := s.Core().S3Faults
	id, err := faults.AddRule(ctx, r)
	if err != nil {
		return nil, fmt.Errorf("fault %s: add rule: %w", f.Kind(), err)
	}
	return &S3Rule{ID: id, kind: f.Kind(), faults: faults}, nil
}

// S3Rule is an S3 fault in effect: the rule S3.Apply added to the S3
// fault layer.
type S3Rule struct {
	// ID is the layer's id of the rule: its status and counters are
	// s3fault.Client.Rule(ctx, ID) and Stats.Rule(ID).
	ID string

	kind    string
	faults  *s3fault.Client
	removed bool
}

// Remove deletes the rule (a rule already gone, after a reset, counts as
// deleted). A request the rule is delaying stays delayed. Removing twice
// is a no-op.
func (r *S3Rule) Remove(ctx context.Context) error {
	if r.removed {
		return nil
	}
	if err := r.faults.DeleteRule(ctx, r.ID); err != nil && !isNotFound(err) {
		return fmt.Errorf("fault %s: delete rule %s: %w", r.kind, r.ID, err)
	}
	r.removed = true
	return nil
}

// isNotFound reports a rule already gone (removed by a reset).
func isNotFound(err error) bool { return errors.Is(err, s3fault.ErrRuleNotFound) }

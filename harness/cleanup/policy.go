package cleanup

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"
)

// EnvForeignAge sets how old objects of other origins (and of runs whose
// liveness cannot be judged) must be before RemoveDead removes them: a Go
// duration such as "24h" or "90m", or "off" to never remove them. Default
// DefaultForeignAge.
const EnvForeignAge = "TIERCHAOS_CLEANUP_FOREIGN_AGE"

// DefaultForeignAge is generous: no CI job or nightly run of this project
// lasts a day, so a tierchaos object of another origin that old is a
// leftover, not a live run.
const DefaultForeignAge = 24 * time.Hour

// ErrorCode is a stable, machine-readable code of a cleanup error.
type ErrorCode string

// CodeBadForeignAge: EnvForeignAge holds neither a positive Go duration
// nor "off".
const CodeBadForeignAge ErrorCode = "bad_foreign_age"

// ConfigError is returned for a bad cleanup setting.
type ConfigError struct {
	// Code is the stable error code.
	Code ErrorCode
	// Var and Value are the offending environment variable and its value.
	Var, Value string
	// Err is the cause, if any.
	Err error
}

func (e *ConfigError) Error() string {
	msg := fmt.Sprintf("cleanup: %s: %s=%q: want a positive Go duration (e.g. 24h) or \"off\"", e.Code, e.Var, e.Value)
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *ConfigError) Unwrap() error { return e.Err }

// Policy decides which tierchaos objects RemoveDead removes.
type Policy struct {
	// Origin is the origin of the judging process: only runs of this
	// origin are judged by their owning process.
	Origin Origin
	// ForeignAge: objects of other origins, objects without an origin
	// label, and runs whose liveness is unknown are removed once they are
	// older than this; 0 never removes them.
	ForeignAge time.Duration
	// Now is the current time (time.Now when nil).
	Now func() time.Time
	// Liveness judges a run of this origin from its PID and start labels
	// (ProcessLiveness when nil).
	Liveness func(ctx context.Context, pidLabel, startLabel string) Liveness
}

// PolicyFromEnv returns the policy of the calling process: its origin, and
// the foreign age of EnvForeignAge (getenv is os.Getenv when nil).
func PolicyFromEnv(ctx context.Context, getenv func(string) string) (Policy, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	age, err := ParseForeignAge(getenv(EnvForeignAge))
	if err != nil {
		return Policy{}, err
	}
	return Policy{Origin: LocalOrigin(ctx), ForeignAge: age}, nil
}

// ParseForeignAge parses a value of EnvForeignAge; "" gives
// DefaultForeignAge and "off" gives 0 (never).
func ParseForeignAge(v string) (time.Duration, error) {
	switch strings.TrimSpace(v) {
	case "":
		return DefaultForeignAge, nil
	case "off":
		return 0, nil
	}
	d, err := time.ParseDuration(strings.TrimSpace(v))
	if err != nil {
		return 0, &ConfigError{Code: CodeBadForeignAge, Var: EnvForeignAge, Value: v, Err: err}
	}
	if d <= 0 {
		return 0, &ConfigError{Code: CodeBadForeignAge, Var: EnvForeignAge, Value: v}
	}
	return d, nil
}

// Verdict is the policy's decision on one object.
type Verdict struct {
	Remove bool
	// Reason says why, for logs and tests.
	Reason string
}

// Reasons of verdicts.
const (
	ReasonOwnerDead       = "owner process of this origin is gone"
	ReasonOwnerAlive      = "owner process of this origin is alive"
	ReasonUnknownOld      = "owner unknown (unreadable labels or process table) and older than the foreign age"
	ReasonUnknownYoung    = "owner unknown (unreadable labels or process table), not older than the foreign age"
	ReasonForeignOld      = "other origin, older than the foreign age"
	ReasonForeignYoung    = "other origin, not older than the foreign age"
	ReasonForeignAgeless  = "other origin, creation time unknown"
	ReasonForeignNeverOld = "other origin, foreign age off"
)

// Judge decides on one object from its labels and its creation time (zero
// when unknown). Runs of the policy's origin are removed when their owning
// process is gone; anything else only once it is older than ForeignAge.
func (p Policy) Judge(ctx context.Context, labels map[string]string, created time.Time) Verdict {
	if labels[LabelOrigin] != "" && Origin(labels[LabelOrigin]) == p.Origin {
		liveness := p.Liveness
		if liveness == nil {
			liveness = ProcessLiveness
		}
		switch liveness(ctx, labels[LabelPID], labels[LabelPIDStarted]) {
		case LivenessDead:
			return Verdict{Remove: true, Reason: ReasonOwnerDead}
		case LivenessAlive:
			return Verdict{Remove: false, Reason: ReasonOwnerAlive}
		}
		if p.older(created) {
			return Verdict{Remove: true, Reason: ReasonUnknownOld}
		}
		return Verdict{Remove: false, Reason: ReasonUnknownYoung}
	}
	switch {
	case p.ForeignAge <= 0:
		return Verdict{Remove: false, Reason: ReasonForeignNeverOld}
	case created.IsZero():
		return Verdict{Remove: false, Reason: ReasonForeignAgeless}
	case p.older(created):
		return Verdict{Remove: true, Reason: ReasonForeignOld}
	default:
		return Verdict{Remove: false, Reason: ReasonForeignYoung}
	}
}

// older reports whether created is known and more than ForeignAge ago.
func (p Policy) older(created time.Time) bool {
	if p.ForeignAge <= 0 || created.IsZero() {
		return false
	}
	now := time.Now
	if p.Now != nil {
		now = p.Now
	}
	return now().Sub(created) > p.ForeignAge
}

// errNoOrigin is returned by a sweep whose policy has no origin.
var errNoOrigin = errors.New("cleanup: policy without an origin")

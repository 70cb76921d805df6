package s3fault

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Rule selects S3 requests and injects one fault into some of them.
//
// A request matches a rule when its operation is in Ops (any operation when
// Ops is empty), its bucket equals Bucket (any bucket when empty) and its key
// matches Key or KeyRegexp (any key when both are empty). Of the matching
// requests, the first After pass untouched; from then on Trigger decides
// which ones are hit, and Action says what happens to them. A rule stops
// firing after MaxFires hits (0: no limit) or when a Next trigger is used up;
// it is then "exhausted" and stays listed until deleted.
//
// Rules are evaluated in the order they were added. Delay actions add up and
// evaluation continues after them; the first other action that fires ends
// evaluation, so later rules neither see nor count that request.
type Rule struct {
	// Name is an optional label shown in listings and stats.
	Name string `json:"name,omitempty"`
	// Ops are the operations the rule applies to; empty means all.
	Ops []Op `json:"ops,omitempty"`
	// Bucket is the exact bucket name; empty means any bucket.
	Bucket string `json:"bucket,omitempty"`
	// Key is a glob over the whole object key: '*' matches any run of
	// characters including '/' (S3 keys are flat strings), '?' matches one
	// character, '\' escapes the next character. Empty means any key.
	Key string `json:"key,omitempty"`
	// KeyRegexp is a Go (RE2) regular expression searched for in the key
	// (unanchored: use ^ and $ to match the whole key). At most one of Key
	// and KeyRegexp may be set.
	KeyRegexp string `json:"key_regexp,omitempty"`
	// After lets this many matching requests through before the trigger
	// starts counting.
	After int `json:"after,omitempty"`
	// Trigger picks which matching requests are hit. Required.
	Trigger Trigger `json:"trigger"`
	// MaxFires caps the number of hits (0: no cap).
	MaxFires int `json:"max_fires,omitempty"`
	// Seed seeds this rule's random choices (probability draws, latency
	// jitter, bit positions). Nil means the layer's seed (see
	// [Proxy.SetSeed]). Set it with [SeedOf].
	Seed *uint64 `json:"seed,omitempty"`
	// Action is what happens to a hit request. Required.
	Action Action `json:"action"`
}

// SeedOf returns a pointer to seed, for [Rule.Seed].
func SeedOf(seed uint64) *uint64 { return &seed }

// TriggerKind names a trigger.
type TriggerKind string

// Trigger kinds.
const (
	// TriggerAlways hits every matching request.
	TriggerAlways TriggerKind = "always"
	// TriggerNext hits the next N matching requests, then the rule is
	// exhausted.
	TriggerNext TriggerKind = "next"
	// TriggerEveryNth hits the Nth, 2Nth, 3Nth... matching request.
	TriggerEveryNth TriggerKind = "every_nth"
	// TriggerProbability hits each matching request with probability P,
	// drawn from the rule's seeded generator.
	TriggerProbability TriggerKind = "probability"
)

// Trigger decides which matching requests a rule hits. Build it with
// [Always], [Next], [EveryNth] or [Probability].
type Trigger struct {
	// Kind is the trigger kind.
	Kind TriggerKind `json:"kind"`
	// N is the count for TriggerNext and TriggerEveryNth.
	N int `json:"n,omitempty"`
	// P is the probability in (0, 1] for TriggerProbability.
	P float64 `json:"p,omitempty"`
}

// Always hits every matching request.
func Always() Trigger { return Trigger{Kind: TriggerAlways} }

// Next hits the next n matching requests, then exhausts the rule.
func Next(n int) Trigger { return Trigger{Kind: TriggerNext, N: n} }

// EveryNth hits every nth matching request: the nth, the 2nth, and so on.
func EveryNth(n int) Trigger { return Trigger{Kind: TriggerEveryNth, N: n} }

// Probability hits each matching request with probability p in (0, 1],
// drawn from the rule's seeded generator: for a given seed and sequence of
// matching requests the same requests are hit.
func Probability(p float64) Trigger { return Trigger{Kind: TriggerProbability, P: p} }

// ActionKind names an action.
type ActionKind string

// Action kinds.
const (
	// ActionSlowDown answers 503 SlowDown (S3 XML error body) with a
	// Retry-After header, without forwarding the request.
	ActionSlowDown ActionKind = "slow_down"
	// ActionInternalError answers 500 InternalError (S3 XML error body)
	// without forwarding the request.
	ActionInternalError ActionKind = "internal_error"
	// ActionError answers any S3 error (status, code, message) without
	// forwarding the request.
	ActionError ActionKind = "error"
	// ActionDelay waits Latency plus a uniform random [0, Jitter] before
	// forwarding the request.
	ActionDelay ActionKind = "delay"
	// ActionTruncateBody forwards the request and passes only the first
	// Bytes bytes of a 2xx response body, then closes the connection: the
	// client sees a body shorter than its Content-Length.
	ActionTruncateBody ActionKind = "truncate_body"
	// ActionFlipBits forwards the request and flips Flips distinct bits at
	// seeded positions of a 2xx response body; Content-Length and every
	// header stay unchanged.
	ActionFlipBits ActionKind = "flip_bits"
	// ActionCutRequestBody forwards the request but only the first Bytes
	// bytes of its body (as sent on the wire, so aws-chunked framing
	// counts), then aborts both the upstream request and the client
	// connection: the upstream never receives a complete body.
	ActionCutRequestBody ActionKind = "cut_request_body"
	// ActionMisdirect answers a GetObject with the complete, well-formed
	// body of another object of the same collection (another key under the
	// requested key's prefix, see [Action.PrefixDepth]), with that object's
	// own Content-Length and ETag, as a lagging replica or a mixed-up cache
	// would. The other key is picked from the rule's seed among the listed
	// keys; a Range request gets the same range of the other object. When
	// no other object exists under the prefix, the request passes through
	// unchanged and the hit is taken back (not counted as fired). Only for
	// GetObject; the layer needs upstream credentials ([WithCredentials]) to
	// list and read the other object.
	ActionMisdirect ActionKind = "misdirect"
)

// Action is the fault a rule injects. Build it with [SlowDown],
// [InternalError], [S3Error], [Delay], [TruncateBody], [FlipBits],
// [CutRequestBody], [Misdirect] or [MisdirectDepth]; each kind uses only the
// fields its constructor sets.
type Action struct {
	// Kind is the action kind.
	Kind ActionKind `json:"kind"`
	// Status is the HTTP status of an ActionError (400..599).
	Status int `json:"status,omitempty"`
	// Code is the S3 error code of an ActionError, e.g. "AccessDenied".
	Code string `json:"code,omitempty"`
	// Message is the S3 error message of an ActionError (default: the
	// status text).
	Message string `json:"message,omitempty"`
	// RetryAfter is sent as a Retry-After header in whole seconds, rounded
	// up: always for ActionSlowDown, for ActionError when non-zero.
	RetryAfter Duration `json:"retry_after,omitempty"`
	// Latency is the fixed part of an ActionDelay.
	Latency Duration `json:"latency,omitempty"`
	// Jitter is the random part of an ActionDelay: uniform in [0, Jitter].
	Jitter Duration `json:"jitter,omitempty"`
	// Bytes is how many body bytes pass before ActionTruncateBody or
	// ActionCutRequestBody cuts.
	Bytes int64 `json:"bytes,omitempty"`
	// Flips is the number of distinct bits ActionFlipBits flips (1..1024).
	Flips int `json:"flips,omitempty"`
	// PrefixDepth is how much of the requested key ActionMisdirect keeps as
	// the collection prefix to pick the other object from: 0 (default) keeps
	// everything up to and including the last '/'; n > 0 keeps the first n
	// '/'-terminated segments ("collections/c/" for n = 2), or up to the
	// last '/' when the key has fewer. A key without '/' has the empty
	// prefix: the whole bucket.
	PrefixDepth int `json:"prefix_depth,omitempty"`
}

// SlowDown answers 503 SlowDown with S3's XML error body and a Retry-After
// header of retryAfter (whole seconds, rounded up).
func SlowDown(retryAfter time.Duration) Action {
	return Action{Kind: ActionSlowDown, RetryAfter: Duration(retryAfter)}
}

// InternalError answers 500 InternalError with S3's XML error body.
func InternalError() Action { return Action{Kind: ActionInternalError} }

// S3Error answers an arbitrary S3 error, e.g. S3Error(403, "AccessDenied",
// "Access Denied."). An empty message becomes the status text.
func S3Error(status int, code, message string) Action {
	return Action{Kind: ActionError, Status: status, Code: code, Message: message}
}

// Delay waits latency plus a seeded uniform random duration in [0, jitter]
// before forwarding the request.
func Delay(latency, jitter time.Duration) Action {
	return Action{Kind: ActionDelay, Latency: Duration(latency), Jitter: Duration(jitter)}
}

// TruncateBody passes the first n bytes of a successful response body and
// then closes the connection. Only for operations with response bodies
// (GetObject and the List operations).
func TruncateBody(n int64) Action { return Action{Kind: ActionTruncateBody, Bytes: n} }

// FlipBits flips n distinct bits at seeded positions of a successful response
// body, leaving its length and headers unchanged. Only for operations with
// response bodies (GetObject and the List operations).
func FlipBits(n int) Action { return Action{Kind: ActionFlipBits, Flips: n} }

// CutRequestBody forwards only the first n request-body bytes and then aborts
// the upstream request and the client connection. Only for PutObject,
// UploadPart and CompleteMultipartUpload.
func CutRequestBody(n int64) Action { return Action{Kind: ActionCutRequestBody, Bytes: n} }

// Misdirect answers a GetObject with another object of the same collection:
// another key under the requested key's prefix up to and including its last
// '/'. Only for GetObject.
func Misdirect() Action { return Action{Kind: ActionMisdirect} }

// MisdirectDepth is [Misdirect] with the collection prefix cut after the
// first depth '/'-terminated segments of the requested key (see
// [Action.PrefixDepth]); MisdirectDepth(0) is Misdirect().
func MisdirectDepth(depth int) Action { return Action{Kind: ActionMisdirect, PrefixDepth: depth} }

// Limits on rule fields.
const (
	maxFlips    = 1024
	maxDelay    = time.Hour
	maxNameLen  = 200
	maxPatterns = 1024
	maxDepth    = 1024
)

// Operations whose successful responses carry a body worth corrupting.
var responseBodyOps = []Op{
	OpGetObject, OpListObjects, OpListObjectsV2, OpListMultipartUploads, OpListParts, OpListBuckets,
}

// Operations whose request carries a body worth cutting.
var requestBodyOps = []Op{OpPutObject, OpUploadPart, OpCompleteMultipartUpload}

// ErrorCode is a stable, machine-readable error code of the control API and
// of rule validation.
type ErrorCode string

// Error codes.
const (
	// CodeInvalidJSON: the request body is not valid JSON for the endpoint,
	// has unknown fields or is too large.
	CodeInvalidJSON ErrorCode = "invalid_json"
	// CodeInvalidRule: a general rule field (name, bucket, after,
	// max_fires) is invalid.
	CodeInvalidRule ErrorCode = "invalid_rule"
	// CodeInvalidOp: an operation name is unknown.
	CodeInvalidOp ErrorCode = "invalid_op"
	// CodeInvalidKeyPattern: the key glob or regexp does not compile, or
	// both are set.
	CodeInvalidKeyPattern ErrorCode = "invalid_key_pattern"
	// CodeInvalidTrigger: the trigger is missing, unknown or has bad
	// parameters.
	CodeInvalidTrigger ErrorCode = "invalid_trigger"
	// CodeInvalidAction: the action is missing, unknown or has bad or
	// stray parameters.
	CodeInvalidAction ErrorCode = "invalid_action"
	// CodeActionNotApplicable: the action cannot apply to the rule's
	// operations (e.g. truncating a PutObject response).
	CodeActionNotApplicable ErrorCode = "action_not_applicable"
	// CodeRuleNotFound: no rule has the given id.
	CodeRuleNotFound ErrorCode = "rule_not_found"
	// CodeNotFound: no such endpoint.
	CodeNotFound ErrorCode = "not_found"
	// CodeMethodNotAllowed: the endpoint does not accept the method.
	CodeMethodNotAllowed ErrorCode = "method_not_allowed"
	// CodeUnauthorized: the control request carries no bearer token, or
	// not the layer's (HTTP 401).
	CodeUnauthorized ErrorCode = "unauthorized"
	// CodeUnexpectedStatus: set by the Client when the server answered an
	// unexpected status without an error document.
	CodeUnexpectedStatus ErrorCode = "unexpected_status"
)

// ErrInvalidRule matches every *RuleError with errors.Is.
var ErrInvalidRule = errors.New("s3fault: invalid rule")

// RuleError reports why a rule is invalid.
type RuleError struct {
	// Code is the stable error code.
	Code ErrorCode
	// Field is the JSON name of the offending field, e.g. "trigger.n".
	Field string
	// Reason says what is wrong.
	Reason string
}

// Error implements error.
func (e *RuleError) Error() string {
	return fmt.Sprintf("s3fault: invalid rule: %s: %s (%s)", e.Field, e.Reason, e.Code)
}

// Is makes errors.Is(err, ErrInvalidRule) true.
func (e *RuleError) Is(target error) bool { return target == ErrInvalidRule }

func ruleErr(code ErrorCode, field, format string, args ...any) *RuleError {
	return &RuleError{Code: code, Field: field, Reason: fmt.Sprintf(format, args...)}
}

// Validate reports the first problem with r as a *RuleError, or nil.
func (r Rule) Validate() error {
	_, err := compileKey(r)
	if err != nil {
		return err
	}
	if len(r.Name) > maxNameLen {
		return ruleErr(CodeInvalidRule, "name", "longer than %d bytes", maxNameLen)
	}
	if strings.Contains(r.Bucket, "/") {
		return ruleErr(CodeInvalidRule, "bucket", "%q contains '/'", r.Bucket)
	}
	if r.After < 0 {
		return ruleErr(CodeInvalidRule, "after", "must be >= 0, got %d", r.After)
	}
	if r.MaxFires < 0 {
		return ruleErr(CodeInvalidRule, "max_fires", "must be >= 0, got %d", r.MaxFires)
	}
	for i, op := range r.Ops {
		if !op.Valid() {
			return ruleErr(CodeInvalidOp, fmt.Sprintf("ops[%d]", i), "unknown operation %q", op)
		}
	}
	if err := r.Trigger.validate(); err != nil {
		return err
	}
	if err := r.Action.validate(); err != nil {
		return err
	}
	return r.checkApplicable()
}

func (t Trigger) validate() error {
	switch t.Kind {
	case "":
		return ruleErr(CodeInvalidTrigger, "trigger.kind", "a trigger is required (always, next, every_nth, probability)")
	case TriggerAlways:
		if t.N != 0 || t.P != 0 {
			return ruleErr(CodeInvalidTrigger, "trigger", "always takes no n or p")
		}
	case TriggerNext, TriggerEveryNth:
		if t.N < 1 {
			return ruleErr(CodeInvalidTrigger, "trigger.n", "%s needs n >= 1, got %d", t.Kind, t.N)
		}
		if t.P != 0 {
			return ruleErr(CodeInvalidTrigger, "trigger.p", "%s takes no p", t.Kind)
		}
	case TriggerProbability:
		if math.IsNaN(t.P) || t.P <= 0 || t.P > 1 {
			return ruleErr(CodeInvalidTrigger, "trigger.p", "probability needs 0 < p <= 1, got %v", t.P)
		}
		if t.N != 0 {
			return ruleErr(CodeInvalidTrigger, "trigger.n", "probability takes no n")
		}
	default:
		return ruleErr(CodeInvalidTrigger, "trigger.kind", "unknown trigger %q (always, next, every_nth, probability)", t.Kind)
	}
	return nil
}

// actionFields lists, per kind, the optional fields it uses.
var actionFields = map[ActionKind][]string{
	ActionSlowDown:       {"retry_after"},
	ActionInternalError:  {},
	ActionError:          {"status", "code", "message", "retry_after"},
	ActionDelay:          {"latency", "jitter"},
	ActionTruncateBody:   {"bytes"},
	ActionFlipBits:       {"flips"},
	ActionCutRequestBody: {"bytes"},
	ActionMisdirect:      {"prefix_depth"},
}

// validS3Code matches S3 error codes such as "SlowDown" or "NoSuchKey".
var validS3Code = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9.]{0,63}$`)

func (a Action) validate() error {
	allowed, ok := actionFields[a.Kind]
	if !ok {
		if a.Kind == "" {
			return ruleErr(CodeInvalidAction, "action.kind", "an action is required")
		}
		return ruleErr(CodeInvalidAction, "action.kind", "unknown action %q", a.Kind)
	}
	set := map[string]bool{
		"status": a.Status != 0, "code": a.Code != "", "message": a.Message != "",
		"retry_after": a.RetryAfter != 0, "latency": a.Latency != 0, "jitter": a.Jitter != 0,
		"bytes": a.Bytes != 0, "flips": a.Flips != 0, "prefix_depth": a.PrefixDepth != 0,
	}
	for _, f := range []string{"status", "code", "message", "retry_after", "latency", "jitter", "bytes", "flips", "prefix_depth"} {
		if set[f] && !slices.Contains(allowed, f) {
			return ruleErr(CodeInvalidAction, "action."+f, "not used by action %s", a.Kind)
		}
	}
	switch a.Kind {
	case ActionSlowDown:
		if a.RetryAfter < 0 {
			return ruleErr(CodeInvalidAction, "action.retry_after", "must be >= 0")
		}
	case ActionError:
		if a.Status < 400 || a.Status > 599 {
			return ruleErr(CodeInvalidAction, "action.status", "must be 400..599, got %d", a.Status)
		}
		if !validS3Code.MatchString(a.Code) {
			return ruleErr(CodeInvalidAction, "action.code", "must be an S3 error code like NoSuchKey, got %q", a.Code)
		}
		if a.RetryAfter < 0 {
			return ruleErr(CodeInvalidAction, "action.retry_after", "must be >= 0")
		}
	case ActionDelay:
		if a.Latency < 0 || a.Jitter < 0 {
			return ruleErr(CodeInvalidAction, "action.latency", "latency and jitter must be >= 0")
		}
		if a.Latency == 0 && a.Jitter == 0 {
			return ruleErr(CodeInvalidAction, "action.latency", "latency or jitter must be > 0")
		}
		if time.Duration(a.Latency)+time.Duration(a.Jitter) > maxDelay {
			return ruleErr(CodeInvalidAction, "action.latency", "latency + jitter must be <= %s", maxDelay)
		}
	case ActionTruncateBody, ActionCutRequestBody:
		if a.Bytes < 0 {
			return ruleErr(CodeInvalidAction, "action.bytes", "must be >= 0, got %d", a.Bytes)
		}
	case ActionFlipBits:
		if a.Flips < 1 || a.Flips > maxFlips {
			return ruleErr(CodeInvalidAction, "action.flips", "must be 1..%d, got %d", maxFlips, a.Flips)
		}
	case ActionMisdirect:
		if a.PrefixDepth < 0 || a.PrefixDepth > maxDepth {
			return ruleErr(CodeInvalidAction, "action.prefix_depth", "must be 0..%d, got %d", maxDepth, a.PrefixDepth)
		}
	}
	return nil
}

// checkApplicable rejects body actions on operations without such a body,
// and misdirection on anything but GetObject.
func (r Rule) checkApplicable() error {
	var want []Op
	switch r.Action.Kind {
	case ActionTruncateBody, ActionFlipBits:
		want = responseBodyOps
	case ActionCutRequestBody:
		want = requestBodyOps
	case ActionMisdirect:
		want = []Op{OpGetObject}
	default:
		return nil
	}
	if len(r.Ops) == 0 {
		return ruleErr(CodeActionNotApplicable, "ops", "action %s needs explicit ops, a subset of %v", r.Action.Kind, want)
	}
	for i, op := range r.Ops {
		if !slices.Contains(want, op) {
			return ruleErr(CodeActionNotApplicable, fmt.Sprintf("ops[%d]", i),
				"action %s does not apply to %s; allowed: %v", r.Action.Kind, op, want)
		}
	}
	return nil
}

// keyMatcher matches object keys; nil matches every key.
type keyMatcher func(key string) bool

// compileKey builds the key matcher of r.
func compileKey(r Rule) (keyMatcher, error) {
	switch {
	case r.Key != "" && r.KeyRegexp != "":
		return nil, ruleErr(CodeInvalidKeyPattern, "key", "set key (glob) or key_regexp, not both")
	case len(r.Key) > maxPatterns || len(r.KeyRegexp) > maxPatterns:
		return nil, ruleErr(CodeInvalidKeyPattern, "key", "pattern longer than %d bytes", maxPatterns)
	case r.Key != "":
		re, err := globToRegexp(r.Key)
		if err != nil {
			return nil, ruleErr(CodeInvalidKeyPattern, "key", "%v", err)
		}
		return re.MatchString, nil
	case r.KeyRegexp != "":
		re, err := regexp.Compile(r.KeyRegexp)
		if err != nil {
			return nil, ruleErr(CodeInvalidKeyPattern, "key_regexp", "%v", err)
		}
		return re.MatchString, nil
	}
	return nil, nil
}

// globToRegexp translates a key glob ('*' any run, '?' one character, '\'
// escape) into an anchored regexp.
func globToRegexp(glob string) (*regexp.Regexp, error) {
	var b strings.Builder
	b.WriteString(`(?s)^`)
	runes := []rune(glob)
	for i := 0; i < len(runes); i++ {
		switch c := runes[i]; c {
		case '*':
			b.WriteString(`.*`)
		case '?':
			b.WriteString(`.`)
		case '\\':
			if i+1 == len(runes) {
				return nil, errors.New(`glob ends with a lone '\'`)
			}
			i++
			b.WriteString(regexp.QuoteMeta(string(runes[i])))
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	b.WriteString(`$`)
	return regexp.Compile(b.String())
}

// Duration is a time.Duration that encodes in JSON as a Go duration string
// ("250ms", "2s").
type Duration time.Duration

// MarshalJSON implements json.Marshaler.
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// UnmarshalJSON implements json.Unmarshaler; it accepts only strings that
// time.ParseDuration accepts.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration must be a string like \"250ms\": %w", err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("duration: %w", err)
	}
	*d = Duration(v)
	return nil
}

// retryAfterHeader renders d as whole seconds, rounded up.
func retryAfterHeader(d Duration) string {
	secs := int64(math.Ceil(time.Duration(d).Seconds()))
	return fmt.Sprintf("%d", secs)
}

// statusText is the default message of an ActionError.
func statusText(status int) string {
	if t := http.StatusText(status); t != "" {
		return t + "."
	}
	return "Error."
}

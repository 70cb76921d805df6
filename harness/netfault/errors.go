package netfault

import (
	"errors"
	"fmt"
)

// ErrorCode is a stable, machine-readable code of a netfault error.
type ErrorCode string

// Error codes. The validation codes all match ErrInvalid; CodeToxiproxy
// matches ErrToxiproxy.
const (
	// CodeNegativeDuration: a duration (latency, jitter, timeout, delay) is
	// below zero.
	CodeNegativeDuration ErrorCode = "negative_duration"
	// CodeDurationPrecision: a duration is not a whole number of the unit
	// Toxiproxy takes (milliseconds; microseconds for the slicer delay), so
	// it could not be applied as written.
	CodeDurationPrecision ErrorCode = "duration_precision"
	// CodeJitterExceedsLatency: the jitter is larger than the latency, which
	// would ask for negative delays.
	CodeJitterExceedsLatency ErrorCode = "jitter_exceeds_latency"
	// CodeToxicityRange: a toxicity is outside [0, 1] or NaN.
	CodeToxicityRange ErrorCode = "toxicity_out_of_range"
	// CodeNonPositive: a rate or size that must be above zero is not
	// (Toxiproxy treats a bandwidth of 0 as unlimited).
	CodeNonPositive ErrorCode = "non_positive"
	// CodeNegativeSize: a byte count is below zero.
	CodeNegativeSize ErrorCode = "negative_size"
	// CodeVariationTooLarge: the slicer's size variation is not below its
	// average size.
	CodeVariationTooLarge ErrorCode = "variation_too_large"
	// CodeNoToxics: Apply or During was called without toxics.
	CodeNoToxics ErrorCode = "no_toxics"
	// CodeNilToxic: a nil Toxic was passed.
	CodeNilToxic ErrorCode = "nil_toxic"
	// CodeNonPositiveWindow: During's window is zero or negative.
	CodeNonPositiveWindow ErrorCode = "non_positive_window"
	// CodeNilProxy: New was given a nil proxy.
	CodeNilProxy ErrorCode = "nil_proxy"
	// CodeToxiproxy: a call to the Toxiproxy API failed; Unwrap gives the
	// cause (a *toxiproxy.ApiError when Toxiproxy answered with an error).
	CodeToxiproxy ErrorCode = "toxiproxy_api"
)

// ErrInvalid matches (errors.Is) every validation error of this package.
var ErrInvalid = errors.New("netfault: invalid fault")

// ErrToxiproxy matches (errors.Is) every failed Toxiproxy API call.
var ErrToxiproxy = errors.New("netfault: toxiproxy API call failed")

// Error is the error type of this package. Match it with errors.As and
// compare Code, or with errors.Is against ErrInvalid or ErrToxiproxy.
type Error struct {
	// Code is the stable error code.
	Code ErrorCode
	// Toxic names the toxic type concerned ("latency", ...), if any.
	Toxic string
	// Field names the offending parameter ("jitter", "toxicity", ...), if any.
	Field string
	// Message explains the error.
	Message string
	// Err is the underlying cause, for CodeToxiproxy.
	Err error
}

// Error implements error.
func (e *Error) Error() string {
	s := "netfault: "
	if e.Toxic != "" {
		s += e.Toxic + ": "
	}
	if e.Field != "" {
		s += e.Field + ": "
	}
	s += e.Message + " (" + string(e.Code) + ")"
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the underlying cause.
func (e *Error) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrInvalid) and errors.Is(err, ErrToxiproxy) work.
func (e *Error) Is(target error) bool {
	switch target {
	case ErrInvalid:
		return e.Code != CodeToxiproxy
	case ErrToxiproxy:
		return e.Code == CodeToxiproxy
	}
	return false
}

func invalid(code ErrorCode, toxic, field, format string, args ...any) *Error {
	return &Error{Code: code, Toxic: toxic, Field: field, Message: fmt.Sprintf(format, args...)}
}

func apiErr(err error, format string, args ...any) *Error {
	return &Error{Code: CodeToxiproxy, Message: fmt.Sprintf(format, args...), Err: err}
}

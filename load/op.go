package load

import (
	"context"
	"errors"
	"fmt"
	"net"
	"syscall"
)

// Func performs one request. seq is the request's sequence number in the run
// (0, 1, 2, ...), so an operation can derive deterministic, seeded choices
// from it without sharing a random source between goroutines.
type Func func(ctx context.Context, seq uint64) error

// Op is one pluggable operation of a workload.
type Op struct {
	// Name identifies the operation in results ("search", "insert", ...).
	Name string
	// Weight is the operation's share of the mix, relative to the other ops'
	// weights (70/20/10 and 0.7/0.2/0.1 mean the same).
	Weight float64
	// Do performs one request; a non-nil error counts the request as failed
	// under the error's code (see CodeOf).
	Do Func
}

// Simple adapts a plain func(ctx) error to an Op.
func Simple(name string, weight float64, do func(ctx context.Context) error) Op {
	return Op{Name: name, Weight: weight, Do: func(ctx context.Context, _ uint64) error { return do(ctx) }}
}

// Stable error codes assigned by CodeOf when an error carries no code itself.
const (
	CodeTimeout     = "timeout"
	CodeCanceled    = "canceled"
	CodeConnRefused = "conn_refused"
	CodeConnReset   = "conn_reset"
	CodeNetwork     = "network"
	CodeUnknown     = "error"
)

// Coded is implemented by errors that carry a stable, machine-readable code.
type Coded interface {
	error
	ErrorCode() string
}

type codedError struct {
	code string
	err  error
}

func (e *codedError) Error() string     { return fmt.Sprintf("%s: %v", e.code, e.err) }
func (e *codedError) Unwrap() error     { return e.err }
func (e *codedError) ErrorCode() string { return e.code }

// WithCode attaches a stable code to err. It returns nil for a nil err.
func WithCode(code string, err error) error {
	if err == nil {
		return nil
	}
	return &codedError{code: code, err: err}
}

// CodeOf returns the stable code of err: the code of the first Coded error in
// its chain, else a code for well-known conditions (timeouts, cancellation,
// refused or reset connections, other network errors), else CodeUnknown.
// It returns "" for a nil error.
func CodeOf(err error) string {
	if err == nil {
		return ""
	}
	var c Coded
	if errors.As(err, &c) && c.ErrorCode() != "" {
		return c.ErrorCode()
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return CodeTimeout
	case errors.Is(err, context.Canceled):
		return CodeCanceled
	case errors.Is(err, syscall.ECONNREFUSED):
		return CodeConnRefused
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return CodeConnReset
	}
	var ne net.Error
	if errors.As(err, &ne) {
		if ne.Timeout() {
			return CodeTimeout
		}
		return CodeNetwork
	}
	return CodeUnknown
}

package uploader

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"syscall"
	"time"
)

// Code is a stable, machine-readable error code. Codes never change meaning;
// callers (tierd's API, scenario checkers) may switch on them.
type Code string

// Error codes. Retryable codes are listed first; see Code.Retryable.
const (
	// CodeSlowDown: the store asked us to slow down (S3 503 SlowDown, 429).
	CodeSlowDown Code = "slow_down"
	// CodeInternal: the store failed internally (S3 500 InternalError).
	CodeInternal Code = "internal_error"
	// CodeBadGateway: a proxy in front of the store failed (HTTP 502).
	CodeBadGateway Code = "bad_gateway"
	// CodeUnavailable: the store is unavailable (HTTP 503 other than SlowDown).
	CodeUnavailable Code = "service_unavailable"
	// CodeGatewayTimeout: a proxy timed out waiting for the store (HTTP 504).
	CodeGatewayTimeout Code = "gateway_timeout"
	// CodeTimeout: the request timed out (client-side timeout, S3 RequestTimeout, HTTP 408).
	CodeTimeout Code = "timeout"
	// CodeConnection: the connection was reset, refused or closed mid-request.
	CodeConnection Code = "connection_error"
	// CodeTruncated: a request or response body ended early.
	CodeTruncated Code = "truncated"

	// CodeNotFound: the key or upload does not exist (HTTP 404).
	CodeNotFound Code = "not_found"
	// CodeNoSuchBucket: the bucket does not exist (S3 NoSuchBucket). It
	// says nothing about the object: the bucket was deleted or another
	// one is configured.
	CodeNoSuchBucket Code = "no_such_bucket"
	// CodeAccessDenied: the credentials may not do this (HTTP 403).
	CodeAccessDenied Code = "access_denied"
	// CodeBadRequest: the store rejected the request as malformed (HTTP 400 and other 4xx).
	CodeBadRequest Code = "bad_request"
	// CodeChecksumMismatch: data did not match its checksum (S3 BadDigest, or our own check on read).
	CodeChecksumMismatch Code = "checksum_mismatch"
	// CodeCanceled: the caller's context was cancelled.
	CodeCanceled Code = "canceled"
	// CodeInvalidArgument: the caller passed invalid input to this package.
	CodeInvalidArgument Code = "invalid_argument"
	// CodeInvalidConfig: a configuration value is invalid.
	CodeInvalidConfig Code = "invalid_config"
	// CodeClosed: the uploader was closed.
	CodeClosed Code = "closed"
	// CodeUnknown: an error this package cannot classify; treated as permanent.
	CodeUnknown Code = "unknown"
)

// Retryable reports whether an operation that failed with this code may
// succeed if repeated unchanged.
func (c Code) Retryable() bool {
	switch c {
	case CodeSlowDown, CodeInternal, CodeBadGateway, CodeUnavailable, CodeGatewayTimeout,
		CodeTimeout, CodeConnection, CodeTruncated:
		return true
	default:
		return false
	}
}

// Sentinel errors for errors.Is. A *StoreError matches the sentinel of its
// code (ErrNotFound for CodeNotFound, ...), and also ErrRetryable or
// ErrPermanent according to its class.
var (
	// ErrRetryable matches every error whose code is retryable.
	ErrRetryable = errors.New("uploader: retryable error")
	// ErrPermanent matches every classified error whose code is not retryable.
	ErrPermanent = errors.New("uploader: permanent error")
	// ErrNotFound matches a missing key or upload.
	ErrNotFound = errors.New("uploader: not found")
	// ErrNoSuchBucket matches a missing bucket.
	ErrNoSuchBucket = errors.New("uploader: no such bucket")
	// ErrSlowDown matches a store asking the client to slow down.
	ErrSlowDown = errors.New("uploader: slow down")
	// ErrAccessDenied matches a request the credentials may not make.
	ErrAccessDenied = errors.New("uploader: access denied")
	// ErrChecksumMismatch matches data that did not match its checksum.
	ErrChecksumMismatch = errors.New("uploader: checksum mismatch")
	// ErrTimeout matches a timed-out request.
	ErrTimeout = errors.New("uploader: timeout")
	// ErrInvalidArgument matches invalid caller input.
	ErrInvalidArgument = errors.New("uploader: invalid argument")
	// ErrClosed matches use of a closed uploader.
	ErrClosed = errors.New("uploader: closed")
)

var codeSentinels = map[Code]error{
	CodeNotFound:         ErrNotFound,
	CodeNoSuchBucket:     ErrNoSuchBucket,
	CodeSlowDown:         ErrSlowDown,
	CodeAccessDenied:     ErrAccessDenied,
	CodeChecksumMismatch: ErrChecksumMismatch,
	CodeTimeout:          ErrTimeout,
	CodeInvalidArgument:  ErrInvalidArgument,
	CodeClosed:           ErrClosed,
	CodeInvalidConfig:    ErrInvalidConfig,
}

// StoreError is the typed error returned by the object stores and the
// uploaders. Use errors.As to get at it, or errors.Is with the sentinels.
type StoreError struct {
	// Op is the operation that failed, e.g. "PutObject".
	Op string
	// Key is the object key involved, if any.
	Key string
	// Code classifies the error.
	Code Code
	// Status is the HTTP status code, when the error came from an HTTP response.
	Status int
	// RetryAfter is the delay the server asked for (Retry-After), or zero.
	RetryAfter time.Duration
	// Err is the underlying cause, if any.
	Err error
}

// Error implements error.
func (e *StoreError) Error() string {
	msg := fmt.Sprintf("%s %q: %s", e.Op, e.Key, e.Code)
	if e.Key == "" {
		msg = fmt.Sprintf("%s: %s", e.Op, e.Code)
	}
	if e.Status != 0 {
		msg += fmt.Sprintf(" (HTTP %d)", e.Status)
	}
	if e.RetryAfter > 0 {
		msg += fmt.Sprintf(" (retry after %s)", e.RetryAfter)
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Unwrap returns the underlying cause.
func (e *StoreError) Unwrap() error { return e.Err }

// Is matches the sentinel of e's code and ErrRetryable or ErrPermanent.
func (e *StoreError) Is(target error) bool {
	switch target {
	case ErrRetryable:
		return e.Code.Retryable()
	case ErrPermanent:
		return !e.Code.Retryable()
	}
	s, ok := codeSentinels[e.Code]
	return ok && s == target
}

// newError builds a *StoreError.
func newError(op, key string, code Code, err error) *StoreError {
	return &StoreError{Op: op, Key: key, Code: code, Err: err}
}

// invalidArg builds a CodeInvalidArgument error.
func invalidArg(op, key, format string, args ...any) *StoreError {
	return &StoreError{Op: op, Key: key, Code: CodeInvalidArgument, Err: fmt.Errorf(format, args...)}
}

// Classification is the result of Classify.
type Classification struct {
	// Code is the error's code; empty for a nil error.
	Code Code
	// Retryable reports whether repeating the operation may succeed.
	Retryable bool
	// RetryAfter is the server-requested delay, or zero.
	RetryAfter time.Duration
}

// Classify sorts err into retryable and permanent errors. It understands
// *StoreError (returned by this package's stores), context errors, network
// errors (timeouts, resets, refused connections), truncated bodies and
// minio-go's ErrorResponse. Unknown errors are permanent (CodeUnknown), so
// nothing is retried that is not known to be safe to retry.
//
// context.Canceled is permanent. context.DeadlineExceeded is classified as a
// timeout (retryable), because per-attempt deadlines raise it too; callers
// must check their own context before retrying.
func Classify(err error) Classification {
	if err == nil {
		return Classification{}
	}
	var se *StoreError
	if errors.As(err, &se) {
		return Classification{Code: se.Code, Retryable: se.Code.Retryable(), RetryAfter: se.RetryAfter}
	}
	code := classifyCode(err)
	return Classification{Code: code, Retryable: code.Retryable()}
}

// IsRetryable reports whether err is classified retryable.
func IsRetryable(err error) bool { return Classify(err).Retryable }

// CodeOf returns err's code (empty for nil).
func CodeOf(err error) Code { return Classify(err).Code }

func classifyCode(err error) Code {
	if code, ok := classifyS3Response(err); ok {
		return code
	}
	switch {
	case errors.Is(err, context.Canceled):
		return CodeCanceled
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, syscall.ETIMEDOUT):
		return CodeTimeout
	case errors.Is(err, io.ErrUnexpectedEOF):
		return CodeTruncated
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.ECONNREFUSED),
		errors.Is(err, syscall.ECONNABORTED), errors.Is(err, syscall.EPIPE),
		errors.Is(err, net.ErrClosed), errors.Is(err, io.EOF):
		return CodeConnection
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return CodeTimeout
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		// http.Client.Do failed below HTTP. Certificate and protocol
		// mismatches are configuration errors; everything else (resets,
		// connections closed by a proxy, EOF before the response) is a
		// connection failure.
		var certErr x509.UnknownAuthorityError
		var hostErr x509.HostnameError
		var invErr x509.CertificateInvalidError
		if errors.As(err, &certErr) || errors.As(err, &hostErr) || errors.As(err, &invErr) {
			return CodeBadRequest
		}
		return CodeConnection
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		// Dial and read/write failures on the connection (reset by a
		// proxy, refused while the server restarts).
		return CodeConnection
	}
	for _, s := range []error{ErrNotFound, ErrChecksumMismatch, ErrInvalidArgument, ErrAccessDenied, ErrClosed, ErrInvalidConfig} {
		if errors.Is(err, s) {
			for c, cs := range codeSentinels {
				if cs == s {
					return c
				}
			}
		}
	}
	return CodeUnknown
}

// codeForHTTP maps an S3 error code and HTTP status to a Code.
func codeForHTTP(s3Code string, status int) Code {
	switch s3Code {
	case "SlowDown", "SlowDownWrite", "SlowDownRead", "Throttling", "ThrottlingException",
		"RequestLimitExceeded", "RequestThrottled", "TooManyRequests":
		return CodeSlowDown
	case "InternalError":
		return CodeInternal
	case "RequestTimeout", "RequestTimeTooSkewed":
		return CodeTimeout
	case "IncompleteBody":
		return CodeTruncated
	case "NoSuchBucket":
		return CodeNoSuchBucket
	case "NoSuchKey", "NoSuchUpload", "NoSuchVersion":
		return CodeNotFound
	case "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "AllAccessDisabled":
		return CodeAccessDenied
	case "BadDigest", "InvalidDigest", "XAmzContentSHA256Mismatch", "XAmzContentChecksumMismatch":
		return CodeChecksumMismatch
	case "ServiceUnavailable":
		return CodeUnavailable
	}
	switch {
	case status == 429:
		return CodeSlowDown
	case status == 408:
		return CodeTimeout
	case status == 500:
		return CodeInternal
	case status == 502:
		return CodeBadGateway
	case status == 503:
		return CodeUnavailable
	case status == 504:
		return CodeGatewayTimeout
	case status == 501 || status == 505:
		return CodeBadRequest
	case status == 404:
		return CodeNotFound
	case status == 403:
		return CodeAccessDenied
	case status >= 500:
		return CodeInternal
	case status >= 400:
		return CodeBadRequest
	}
	return CodeUnknown
}

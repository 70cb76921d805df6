package api

import (
	"errors"
	"fmt"
	"net/http"
)

// Stable error codes. Every error answer carries exactly one of them.
const (
	// CodeInvalidArgument: malformed JSON, bad names, wrong dimension, NaN/Inf, k out of range (400).
	CodeInvalidArgument = "invalid_argument"
	// CodeNotFound: the collection or snapshot does not exist (404).
	CodeNotFound = "not_found"
	// CodeAlreadyExists: a collection with that name exists (409).
	CodeAlreadyExists = "already_exists"
	// CodeTransitionInProgress: another tier transition of the collection is running (409).
	CodeTransitionInProgress = "transition_in_progress"
	// CodePayloadTooLarge: the request body or batch exceeds a configured limit (413).
	CodePayloadTooLarge = "payload_too_large"
	// CodeQuotaExceeded: a quota (named in the message) would be exceeded (429).
	CodeQuotaExceeded = "quota_exceeded"
	// CodeStorageUnavailable: S3 could not be reached or failed within the deadline (503).
	CodeStorageUnavailable = "storage_unavailable"
	// CodeBucketNotFound: S3 answered that tierd's bucket does not exist (NoSuchBucket):
	// it was deleted or another one is configured; nothing was changed (503).
	CodeBucketNotFound = "bucket_not_found"
	// CodeInsufficientStorage: the local data volume is full (ENOSPC) (507).
	CodeInsufficientStorage = "insufficient_storage"
	// CodeDataCorrupted: a snapshot failed its size or checksum check; the message names it (500).
	CodeDataCorrupted = "data_corrupted"
	// CodeInternal: an unexpected server error (500).
	CodeInternal = "internal"
	// CodeUnimplemented: the operation is not implemented (501).
	CodeUnimplemented = "unimplemented"
	// CodeUnauthenticated: the route requires a bearer token and the request
	// has none or another one (401, with WWW-Authenticate: Bearer).
	CodeUnauthenticated = "unauthenticated"
	// CodeMethodNotAllowed: the path exists but not with this method (405,
	// with Allow).
	CodeMethodNotAllowed = "method_not_allowed"
	// CodeUnsupportedMediaType: a request body that is not declared
	// Content-Type: application/json (415).
	CodeUnsupportedMediaType = "unsupported_media_type"
	// CodeOverloaded: too many API requests in flight; retry after the
	// Retry-After seconds (503).
	CodeOverloaded = "overloaded"
)

// Codes lists every error code, in the order of the constants.
func Codes() []string {
	return []string{
		CodeInvalidArgument, CodeNotFound, CodeAlreadyExists, CodeTransitionInProgress,
		CodePayloadTooLarge, CodeQuotaExceeded, CodeStorageUnavailable, CodeBucketNotFound,
		CodeInsufficientStorage, CodeDataCorrupted, CodeInternal, CodeUnimplemented,
		CodeUnauthenticated, CodeMethodNotAllowed, CodeUnsupportedMediaType, CodeOverloaded,
	}
}

// HTTPStatus returns the HTTP status code of an error code.
func HTTPStatus(code string) int {
	switch code {
	case CodeInvalidArgument:
		return http.StatusBadRequest
	case CodeNotFound:
		return http.StatusNotFound
	case CodeAlreadyExists, CodeTransitionInProgress:
		return http.StatusConflict
	case CodePayloadTooLarge:
		return http.StatusRequestEntityTooLarge
	case CodeQuotaExceeded:
		return http.StatusTooManyRequests
	case CodeStorageUnavailable, CodeBucketNotFound, CodeOverloaded:
		return http.StatusServiceUnavailable
	case CodeUnauthenticated:
		return http.StatusUnauthorized
	case CodeMethodNotAllowed:
		return http.StatusMethodNotAllowed
	case CodeUnsupportedMediaType:
		return http.StatusUnsupportedMediaType
	case CodeInsufficientStorage:
		return http.StatusInsufficientStorage
	case CodeUnimplemented:
		return http.StatusNotImplemented
	default:
		return http.StatusInternalServerError
	}
}

// Error is an error with a stable code. Server packages return it (wrapped
// or not) and the HTTP layer turns it into an error body.
type Error struct {
	Code    string
	Message string
	// Err is the underlying cause, if any.
	Err error
}

// Error implements error.
func (e *Error) Error() string {
	if e.Message == "" && e.Err != nil {
		return e.Code + ": " + e.Err.Error()
	}
	return e.Code + ": " + e.Message
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Errorf builds an *Error with a formatted message. A %w verb in format sets Err.
func Errorf(code, format string, args ...any) *Error {
	err := fmt.Errorf(format, args...)
	return &Error{Code: code, Message: err.Error(), Err: errors.Unwrap(err)}
}

// CodeOf returns the code of the first *Error in err's chain, or CodeInternal.
func CodeOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}

// MessageOf returns the message to show for err: the *Error message if
// there is one, else err.Error().
func MessageOf(err error) string {
	var e *Error
	if errors.As(err, &e) && e.Message != "" {
		return e.Message
	}
	return err.Error()
}

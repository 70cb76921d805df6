package uploader

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestClassify(t *testing.T) {
	tests := []struct {
		name      string
		err       error
		code      Code
		retryable bool
	}{
		{"nil", nil, "", false},
		{"slowdown", minio.ErrorResponse{Code: "SlowDown", StatusCode: 503}, CodeSlowDown, true},
		{"503 no code", minio.ErrorResponse{StatusCode: 503}, CodeUnavailable, true},
		{"500", minio.ErrorResponse{Code: "InternalError", StatusCode: 500}, CodeInternal, true},
		{"502", minio.ErrorResponse{StatusCode: 502}, CodeBadGateway, true},
		{"504", minio.ErrorResponse{StatusCode: 504}, CodeGatewayTimeout, true},
		{"429", minio.ErrorResponse{StatusCode: 429}, CodeSlowDown, true},
		{"request timeout", minio.ErrorResponse{Code: "RequestTimeout", StatusCode: 400}, CodeTimeout, true},
		{"403", minio.ErrorResponse{Code: "AccessDenied", StatusCode: 403}, CodeAccessDenied, false},
		{"404 key", minio.ErrorResponse{Code: "NoSuchKey", StatusCode: 404}, CodeNotFound, false},
		{"404 upload", minio.ErrorResponse{Code: "NoSuchUpload", StatusCode: 404}, CodeNotFound, false},
		{"400", minio.ErrorResponse{Code: "InvalidArgument", StatusCode: 400}, CodeBadRequest, false},
		{"bad digest", minio.ErrorResponse{Code: "BadDigest", StatusCode: 400}, CodeChecksumMismatch, false},
		{"501", minio.ErrorResponse{StatusCode: 501}, CodeBadRequest, false},
		{"wrapped minio", fmt.Errorf("ctx: %w", minio.ErrorResponse{Code: "SlowDown", StatusCode: 503}), CodeSlowDown, true},
		{"canceled", context.Canceled, CodeCanceled, false},
		{"wrapped canceled", fmt.Errorf("x: %w", context.Canceled), CodeCanceled, false},
		{"deadline", context.DeadlineExceeded, CodeTimeout, true},
		{"os deadline", os.ErrDeadlineExceeded, CodeTimeout, true},
		{"reset", &net.OpError{Op: "read", Err: &os.SyscallError{Syscall: "read", Err: syscall.ECONNRESET}}, CodeConnection, true},
		{"refused", &net.OpError{Op: "dial", Err: &os.SyscallError{Syscall: "connect", Err: syscall.ECONNREFUSED}}, CodeConnection, true},
		{"pipe", syscall.EPIPE, CodeConnection, true},
		{"url error eof", &url.Error{Op: "Put", URL: "http://x", Err: errors.New("Connection closed by foreign host")}, CodeConnection, true},
		{"truncated", fmt.Errorf("read body: %w", io.ErrUnexpectedEOF), CodeTruncated, true},
		{"store error", &StoreError{Op: "PutObject", Code: CodeSlowDown, RetryAfter: time.Second}, CodeSlowDown, true},
		{"config", &ConfigError{Field: "f", Reason: "r"}, CodeInvalidConfig, false},
		{"unknown", errors.New("boom"), CodeUnknown, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := Classify(tc.err)
			assert.Equal(t, tc.code, c.Code)
			assert.Equal(t, tc.retryable, c.Retryable)
			assert.Equal(t, tc.retryable, IsRetryable(tc.err))
		})
	}
}

func TestStoreErrorIs(t *testing.T) {
	inner := errors.New("cause")
	err := fmt.Errorf("wrapped: %w", &StoreError{Op: "GetObject", Key: "k", Code: CodeNotFound, Status: 404, Err: inner})
	assert.ErrorIs(t, err, ErrNotFound)
	assert.ErrorIs(t, err, ErrPermanent)
	assert.NotErrorIs(t, err, ErrRetryable)
	assert.ErrorIs(t, err, inner)
	assert.NotErrorIs(t, err, ErrSlowDown)

	slow := &StoreError{Op: "PutObject", Code: CodeSlowDown, RetryAfter: 2 * time.Second}
	assert.ErrorIs(t, slow, ErrSlowDown)
	assert.ErrorIs(t, slow, ErrRetryable)
	assert.Equal(t, 2*time.Second, Classify(fmt.Errorf("x: %w", slow)).RetryAfter)
	assert.Contains(t, slow.Error(), "slow_down")
	assert.Contains(t, slow.Error(), "retry after 2s")
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"3", 3 * time.Second, true},
		{"0.5", 500 * time.Millisecond, true},
		{"", 0, false},
		{"-1", 0, false},
		{"soon", 0, false},
		{now.Add(7 * time.Second).Format(http.TimeFormat), 7 * time.Second, true},
		{now.Add(-7 * time.Second).Format(http.TimeFormat), 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			d, ok := parseRetryAfter(tc.in, now)
			require.Equal(t, tc.ok, ok)
			assert.Equal(t, tc.want, d)
		})
	}
}

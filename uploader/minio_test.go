package uploader

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeS3 answers every request with one canned S3 error and counts requests.
func fakeS3(t *testing.T, status int, code string, retryAfter string) (*MinIOStore, *atomic.Int64) {
	t.Helper()
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		if retryAfter != "" {
			w.Header().Set("Retry-After", retryAfter)
		}
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(status)
		if r.Method != http.MethodHead {
			_, _ = w.Write([]byte(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>` + code +
				`</Code><Message>injected</Message><Resource>/bkt/k</Resource><RequestId>1</RequestId></Error>`))
		}
	}))
	t.Cleanup(srv.Close)
	s, err := NewMinIOStore(MinIOConfig{
		Endpoint: strings.TrimPrefix(srv.URL, "http://"), AccessKey: "a", SecretKey: "s", Bucket: "bkt",
		Pool: PoolConfig{DialTimeout: time.Second, ResponseHeaderTimeout: 5 * time.Second},
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s, &n
}

func TestMinIOStoreErrorsAreNotRetriedByMinioGo(t *testing.T) {
	tests := []struct {
		name       string
		status     int
		code       string
		retryAfter string
		want       Code
		wantAfter  time.Duration
	}{
		{"slowdown with retry-after", 503, "SlowDown", "2", CodeSlowDown, 2 * time.Second},
		{"internal error", 500, "InternalError", "", CodeInternal, 0},
		{"access denied", 403, "AccessDenied", "", CodeAccessDenied, 0},
		{"no such key", 404, "NoSuchKey", "", CodeNotFound, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, n := fakeS3(t, tc.status, tc.code, tc.retryAfter)
			_, err := s.PutObject(context.Background(), "k", strings.NewReader("data"), 4, PutOptions{})
			require.Error(t, err)
			c := Classify(err)
			assert.Equal(t, tc.want, c.Code)
			assert.Equal(t, tc.wantAfter, c.RetryAfter)
			var se *StoreError
			require.ErrorAs(t, err, &se)
			assert.Equal(t, tc.status, se.Status)
			assert.Equal(t, int64(1), n.Load(), "minio-go must not retry on its own")
		})
	}
}

func TestMinIOStoreStatNotFound(t *testing.T) {
	s, n := fakeS3(t, 404, "NoSuchKey", "")
	_, err := s.StatObject(context.Background(), "missing")
	require.ErrorIs(t, err, ErrNotFound)
	assert.Equal(t, int64(1), n.Load())
}

func TestMinIOStoreConnectionRefusedIsRetryable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	addr := strings.TrimPrefix(srv.URL, "http://")
	srv.Close() // nothing listens there any more
	s, err := NewMinIOStore(MinIOConfig{Endpoint: addr, Bucket: "bkt", Pool: PoolConfig{DialTimeout: time.Second}})
	require.NoError(t, err)
	_, err = s.PutObject(context.Background(), "k", strings.NewReader("x"), 1, PutOptions{})
	require.Error(t, err)
	assert.Equal(t, CodeConnection, CodeOf(err))
	assert.True(t, IsRetryable(err))
}

func TestNewMinIOStoreValidation(t *testing.T) {
	tests := []struct {
		name string
		cfg  MinIOConfig
	}{
		{"no endpoint", MinIOConfig{Bucket: "bkt"}},
		{"scheme", MinIOConfig{Endpoint: "http://localhost:9000", Bucket: "bkt"}},
		{"no bucket", MinIOConfig{Endpoint: "localhost:9000"}},
		{"bad bucket", MinIOConfig{Endpoint: "localhost:9000", Bucket: "B_"}},
		{"bad pool", MinIOConfig{Endpoint: "localhost:9000", Bucket: "bkt", Pool: PoolConfig{MaxIdleConns: -1}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewMinIOStore(tc.cfg)
			require.Error(t, err)
			assert.ErrorIs(t, err, ErrInvalidConfig)
			assert.Equal(t, CodeInvalidConfig, CodeOf(err))
		})
	}
}

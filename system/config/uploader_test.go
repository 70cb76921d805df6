package config

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tierchaos/tierchaos/uploader"
)

func TestBatchPoolRetryDefaults(t *testing.T) {
	d := Default()
	require.Equal(t, Batch{Enabled: true, MaxItems: uploader.DefaultBatchSize, MaxBytes: uploader.DefaultBatchMaxBytes,
		MaxAge: Duration(uploader.DefaultBatchFlushInterval), SizeThreshold: 1 << 20}, d.Batch)
	require.Equal(t, Pool{IdleConns: uploader.DefaultPoolSize, IdleTimeout: Duration(uploader.DefaultIdleTimeout),
		DialTimeout: Duration(uploader.DefaultDialTimeout), ResponseHeaderTimeout: Duration(uploader.DefaultResponseHeaderTimeout)}, d.Pool)
	require.Equal(t, Retry{Base: Duration(50 * time.Millisecond), Cap: Duration(2 * time.Second)}, d.Retry)
	require.Equal(t, 4, d.RetryAttempts(), "max_attempts 0 takes 1 + s3.max_retries")

	u := d.Uploader()
	require.NoError(t, u.Validate(), "the defaults make a valid uploader configuration")
	require.Equal(t, uploader.BatchConfig{Enabled: true, Size: 10, MaxBytes: 8 << 20, FlushInterval: 5 * time.Second}, u.Batch)
	require.Equal(t, uploader.DefaultPoolConfig(), u.Pool)
	require.Equal(t, 3, u.Parallel.MaxRetries)
	require.Equal(t, 50*time.Millisecond, u.Parallel.BackoffBase)
	require.Equal(t, 2*time.Second, u.Parallel.BackoffCap)
	require.Equal(t, d.S3.Concurrency, u.Parallel.Concurrency)
	require.Equal(t, d.S3.PartSize, u.Parallel.PartSize)
	require.True(t, u.Parallel.ContentMD5)
}

func TestRetryAttempts(t *testing.T) {
	cases := []struct {
		name        string
		maxAttempts int
		maxRetries  int
		want        int
	}{
		{"derived from s3.max_retries", 0, 5, 6},
		{"explicit wins", 2, 5, 2},
		{"no retries", 0, 0, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := Default()
			c.Retry.MaxAttempts, c.S3.MaxRetries = tc.maxAttempts, tc.maxRetries
			require.Equal(t, tc.want, c.RetryAttempts())
			require.Equal(t, tc.want-1, c.Uploader().Parallel.MaxRetries)
		})
	}
}

func TestValidateBatchPoolRetry(t *testing.T) {
	cases := []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"one member per pack", func(c *Config) { c.Batch.MaxItems = 1 }, "batch.max_items must be 2..100000"},
		{"too many members", func(c *Config) { c.Batch.MaxItems = 100001 }, "batch.max_items"},
		{"zero max bytes", func(c *Config) { c.Batch.MaxBytes = 0 }, "batch.max_bytes"},
		{"max bytes over S3's part limit", func(c *Config) { c.Batch.MaxBytes = 6 << 30 }, "batch.max_bytes"},
		{"zero max age", func(c *Config) { c.Batch.MaxAge = 0 }, "batch.max_age must be positive"},
		{"zero threshold", func(c *Config) { c.Batch.SizeThreshold = 0 }, "batch.size_threshold"},
		{"threshold above max bytes", func(c *Config) { c.Batch.SizeThreshold = c.Batch.MaxBytes + 1 }, "batch.size_threshold must be 1..batch.max_bytes"},
		{"no idle connections", func(c *Config) { c.Pool.IdleConns = 0 }, "pool.idle_conns"},
		{"zero idle timeout", func(c *Config) { c.Pool.IdleTimeout = 0 }, "pool.idle_timeout must be positive"},
		{"negative dial timeout", func(c *Config) { c.Pool.DialTimeout = Duration(-time.Second) }, "pool.dial_timeout"},
		{"zero header timeout", func(c *Config) { c.Pool.ResponseHeaderTimeout = 0 }, "pool.response_header_timeout"},
		{"negative attempts", func(c *Config) { c.Retry.MaxAttempts = -1 }, "retry.max_attempts"},
		{"too many attempts", func(c *Config) { c.Retry.MaxAttempts = 22 }, "retry.max_attempts"},
		{"zero base", func(c *Config) { c.Retry.Base = 0 }, "retry.base must be positive"},
		{"cap below base", func(c *Config) { c.Retry.Cap = Duration(time.Millisecond) }, "retry.cap must be at least retry.base"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := Default()
			tc.mod(&c)
			err := c.Validate()
			require.ErrorContains(t, err, tc.want)
			require.ErrorIs(t, err, ErrInvalid, "config errors keep their class")
		})
	}
}

func TestValidateListsEveryBadSection(t *testing.T) {
	c := Default()
	c.Batch.MaxItems, c.Pool.IdleConns, c.Retry.Base = 0, 0, 0
	err := c.Validate()
	for _, want := range []string{"batch.max_items", "pool.idle_conns", "retry.base"} {
		require.ErrorContains(t, err, want)
	}
}

func TestBatchPoolRetryFromEnv(t *testing.T) {
	env := map[string]string{
		"TIERD_BATCH_ENABLED":                "false",
		"TIERD_BATCH_MAX_ITEMS":              "100",
		"TIERD_BATCH_MAX_BYTES":              "16MiB",
		"TIERD_BATCH_MAX_AGE":                "250ms",
		"TIERD_BATCH_SIZE_THRESHOLD":         "64KiB",
		"TIERD_POOL_IDLE_CONNS":              "7",
		"TIERD_POOL_IDLE_TIMEOUT":            "30s",
		"TIERD_POOL_DIAL_TIMEOUT":            "2s",
		"TIERD_POOL_RESPONSE_HEADER_TIMEOUT": "9s",
		"TIERD_RETRY_MAX_ATTEMPTS":           "6",
		"TIERD_RETRY_BASE":                   "10ms",
		"TIERD_RETRY_CAP":                    "1s",
	}
	cfg, err := FromEnv(Default(), func(k string) string { return env[k] })
	require.NoError(t, err)
	require.NoError(t, cfg.Validate())
	require.Equal(t, Batch{Enabled: false, MaxItems: 100, MaxBytes: 16 << 20, MaxAge: Duration(250 * time.Millisecond), SizeThreshold: 64 << 10}, cfg.Batch)
	require.Equal(t, Pool{IdleConns: 7, IdleTimeout: Duration(30 * time.Second), DialTimeout: Duration(2 * time.Second),
		ResponseHeaderTimeout: Duration(9 * time.Second)}, cfg.Pool)
	require.Equal(t, Retry{MaxAttempts: 6, Base: Duration(10 * time.Millisecond), Cap: Duration(time.Second)}, cfg.Retry)

	_, err = FromEnv(Default(), func(k string) string {
		if k == "TIERD_BATCH_MAX_AGE" {
			return "soon"
		}
		return ""
	})
	require.ErrorContains(t, err, "TIERD_BATCH_MAX_AGE")
	require.ErrorIs(t, err, ErrInvalid)
}

func TestPrintedConfigShowsTheNewSections(t *testing.T) {
	y, err := Default().YAML()
	require.NoError(t, err)
	for _, want := range []string{"batch:\n", "    max_items: 10\n", "    size_threshold: 1048576\n", "pool:\n", "    idle_conns: 20\n",
		"retry:\n", "    max_attempts: 0\n", "    cap: 2s\n"} {
		require.Contains(t, y, want)
	}
}

package uploader

import (
	"errors"
	"fmt"
	"time"
)

// Default values, mirroring the seed's configuration where it had one.
const (
	DefaultPoolSize              = 20
	DefaultIdleTimeout           = 90 * time.Second
	DefaultDialTimeout           = 5 * time.Second
	DefaultResponseHeaderTimeout = 30 * time.Second

	DefaultBatchSize          = 10
	DefaultBatchMaxBytes      = 8 << 20
	DefaultBatchFlushInterval = 5 * time.Second

	DefaultConcurrency        = 10
	DefaultMaxRetries         = 3
	DefaultBackoffBase        = 100 * time.Millisecond
	DefaultBackoffCap         = 5 * time.Second
	DefaultMaxRetryAfter      = 30 * time.Second
	DefaultPartSize           = 8 << 20
	DefaultMultipartThreshold = 16 << 20
	DefaultRetryBudgetRatio   = 0.5
	DefaultRetryBudgetMin     = 20
	DefaultAbortTimeout       = 30 * time.Second

	// MinPartSize is S3's minimum size of every part but the last.
	MinPartSize = 5 << 20
	// MaxPartSize is S3's maximum part size.
	MaxPartSize = 5 << 30
)

// ConfigError reports an invalid configuration value. It matches
// errors.Is(err, ErrInvalidConfig) and has code CodeInvalidConfig in Classify.
type ConfigError struct {
	// Field is the configuration field, e.g. "parallel.concurrency".
	Field string
	// Reason says what is wrong with it.
	Reason string
}

// ErrInvalidConfig matches every *ConfigError.
var ErrInvalidConfig = errors.New("uploader: invalid config")

// Error implements error.
func (e *ConfigError) Error() string {
	return fmt.Sprintf("%s: invalid config %s: %s", CodeInvalidConfig, e.Field, e.Reason)
}

// Is makes errors.Is(err, ErrInvalidConfig) true.
func (e *ConfigError) Is(target error) bool { return target == ErrInvalidConfig }

// PoolConfig tunes the HTTP connection pool of a MinIOStore (the seed's
// connection-pool settings). Zero fields take defaults.
type PoolConfig struct {
	// MaxIdleConns is the number of idle keep-alive connections kept to the
	// S3 host (the seed's pool_size). Keep it at or above the upload
	// concurrency, or connections are closed and re-dialled under load.
	MaxIdleConns int `yaml:"pool_size" json:"pool_size"`
	// IdleTimeout closes idle connections after this long.
	IdleTimeout time.Duration `yaml:"idle_timeout" json:"idle_timeout"`
	// DialTimeout bounds TCP connect (and TLS handshake).
	DialTimeout time.Duration `yaml:"dial_timeout" json:"dial_timeout"`
	// ResponseHeaderTimeout bounds the wait for response headers after the
	// request was written.
	ResponseHeaderTimeout time.Duration `yaml:"response_header_timeout" json:"response_header_timeout"`
}

// DefaultPoolConfig returns the defaults: 20 connections, 90 s idle.
func DefaultPoolConfig() PoolConfig {
	return PoolConfig{
		MaxIdleConns:          DefaultPoolSize,
		IdleTimeout:           DefaultIdleTimeout,
		DialTimeout:           DefaultDialTimeout,
		ResponseHeaderTimeout: DefaultResponseHeaderTimeout,
	}
}

func (p PoolConfig) withDefaults() PoolConfig {
	d := DefaultPoolConfig()
	if p.MaxIdleConns == 0 {
		p.MaxIdleConns = d.MaxIdleConns
	}
	if p.IdleTimeout == 0 {
		p.IdleTimeout = d.IdleTimeout
	}
	if p.DialTimeout == 0 {
		p.DialTimeout = d.DialTimeout
	}
	if p.ResponseHeaderTimeout == 0 {
		p.ResponseHeaderTimeout = d.ResponseHeaderTimeout
	}
	return p
}

// Validate checks the pool settings (after defaults are applied).
func (p PoolConfig) Validate() error {
	switch {
	case p.MaxIdleConns < 1 || p.MaxIdleConns > 10000:
		return &ConfigError{Field: "pool.pool_size", Reason: fmt.Sprintf("%d is outside 1..10000", p.MaxIdleConns)}
	case p.IdleTimeout < 0:
		return &ConfigError{Field: "pool.idle_timeout", Reason: "must not be negative"}
	case p.DialTimeout < 0:
		return &ConfigError{Field: "pool.dial_timeout", Reason: "must not be negative"}
	case p.ResponseHeaderTimeout < 0:
		return &ConfigError{Field: "pool.response_header_timeout", Reason: "must not be negative"}
	}
	return nil
}

// Config is the uploader configuration as tierd reads it (the seed's batch,
// parallel and connection-pool settings). Start from DefaultConfig and
// override; Validate reports every invalid field.
type Config struct {
	// Batch configures the BatchUploader.
	Batch BatchConfig `yaml:"batch" json:"batch"`
	// Parallel configures the ParallelUploader.
	Parallel ParallelConfig `yaml:"parallel" json:"parallel"`
	// Pool configures the MinIOStore's HTTP connection pool.
	Pool PoolConfig `yaml:"pool" json:"pool"`
}

// BatchConfig configures a BatchUploader.
type BatchConfig struct {
	// Enabled packs small snapshots into batch objects; when false every
	// Add is uploaded as its own object (one PUT per snapshot).
	Enabled bool `yaml:"enabled" json:"enabled"`
	// Size flushes a prefix's batch when it holds this many members (the
	// seed's batch_size).
	Size int `yaml:"batch_size" json:"batch_size"`
	// MaxBytes flushes a prefix's batch when its members reach this many bytes.
	MaxBytes int64 `yaml:"max_bytes" json:"max_bytes"`
	// FlushInterval flushes a batch whose oldest member waited this long.
	FlushInterval time.Duration `yaml:"flush_interval" json:"flush_interval"`
}

// ParallelConfig configures a ParallelUploader.
type ParallelConfig struct {
	// Enabled uploads with Concurrency requests in flight; when false,
	// uploads are sequential (concurrency 1).
	Enabled bool `yaml:"enabled" json:"enabled"`
	// Concurrency bounds the requests in flight (PUTs and parts).
	Concurrency int `yaml:"concurrency" json:"concurrency"`
	// MaxRetries is the retries per request after the first attempt.
	MaxRetries int `yaml:"max_retries" json:"max_retries"`
	// BackoffBase is the first retry's backoff ceiling; it doubles per retry.
	BackoffBase time.Duration `yaml:"backoff_base" json:"backoff_base"`
	// BackoffCap caps the backoff ceiling. The actual wait is drawn
	// uniformly from [0, ceiling] (full jitter).
	BackoffCap time.Duration `yaml:"backoff_cap" json:"backoff_cap"`
	// MaxRetryAfter caps how long a server's Retry-After is honoured.
	MaxRetryAfter time.Duration `yaml:"max_retry_after" json:"max_retry_after"`
	// RetryBudgetRatio and RetryBudgetMin bound the retries of one
	// UploadAll call to RetryBudgetMin + RetryBudgetRatio x (requests made),
	// so that a failing store is not hammered by every item's retries.
	RetryBudgetRatio float64 `yaml:"retry_budget_ratio" json:"retry_budget_ratio"`
	// RetryBudgetMin is the part of the budget that does not depend on the
	// number of requests (see RetryBudgetRatio).
	RetryBudgetMin int `yaml:"retry_budget_min" json:"retry_budget_min"`
	// PartSize is the multipart part size.
	PartSize int64 `yaml:"part_size" json:"part_size"`
	// MultipartThreshold: objects larger than this are uploaded as
	// parallel parts of PartSize; smaller ones with one PUT. It must be at
	// least PartSize, so that every multipart upload has two or more parts.
	MultipartThreshold int64 `yaml:"multipart_threshold" json:"multipart_threshold"`
	// AttemptTimeout bounds each request attempt; 0 means no bound beyond
	// the caller's context and the transport timeouts.
	AttemptTimeout time.Duration `yaml:"attempt_timeout" json:"attempt_timeout"`
	// AbortTimeout bounds the cleanup (AbortMultipart) after a failure or
	// cancellation, which runs even when the caller's context is done.
	AbortTimeout time.Duration `yaml:"abort_timeout" json:"abort_timeout"`
	// ContentMD5 sends the MD5 of every request body (the object of a
	// single PUT, each part of a multipart upload) as Content-MD5, so that
	// the store refuses bytes changed on the way (BadDigest) instead of
	// storing them. It costs one MD5 pass over the data.
	ContentMD5 bool `yaml:"content_md5" json:"content_md5"`
}

// DefaultConfig returns the defaults: batching on (10 members, 8 MiB, 5 s),
// parallel on (concurrency 10, 3 retries, 100 ms base backoff capped at 5 s),
// objects over 16 MiB in 8 MiB parts, pool of 20 connections with 90 s idle timeout.
func DefaultConfig() Config {
	return Config{Batch: DefaultBatchConfig(), Parallel: DefaultParallelConfig(), Pool: DefaultPoolConfig()}
}

// DefaultBatchConfig returns the batch defaults.
func DefaultBatchConfig() BatchConfig {
	return BatchConfig{Enabled: true, Size: DefaultBatchSize, MaxBytes: DefaultBatchMaxBytes, FlushInterval: DefaultBatchFlushInterval}
}

// DefaultParallelConfig returns the parallel defaults.
func DefaultParallelConfig() ParallelConfig {
	return ParallelConfig{
		Enabled:            true,
		Concurrency:        DefaultConcurrency,
		MaxRetries:         DefaultMaxRetries,
		BackoffBase:        DefaultBackoffBase,
		BackoffCap:         DefaultBackoffCap,
		MaxRetryAfter:      DefaultMaxRetryAfter,
		RetryBudgetRatio:   DefaultRetryBudgetRatio,
		RetryBudgetMin:     DefaultRetryBudgetMin,
		PartSize:           DefaultPartSize,
		MultipartThreshold: DefaultMultipartThreshold,
		AbortTimeout:       DefaultAbortTimeout,
	}
}

// Validate reports every invalid field (errors.Join of *ConfigError).
func (c Config) Validate() error {
	return errors.Join(c.Batch.Validate(), c.Parallel.Validate(), c.Pool.Validate())
}

// Validate reports every invalid field (errors.Join of *ConfigError).
func (c BatchConfig) Validate() error {
	var errs []error
	if c.Size < 1 || c.Size > 100000 {
		errs = append(errs, &ConfigError{Field: "batch.batch_size", Reason: fmt.Sprintf("%d is outside 1..100000", c.Size)})
	}
	if c.MaxBytes < 1 || c.MaxBytes > MaxPartSize {
		errs = append(errs, &ConfigError{Field: "batch.max_bytes", Reason: fmt.Sprintf("%d is outside 1..%d", c.MaxBytes, int64(MaxPartSize))})
	}
	if c.FlushInterval <= 0 {
		errs = append(errs, &ConfigError{Field: "batch.flush_interval", Reason: "must be positive"})
	}
	return errors.Join(errs...)
}

// Validate reports every invalid field (errors.Join of *ConfigError).
func (c ParallelConfig) Validate() error {
	var errs []error
	bad := func(field, reason string, args ...any) {
		errs = append(errs, &ConfigError{Field: "parallel." + field, Reason: fmt.Sprintf(reason, args...)})
	}
	if c.Concurrency < 1 || c.Concurrency > 4096 {
		bad("concurrency", "%d is outside 1..4096", c.Concurrency)
	}
	if c.MaxRetries < 0 || c.MaxRetries > 100 {
		bad("max_retries", "%d is outside 0..100", c.MaxRetries)
	}
	if c.BackoffBase <= 0 {
		bad("backoff_base", "must be positive")
	}
	if c.BackoffCap < c.BackoffBase {
		bad("backoff_cap", "%s is below backoff_base %s", c.BackoffCap, c.BackoffBase)
	}
	if c.MaxRetryAfter < 0 {
		bad("max_retry_after", "must not be negative")
	}
	if c.RetryBudgetRatio < 0 || c.RetryBudgetRatio > 100 {
		bad("retry_budget_ratio", "%v is outside 0..100", c.RetryBudgetRatio)
	}
	if c.RetryBudgetMin < 0 {
		bad("retry_budget_min", "must not be negative")
	}
	if c.PartSize < MinPartSize || c.PartSize > MaxPartSize {
		bad("part_size", "%d is outside S3's %d..%d", c.PartSize, int64(MinPartSize), int64(MaxPartSize))
	}
	if c.MultipartThreshold < c.PartSize {
		bad("multipart_threshold", "%d is below part_size %d", c.MultipartThreshold, c.PartSize)
	}
	if c.AttemptTimeout < 0 {
		bad("attempt_timeout", "must not be negative")
	}
	if c.AbortTimeout <= 0 {
		bad("abort_timeout", "must be positive")
	}
	return errors.Join(errs...)
}

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

	DefaultConcurrency      = 10
	DefaultMaxRetries       = 3
	DefaultBackoffBase      = 100 * time.Millisecond
	DefaultBackoffCap       = 5 * time.Second
	DefaultMaxRetryAfter    = 30 * time.Second
	DefaultPartSize         = 8 << 20
	DefaultRetryBudgetRatio = 0.5
	DefaultRetryBudgetMin   = 20
	DefaultAbortTimeout     = 30 * time.Second

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

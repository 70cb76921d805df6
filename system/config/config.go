// Package config holds tierd's configuration: defaults, a YAML file,
// environment variables (which override the file), and validation with
// clear messages.
package config

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Duration is a time.Duration that reads and writes as "10s" in YAML.
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// MarshalYAML writes d as a duration string.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// UnmarshalYAML reads a duration string such as "250ms" or "10s".
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*d = Duration(v)
	return nil
}

// S3 configures the object store of the cold tier.
type S3 struct {
	// Endpoint is host:port of the S3 service; empty disables the cold tier.
	Endpoint  string `yaml:"endpoint"`
	AccessKey string `yaml:"access_key"`
	SecretKey string `yaml:"secret_key"`
	Bucket    string `yaml:"bucket"`
	// Prefix is prepended to every key (e.g. "tierd/").
	Prefix string `yaml:"prefix"`
	UseSSL bool   `yaml:"use_ssl"`
	// OpTimeout is the deadline of one S3 operation (one PUT, GET, part...).
	OpTimeout Duration `yaml:"op_timeout"`
	// StartupTimeout bounds how long start-up keeps retrying to ensure the bucket.
	StartupTimeout Duration `yaml:"startup_timeout"`
	// PartSize is the multipart part size; snapshots larger than it are
	// uploaded in parts.
	PartSize int64 `yaml:"part_size"`
	// Concurrency is the number of parts uploaded in parallel.
	Concurrency int `yaml:"concurrency"`
	// MaxRetries is the number of retries of a retryable S3 error.
	MaxRetries int `yaml:"max_retries"`
	// VerifyReadback makes a cold demotion read the object back and check
	// its checksum before flipping the manifest (otherwise size and
	// metadata checksum are checked with a HEAD).
	VerifyReadback bool `yaml:"verify_readback"`
}

// Limits bound single requests.
type Limits struct {
	// MaxBodyBytes is the largest accepted request body (413 beyond).
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// MaxVectorsPerInsert is the largest accepted insert batch (413 beyond).
	MaxVectorsPerInsert int `yaml:"max_vectors_per_insert"`
	// MaxDimension is the largest accepted collection dimension (400 beyond).
	MaxDimension int `yaml:"max_dimension"`
}

// Quotas bound the whole store; 0 means unlimited.
type Quotas struct {
	// HotBytes bounds the memory of hot collections (vector values + ids).
	HotBytes int64 `yaml:"hot_bytes"`
	// WarmBytes bounds the Parquet bytes on the local data volume.
	WarmBytes int64 `yaml:"warm_bytes"`
	// Collections bounds the number of collections.
	Collections int `yaml:"collections"`
}

// Worker configures the background worker.
type Worker struct {
	// Interval between cycles.
	Interval Duration `yaml:"interval"`
	// HotIdle is the idle time after which a hot collection becomes warm (0: never).
	HotIdle Duration `yaml:"hot_idle"`
	// WarmIdle is the idle time after which a warm collection becomes cold (0: never).
	WarmIdle Duration `yaml:"warm_idle"`
	// Paused starts the worker paused.
	Paused bool `yaml:"paused"`
	// CheckpointBytes: a hot collection with more WAL bytes than this since
	// its last snapshot is checkpointed to a local snapshot by the worker.
	CheckpointBytes int64 `yaml:"checkpoint_bytes"`
}

// WAL configures the write-ahead log.
type WAL struct {
	// SegmentBytes is the size after which a new segment is started.
	SegmentBytes int64 `yaml:"segment_bytes"`
	// GroupCommitWindow is how long the writer waits to gather more records
	// before an fsync (0: sync as soon as the previous sync ends).
	GroupCommitWindow Duration `yaml:"group_commit_window"`
	// Repair lets start-up go on past WAL damage that is not a torn tail
	// (a bad record followed by intact ones, or damage in an older
	// segment): the segment is copied to wal/quarantine/ and rewritten with
	// its intact records, and the damaged records are lost. Without it
	// tierd refuses to start on such damage.
	Repair bool `yaml:"repair"`
}

// Config is tierd's whole configuration.
type Config struct {
	ListenAddr string `yaml:"listen_addr"`
	DebugAddr  string `yaml:"debug_addr"`
	// BlockProfileRate and MutexProfileFraction feed the debug port's
	// block and mutex profiles (runtime.SetBlockProfileRate: one sample
	// per that many nanoseconds blocked; runtime.SetMutexProfileFraction:
	// one in that many contention events). 0, the default, leaves them off.
	BlockProfileRate     int `yaml:"block_profile_rate"`
	MutexProfileFraction int `yaml:"mutex_profile_fraction"`
	// DataDir holds the WAL, the manifest and the warm tier.
	DataDir  string `yaml:"data_dir"`
	LogLevel string `yaml:"log_level"`
	// ShutdownTimeout bounds graceful shutdown.
	ShutdownTimeout Duration `yaml:"shutdown_timeout"`
	S3              S3       `yaml:"s3"`
	Limits          Limits   `yaml:"limits"`
	Quotas          Quotas   `yaml:"quotas"`
	Worker          Worker   `yaml:"worker"`
	WAL             WAL      `yaml:"wal"`
}

// Default returns the configuration with every default set.
func Default() Config {
	return Config{
		ListenAddr:      ":8080",
		DebugAddr:       ":6060",
		DataDir:         "/data",
		LogLevel:        "info",
		ShutdownTimeout: Duration(10 * time.Second),
		S3: S3{
			Bucket:         "tierd",
			OpTimeout:      Duration(10 * time.Second),
			StartupTimeout: Duration(2 * time.Second),
			PartSize:       8 << 20,
			Concurrency:    4,
			MaxRetries:     3,
		},
		Limits: Limits{
			MaxBodyBytes:        32 << 20,
			MaxVectorsPerInsert: 10000,
			MaxDimension:        4096,
		},
		Worker: Worker{
			Interval:        Duration(10 * time.Second),
			HotIdle:         Duration(10 * time.Minute),
			WarmIdle:        Duration(time.Hour),
			CheckpointBytes: 64 << 20,
		},
		WAL: WAL{
			SegmentBytes:      64 << 20,
			GroupCommitWindow: 0,
		},
	}
}

// Load reads a YAML file over base. Unknown keys are an error.
func Load(base Config, path string) (Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return base, fmt.Errorf("config file: %w", err)
	}
	defer f.Close()
	dec := yaml.NewDecoder(f)
	dec.KnownFields(true)
	cfg := base
	if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
		return base, fmt.Errorf("config file %s: %w", path, err)
	}
	return cfg, nil
}

// YAML renders cfg as YAML with the secret key masked.
func (c Config) YAML() (string, error) {
	if c.S3.SecretKey != "" {
		c.S3.SecretKey = "*****"
	}
	b, err := yaml.Marshal(c)
	if err != nil {
		return "", fmt.Errorf("config: %w", err)
	}
	return string(b), nil
}

// envVar maps one environment variable onto a config field.
type envVar struct {
	name string
	set  func(c *Config, v string) error
}

func str(p func(*Config) *string) func(*Config, string) error {
	return func(c *Config, v string) error { *p(c) = v; return nil }
}

func boolean(p func(*Config) *bool) func(*Config, string) error {
	return func(c *Config, v string) error {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("not a boolean: %q", v)
		}
		*p(c) = b
		return nil
	}
}

func integer(p func(*Config) *int) func(*Config, string) error {
	return func(c *Config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil {
			return fmt.Errorf("not an integer: %q", v)
		}
		*p(c) = n
		return nil
	}
}

func bytesize(p func(*Config) *int64) func(*Config, string) error {
	return func(c *Config, v string) error {
		n, err := ParseBytes(v)
		if err != nil {
			return err
		}
		*p(c) = n
		return nil
	}
}

func duration(p func(*Config) *Duration) func(*Config, string) error {
	return func(c *Config, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("not a duration: %q", v)
		}
		*p(c) = Duration(d)
		return nil
	}
}

// ParseBytes parses a byte count: a plain integer or one with a suffix
// KiB, MiB, GiB (or K, M, G, meaning the same powers of 1024).
func ParseBytes(v string) (int64, error) {
	s := strings.TrimSpace(v)
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		m      int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}} {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSuffix(s, u.suffix), u.m
			break
		}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("not a byte count: %q", v)
	}
	return n * mult, nil
}

// envVars lists every environment variable tierd reads (besides TIERD_CONFIG).
var envVars = []envVar{
	{"TIERD_LISTEN_ADDR", str(func(c *Config) *string { return &c.ListenAddr })},
	{"TIERD_DEBUG_ADDR", str(func(c *Config) *string { return &c.DebugAddr })},
	{"TIERD_BLOCK_PROFILE_RATE", integer(func(c *Config) *int { return &c.BlockProfileRate })},
	{"TIERD_MUTEX_PROFILE_FRACTION", integer(func(c *Config) *int { return &c.MutexProfileFraction })},
	{"TIERD_DATA_DIR", str(func(c *Config) *string { return &c.DataDir })},
	{"TIERD_LOG_LEVEL", str(func(c *Config) *string { return &c.LogLevel })},
	{"TIERD_SHUTDOWN_TIMEOUT", duration(func(c *Config) *Duration { return &c.ShutdownTimeout })},
	{"TIERD_S3_ENDPOINT", str(func(c *Config) *string { return &c.S3.Endpoint })},
	{"TIERD_S3_ACCESS_KEY", str(func(c *Config) *string { return &c.S3.AccessKey })},
	{"TIERD_S3_SECRET_KEY", str(func(c *Config) *string { return &c.S3.SecretKey })},
	{"TIERD_S3_BUCKET", str(func(c *Config) *string { return &c.S3.Bucket })},
	{"TIERD_S3_PREFIX", str(func(c *Config) *string { return &c.S3.Prefix })},
	{"TIERD_S3_USE_SSL", boolean(func(c *Config) *bool { return &c.S3.UseSSL })},
	{"TIERD_S3_OP_TIMEOUT", duration(func(c *Config) *Duration { return &c.S3.OpTimeout })},
	{"TIERD_S3_STARTUP_TIMEOUT", duration(func(c *Config) *Duration { return &c.S3.StartupTimeout })},
	{"TIERD_S3_PART_SIZE", bytesize(func(c *Config) *int64 { return &c.S3.PartSize })},
	{"TIERD_S3_CONCURRENCY", integer(func(c *Config) *int { return &c.S3.Concurrency })},
	{"TIERD_S3_MAX_RETRIES", integer(func(c *Config) *int { return &c.S3.MaxRetries })},
	{"TIERD_S3_VERIFY_READBACK", boolean(func(c *Config) *bool { return &c.S3.VerifyReadback })},
	{"TIERD_MAX_BODY_BYTES", bytesize(func(c *Config) *int64 { return &c.Limits.MaxBodyBytes })},
	{"TIERD_MAX_VECTORS_PER_INSERT", integer(func(c *Config) *int { return &c.Limits.MaxVectorsPerInsert })},
	{"TIERD_MAX_DIMENSION", integer(func(c *Config) *int { return &c.Limits.MaxDimension })},
	{"TIERD_QUOTA_HOT_BYTES", bytesize(func(c *Config) *int64 { return &c.Quotas.HotBytes })},
	{"TIERD_QUOTA_WARM_BYTES", bytesize(func(c *Config) *int64 { return &c.Quotas.WarmBytes })},
	{"TIERD_QUOTA_COLLECTIONS", integer(func(c *Config) *int { return &c.Quotas.Collections })},
	{"TIERD_WORKER_INTERVAL", duration(func(c *Config) *Duration { return &c.Worker.Interval })},
	{"TIERD_WORKER_HOT_IDLE", duration(func(c *Config) *Duration { return &c.Worker.HotIdle })},
	{"TIERD_WORKER_WARM_IDLE", duration(func(c *Config) *Duration { return &c.Worker.WarmIdle })},
	{"TIERD_WORKER_PAUSED", boolean(func(c *Config) *bool { return &c.Worker.Paused })},
	{"TIERD_WORKER_CHECKPOINT_BYTES", bytesize(func(c *Config) *int64 { return &c.Worker.CheckpointBytes })},
	{"TIERD_WAL_SEGMENT_BYTES", bytesize(func(c *Config) *int64 { return &c.WAL.SegmentBytes })},
	{"TIERD_WAL_GROUP_COMMIT_WINDOW", duration(func(c *Config) *Duration { return &c.WAL.GroupCommitWindow })},
	{"TIERD_WAL_REPAIR", boolean(func(c *Config) *bool { return &c.WAL.Repair })},
}

// EnvNames returns the names of all environment variables FromEnv reads.
func EnvNames() []string {
	out := make([]string, len(envVars))
	for i, e := range envVars {
		out[i] = e.name
	}
	return out
}

// FromEnv applies the TIERD_* variables that getenv returns non-empty over base.
func FromEnv(base Config, getenv func(string) string) (Config, error) {
	cfg := base
	var errs []error
	for _, e := range envVars {
		v := getenv(e.name)
		if v == "" {
			continue
		}
		if err := e.set(&cfg, v); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", e.name, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return base, fmt.Errorf("config from environment: %w", err)
	}
	return cfg, nil
}

// Validate checks every field and reports all problems at once.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.ListenAddr == "" {
		bad("listen_addr must not be empty")
	}
	if c.DataDir == "" {
		bad("data_dir must not be empty")
	}
	switch strings.ToLower(c.LogLevel) {
	case "debug", "info", "warn", "error":
	default:
		bad("log_level must be debug, info, warn or error, got %q", c.LogLevel)
	}
	if c.S3.Endpoint != "" {
		if strings.Contains(c.S3.Endpoint, "://") || strings.Contains(c.S3.Endpoint, "/") {
			bad("s3.endpoint must be host:port without scheme or path, got %q", c.S3.Endpoint)
		}
		if c.S3.Bucket == "" {
			bad("s3.bucket must not be empty")
		}
	}
	if c.S3.Prefix != "" && !strings.HasSuffix(c.S3.Prefix, "/") {
		bad("s3.prefix must end with '/', got %q", c.S3.Prefix)
	}
	if c.S3.OpTimeout <= 0 {
		bad("s3.op_timeout must be positive")
	}
	if c.S3.StartupTimeout < 0 {
		bad("s3.startup_timeout must not be negative")
	}
	if c.S3.PartSize < 5<<20 {
		bad("s3.part_size must be at least 5MiB (S3 minimum), got %d", c.S3.PartSize)
	}
	if c.S3.Concurrency < 1 || c.S3.Concurrency > 64 {
		bad("s3.concurrency must be 1..64, got %d", c.S3.Concurrency)
	}
	if c.S3.MaxRetries < 0 || c.S3.MaxRetries > 20 {
		bad("s3.max_retries must be 0..20, got %d", c.S3.MaxRetries)
	}
	if c.Limits.MaxBodyBytes < 1024 {
		bad("limits.max_body_bytes must be at least 1024, got %d", c.Limits.MaxBodyBytes)
	}
	if c.Limits.MaxVectorsPerInsert < 1 {
		bad("limits.max_vectors_per_insert must be at least 1, got %d", c.Limits.MaxVectorsPerInsert)
	}
	if c.Limits.MaxDimension < 1 || c.Limits.MaxDimension > 65536 {
		bad("limits.max_dimension must be 1..65536, got %d", c.Limits.MaxDimension)
	}
	if c.Quotas.HotBytes < 0 || c.Quotas.WarmBytes < 0 || c.Quotas.Collections < 0 {
		bad("quotas must not be negative (0 means unlimited)")
	}
	if c.Worker.Interval <= 0 {
		bad("worker.interval must be positive")
	}
	if c.Worker.HotIdle < 0 || c.Worker.WarmIdle < 0 {
		bad("worker idle times must not be negative (0 means never)")
	}
	if c.Worker.CheckpointBytes < 0 {
		bad("worker.checkpoint_bytes must not be negative")
	}
	if c.WAL.SegmentBytes < 1<<16 {
		bad("wal.segment_bytes must be at least 65536, got %d", c.WAL.SegmentBytes)
	}
	if c.WAL.GroupCommitWindow < 0 || c.WAL.GroupCommitWindow.D() > time.Second {
		bad("wal.group_commit_window must be 0..1s")
	}
	if c.ShutdownTimeout <= 0 {
		bad("shutdown_timeout must be positive")
	}
	if c.BlockProfileRate < 0 || c.MutexProfileFraction < 0 {
		bad("block_profile_rate and mutex_profile_fraction must not be negative (0 means off)")
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("invalid config: %w", err)
	}
	return nil
}

// ApplyProfileRates sets the process's block and mutex profiling rates
// from BlockProfileRate and MutexProfileFraction (both process-wide; 0
// turns each off).
func (c Config) ApplyProfileRates() {
	runtime.SetBlockProfileRate(c.BlockProfileRate)
	runtime.SetMutexProfileFraction(c.MutexProfileFraction)
}

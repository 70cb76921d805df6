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

	"github.com/tierchaos/tierchaos/uploader"
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

// Batch configures packs: when a worker cycle demotes several small warm
// collections to cold, their snapshots go up together as members of one
// pack object (the uploader's pack format) instead of one object each.
type Batch struct {
	// Enabled turns packing on; off, every demotion writes its own object.
	Enabled bool `yaml:"enabled"`
	// MaxItems is the most members one pack holds; more candidates make
	// more packs.
	MaxItems int `yaml:"max_items"`
	// MaxBytes closes a pack when its members reach this many bytes.
	MaxBytes int64 `yaml:"max_bytes"`
	// MaxAge is the longest a queued member waits for its pack to go up
	// while the cycle is still reading the other candidates' files (the
	// cycle sends what is queued as soon as it has read them all).
	MaxAge Duration `yaml:"max_age"`
	// SizeThreshold: only snapshots smaller than this are packed; larger
	// ones keep their own object.
	SizeThreshold int64 `yaml:"size_threshold"`
}

// Pool configures the HTTP connection pool of the S3 client.
type Pool struct {
	// IdleConns is the number of idle keep-alive connections kept to S3.
	IdleConns int `yaml:"idle_conns"`
	// IdleTimeout closes an idle connection after this long.
	IdleTimeout Duration `yaml:"idle_timeout"`
	// DialTimeout bounds a TCP connect (and TLS handshake).
	DialTimeout Duration `yaml:"dial_timeout"`
	// ResponseHeaderTimeout bounds the wait for a response's headers after
	// the request was written.
	ResponseHeaderTimeout Duration `yaml:"response_header_timeout"`
}

// Retry is the retry policy of every S3 operation: attempts, and the
// full-jitter backoff whose ceiling starts at Base and doubles up to Cap.
type Retry struct {
	// MaxAttempts is the number of attempts of a retryable failure, the
	// first included; 0 takes 1 + s3.max_retries.
	MaxAttempts int `yaml:"max_attempts"`
	// Base is the first retry's backoff ceiling.
	Base Duration `yaml:"base"`
	// Cap caps the backoff ceiling.
	Cap Duration `yaml:"cap"`
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

// Auth configures the bearer tokens of the REST API. An empty token is
// not required. When only APIToken is set, the admin routes require it
// too: they are never open while the API is protected. When only
// AdminToken is set, the admin routes require it and the other API routes
// are open. When both are set, each route group takes its own token.
// /healthz and /readyz never require a token.
type Auth struct {
	// APIToken is required (Authorization: Bearer) on /v1/ routes other
	// than /v1/admin/.
	APIToken string `yaml:"api_token"`
	// AdminToken is required on /v1/admin/ routes.
	AdminToken string `yaml:"admin_token"`
}

// MinTokenLen is the shortest accepted bearer token.
const MinTokenLen = 16

// HTTP configures the REST listener's timeouts and its concurrency limit.
//
// WriteTimeout must outlast the longest legitimate request: a tier
// transition or a search/insert that promotes a cold collection. Such a
// request may wait for a running transition of the same collection, then
// downloads within cold's ReadBudget ((1 + size/part_size) x op_timeout)
// or uploads within cold's Budget (about one op_timeout per round of
// concurrency parts, plus verify). With the defaults (op_timeout 10s,
// part_size 8MiB, concurrency 4) the 10-minute default covers a download of
// about 470 MiB and an upload of about 1.8 GiB; raise it with bigger
// collections or a slower S3. Validation requires at least
// 2 x s3.op_timeout (one single-part transfer and its verify).
type HTTP struct {
	// ReadHeaderTimeout bounds reading a request's headers.
	ReadHeaderTimeout Duration `yaml:"read_header_timeout"`
	// ReadTimeout bounds reading a whole request, body included.
	ReadTimeout Duration `yaml:"read_timeout"`
	// WriteTimeout bounds a request from the end of its headers to the
	// end of its answer (see above).
	WriteTimeout Duration `yaml:"write_timeout"`
	// IdleTimeout closes a keep-alive connection idle this long.
	IdleTimeout Duration `yaml:"idle_timeout"`
	// MaxInFlight bounds the API requests served at once; more answer 503
	// overloaded with Retry-After. /healthz and /readyz are not counted.
	MaxInFlight int `yaml:"max_in_flight"`
}

// DebugOff as the debug address disables the debug listener (as does "").
const DebugOff = "off"

// Config is tierd's whole configuration.
type Config struct {
	ListenAddr string `yaml:"listen_addr"`
	// DebugAddr is where pprof and /metrics listen; "" or "off" disables them.
	DebugAddr string `yaml:"debug_addr"`
	// GRPCAddr is where the gRPC API (tierd.v1.Tierd, health, reflection)
	// listens; "" or "off" disables it.
	GRPCAddr string `yaml:"grpc_addr"`
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
	HTTP            HTTP     `yaml:"http"`
	Auth            Auth     `yaml:"auth"`
	Batch           Batch    `yaml:"batch"`
	Pool            Pool     `yaml:"pool"`
	Retry           Retry    `yaml:"retry"`
}

// RetryAttempts returns the effective number of attempts of an S3
// operation: retry.max_attempts, or 1 + s3.max_retries when it is 0.
func (c Config) RetryAttempts() int {
	if c.Retry.MaxAttempts > 0 {
		return c.Retry.MaxAttempts
	}
	return 1 + c.S3.MaxRetries
}

// Uploader returns the uploader's configuration these settings make:
// batch (packs), parallel uploads (s3 part size, concurrency, op timeout,
// retry policy, Content-MD5 on) and the connection pool.
func (c Config) Uploader() uploader.Config {
	pc := uploader.DefaultParallelConfig()
	pc.Enabled = true
	pc.Concurrency = c.S3.Concurrency
	pc.MaxRetries = c.RetryAttempts() - 1
	pc.BackoffBase, pc.BackoffCap = c.Retry.Base.D(), c.Retry.Cap.D()
	pc.PartSize, pc.MultipartThreshold = c.S3.PartSize, c.S3.PartSize
	pc.AttemptTimeout = c.S3.OpTimeout.D()
	pc.ContentMD5 = true
	return uploader.Config{
		Batch: uploader.BatchConfig{Enabled: c.Batch.Enabled, Size: c.Batch.MaxItems, MaxBytes: c.Batch.MaxBytes,
			FlushInterval: c.Batch.MaxAge.D()},
		Parallel: pc,
		Pool: uploader.PoolConfig{MaxIdleConns: c.Pool.IdleConns, IdleTimeout: c.Pool.IdleTimeout.D(),
			DialTimeout: c.Pool.DialTimeout.D(), ResponseHeaderTimeout: c.Pool.ResponseHeaderTimeout.D()},
	}
}

// DebugListenAddr returns the debug listener's address, or "" when the
// debug listener is disabled ("" or "off").
func (c Config) DebugListenAddr() string {
	if strings.EqualFold(strings.TrimSpace(c.DebugAddr), DebugOff) {
		return ""
	}
	return c.DebugAddr
}

// GRPCListenAddr returns the gRPC listener's address, or "" when the gRPC
// API is disabled ("" or "off").
func (c Config) GRPCListenAddr() string {
	if strings.EqualFold(strings.TrimSpace(c.GRPCAddr), DebugOff) {
		return ""
	}
	return c.GRPCAddr
}

// Default returns the configuration with every default set.
func Default() Config {
	return Config{
		ListenAddr:      ":8080",
		DebugAddr:       "127.0.0.1:6060",
		GRPCAddr:        ":9090",
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
		HTTP: HTTP{
			ReadHeaderTimeout: Duration(10 * time.Second),
			ReadTimeout:       Duration(2 * time.Minute),
			WriteTimeout:      Duration(10 * time.Minute),
			IdleTimeout:       Duration(2 * time.Minute),
			MaxInFlight:       1024,
		},
		Batch: Batch{
			Enabled:       true,
			MaxItems:      uploader.DefaultBatchSize,
			MaxBytes:      uploader.DefaultBatchMaxBytes,
			MaxAge:        Duration(uploader.DefaultBatchFlushInterval),
			SizeThreshold: 1 << 20,
		},
		Pool: Pool{
			IdleConns:             uploader.DefaultPoolSize,
			IdleTimeout:           Duration(uploader.DefaultIdleTimeout),
			DialTimeout:           Duration(uploader.DefaultDialTimeout),
			ResponseHeaderTimeout: Duration(uploader.DefaultResponseHeaderTimeout),
		},
		Retry: Retry{
			Base: Duration(50 * time.Millisecond),
			Cap:  Duration(2 * time.Second),
		},
	}
}

// ErrInvalid is the class of every error of this package: an unreadable
// file, malformed YAML, a bad environment value or a failed validation.
var ErrInvalid = errors.New("invalid config")

// Load reads a YAML file over base. Unknown keys are an error.
func Load(base Config, path string) (Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return base, fmt.Errorf("%w: config file: %w", ErrInvalid, err)
	}
	defer f.Close()
	return Decode(base, f, path)
}

// Decode reads one YAML document from r (named name in errors) over base.
// Unknown keys are an error; an empty document leaves base unchanged.
func Decode(base Config, r io.Reader, name string) (cfg Config, err error) {
	defer func() {
		// Should the YAML decoder panic on a malformed document, that is
		// a config error, never a crash.
		if v := recover(); v != nil {
			cfg, err = base, fmt.Errorf("%w: config file %s: %v", ErrInvalid, name, v)
		}
	}()
	dec := yaml.NewDecoder(r)
	dec.KnownFields(true)
	cfg = base
	if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
		return base, fmt.Errorf("%w: config file %s: %w", ErrInvalid, name, err)
	}
	return cfg, nil
}

// mask is what YAML prints instead of a secret.
const mask = "*****"

// YAML renders cfg as YAML with the secret key and the tokens masked.
func (c Config) YAML() (string, error) {
	for _, p := range []*string{&c.S3.SecretKey, &c.Auth.APIToken, &c.Auth.AdminToken} {
		if *p != "" {
			*p = mask
		}
	}
	b, err := yaml.Marshal(c)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return string(b), nil
}

// envVar maps one environment variable onto a config field.
type envVar struct {
	name string
	set  func(c *Config, v string) error
	// emptySets: a variable set to "" is applied (TIERD_DEBUG_ADDR= turns
	// the debug listener off); for the others "" counts as unset.
	emptySets bool
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
	{"TIERD_LISTEN_ADDR", str(func(c *Config) *string { return &c.ListenAddr }), false},
	{"TIERD_DEBUG_ADDR", str(func(c *Config) *string { return &c.DebugAddr }), true},
	{"TIERD_GRPC_ADDR", str(func(c *Config) *string { return &c.GRPCAddr }), true},
	{"TIERD_BLOCK_PROFILE_RATE", integer(func(c *Config) *int { return &c.BlockProfileRate }), false},
	{"TIERD_MUTEX_PROFILE_FRACTION", integer(func(c *Config) *int { return &c.MutexProfileFraction }), false},
	{"TIERD_DATA_DIR", str(func(c *Config) *string { return &c.DataDir }), false},
	{"TIERD_LOG_LEVEL", str(func(c *Config) *string { return &c.LogLevel }), false},
	{"TIERD_SHUTDOWN_TIMEOUT", duration(func(c *Config) *Duration { return &c.ShutdownTimeout }), false},
	{"TIERD_S3_ENDPOINT", str(func(c *Config) *string { return &c.S3.Endpoint }), false},
	{"TIERD_S3_ACCESS_KEY", str(func(c *Config) *string { return &c.S3.AccessKey }), false},
	{"TIERD_S3_SECRET_KEY", str(func(c *Config) *string { return &c.S3.SecretKey }), false},
	{"TIERD_S3_BUCKET", str(func(c *Config) *string { return &c.S3.Bucket }), false},
	{"TIERD_S3_PREFIX", str(func(c *Config) *string { return &c.S3.Prefix }), false},
	{"TIERD_S3_USE_SSL", boolean(func(c *Config) *bool { return &c.S3.UseSSL }), false},
	{"TIERD_S3_OP_TIMEOUT", duration(func(c *Config) *Duration { return &c.S3.OpTimeout }), false},
	{"TIERD_S3_STARTUP_TIMEOUT", duration(func(c *Config) *Duration { return &c.S3.StartupTimeout }), false},
	{"TIERD_S3_PART_SIZE", bytesize(func(c *Config) *int64 { return &c.S3.PartSize }), false},
	{"TIERD_S3_CONCURRENCY", integer(func(c *Config) *int { return &c.S3.Concurrency }), false},
	{"TIERD_S3_MAX_RETRIES", integer(func(c *Config) *int { return &c.S3.MaxRetries }), false},
	{"TIERD_S3_VERIFY_READBACK", boolean(func(c *Config) *bool { return &c.S3.VerifyReadback }), false},
	{"TIERD_MAX_BODY_BYTES", bytesize(func(c *Config) *int64 { return &c.Limits.MaxBodyBytes }), false},
	{"TIERD_MAX_VECTORS_PER_INSERT", integer(func(c *Config) *int { return &c.Limits.MaxVectorsPerInsert }), false},
	{"TIERD_MAX_DIMENSION", integer(func(c *Config) *int { return &c.Limits.MaxDimension }), false},
	{"TIERD_QUOTA_HOT_BYTES", bytesize(func(c *Config) *int64 { return &c.Quotas.HotBytes }), false},
	{"TIERD_QUOTA_WARM_BYTES", bytesize(func(c *Config) *int64 { return &c.Quotas.WarmBytes }), false},
	{"TIERD_QUOTA_COLLECTIONS", integer(func(c *Config) *int { return &c.Quotas.Collections }), false},
	{"TIERD_WORKER_INTERVAL", duration(func(c *Config) *Duration { return &c.Worker.Interval }), false},
	{"TIERD_WORKER_HOT_IDLE", duration(func(c *Config) *Duration { return &c.Worker.HotIdle }), false},
	{"TIERD_WORKER_WARM_IDLE", duration(func(c *Config) *Duration { return &c.Worker.WarmIdle }), false},
	{"TIERD_WORKER_PAUSED", boolean(func(c *Config) *bool { return &c.Worker.Paused }), false},
	{"TIERD_WORKER_CHECKPOINT_BYTES", bytesize(func(c *Config) *int64 { return &c.Worker.CheckpointBytes }), false},
	{"TIERD_WAL_SEGMENT_BYTES", bytesize(func(c *Config) *int64 { return &c.WAL.SegmentBytes }), false},
	{"TIERD_WAL_GROUP_COMMIT_WINDOW", duration(func(c *Config) *Duration { return &c.WAL.GroupCommitWindow }), false},
	{"TIERD_WAL_REPAIR", boolean(func(c *Config) *bool { return &c.WAL.Repair }), false},
	{"TIERD_HTTP_READ_HEADER_TIMEOUT", duration(func(c *Config) *Duration { return &c.HTTP.ReadHeaderTimeout }), false},
	{"TIERD_HTTP_READ_TIMEOUT", duration(func(c *Config) *Duration { return &c.HTTP.ReadTimeout }), false},
	{"TIERD_HTTP_WRITE_TIMEOUT", duration(func(c *Config) *Duration { return &c.HTTP.WriteTimeout }), false},
	{"TIERD_HTTP_IDLE_TIMEOUT", duration(func(c *Config) *Duration { return &c.HTTP.IdleTimeout }), false},
	{"TIERD_HTTP_MAX_IN_FLIGHT", integer(func(c *Config) *int { return &c.HTTP.MaxInFlight }), false},
	{"TIERD_BATCH_ENABLED", boolean(func(c *Config) *bool { return &c.Batch.Enabled }), false},
	{"TIERD_BATCH_MAX_ITEMS", integer(func(c *Config) *int { return &c.Batch.MaxItems }), false},
	{"TIERD_BATCH_MAX_BYTES", bytesize(func(c *Config) *int64 { return &c.Batch.MaxBytes }), false},
	{"TIERD_BATCH_MAX_AGE", duration(func(c *Config) *Duration { return &c.Batch.MaxAge }), false},
	{"TIERD_BATCH_SIZE_THRESHOLD", bytesize(func(c *Config) *int64 { return &c.Batch.SizeThreshold }), false},
	{"TIERD_POOL_IDLE_CONNS", integer(func(c *Config) *int { return &c.Pool.IdleConns }), false},
	{"TIERD_POOL_IDLE_TIMEOUT", duration(func(c *Config) *Duration { return &c.Pool.IdleTimeout }), false},
	{"TIERD_POOL_DIAL_TIMEOUT", duration(func(c *Config) *Duration { return &c.Pool.DialTimeout }), false},
	{"TIERD_POOL_RESPONSE_HEADER_TIMEOUT", duration(func(c *Config) *Duration { return &c.Pool.ResponseHeaderTimeout }), false},
	{"TIERD_RETRY_MAX_ATTEMPTS", integer(func(c *Config) *int { return &c.Retry.MaxAttempts }), false},
	{"TIERD_RETRY_BASE", duration(func(c *Config) *Duration { return &c.Retry.Base }), false},
	{"TIERD_RETRY_CAP", duration(func(c *Config) *Duration { return &c.Retry.Cap }), false},
	{"TIERD_API_TOKEN", str(func(c *Config) *string { return &c.Auth.APIToken }), false},
	{"TIERD_ADMIN_TOKEN", str(func(c *Config) *string { return &c.Auth.AdminToken }), false},
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
	return FromLookupEnv(base, func(k string) (string, bool) {
		v := getenv(k)
		return v, v != ""
	})
}

// FromLookupEnv applies the TIERD_* variables that lookup reports set
// over base. A variable set to "" counts as unset, except TIERD_DEBUG_ADDR
// and TIERD_GRPC_ADDR, where "" disables the listener (like "off").
func FromLookupEnv(base Config, lookup func(string) (string, bool)) (Config, error) {
	cfg := base
	var errs []error
	for _, e := range envVars {
		v, ok := lookup(e.name)
		if !ok || (v == "" && !e.emptySets) {
			continue
		}
		if err := e.set(&cfg, v); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", e.name, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return base, fmt.Errorf("%w: from environment: %w", ErrInvalid, err)
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
	c.validateHTTP(bad)
	c.validateUploader(bad)
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
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

// Bounds of the batch, pool and retry settings.
const (
	maxBatchItems    = 100000
	maxPoolIdleConns = 10000
	maxRetryAttempts = 21
)

// validateUploader checks the batch, pool and retry sections, then the
// uploader's batch and pool configuration they make (tierd hands it to the
// uploader as it is; the parallel part follows the s3 section, checked
// above).
func (c Config) validateUploader(bad func(format string, args ...any)) {
	n := 0
	count := func(format string, args ...any) { n++; bad(format, args...) }
	b := c.Batch
	if b.MaxItems < 2 || b.MaxItems > maxBatchItems {
		count("batch.max_items must be 2..%d (a pack holds at least two members), got %d", maxBatchItems, b.MaxItems)
	}
	if b.MaxBytes < 1 || b.MaxBytes > uploader.MaxPartSize {
		count("batch.max_bytes must be 1..%d, got %d", int64(uploader.MaxPartSize), b.MaxBytes)
	}
	if b.MaxAge <= 0 {
		count("batch.max_age must be positive")
	}
	if b.SizeThreshold < 1 || b.SizeThreshold > b.MaxBytes {
		count("batch.size_threshold must be 1..batch.max_bytes (%d), got %d", b.MaxBytes, b.SizeThreshold)
	}
	p := c.Pool
	if p.IdleConns < 1 || p.IdleConns > maxPoolIdleConns {
		count("pool.idle_conns must be 1..%d, got %d", maxPoolIdleConns, p.IdleConns)
	}
	for _, d := range []struct {
		name string
		v    Duration
	}{{"pool.idle_timeout", p.IdleTimeout}, {"pool.dial_timeout", p.DialTimeout}, {"pool.response_header_timeout", p.ResponseHeaderTimeout}} {
		if d.v <= 0 {
			count("%s must be positive, got %s", d.name, d.v.D())
		}
	}
	r := c.Retry
	if r.MaxAttempts < 0 || r.MaxAttempts > maxRetryAttempts {
		count("retry.max_attempts must be 0..%d (0: 1 + s3.max_retries), got %d", maxRetryAttempts, r.MaxAttempts)
	}
	if r.Base <= 0 {
		count("retry.base must be positive")
	}
	if r.Cap < r.Base {
		count("retry.cap must be at least retry.base (%s), got %s", r.Base.D(), r.Cap.D())
	}
	if n > 0 {
		return // the uploader would only repeat these
	}
	u := c.Uploader()
	if err := errors.Join(u.Batch.Validate(), u.Pool.Validate()); err != nil {
		bad("uploader settings: %v", err)
	}
}

// maxInFlightLimit is the largest accepted http.max_in_flight.
const maxInFlightLimit = 1 << 20

func (c Config) validateHTTP(bad func(format string, args ...any)) {
	h := c.HTTP
	if h.ReadHeaderTimeout <= 0 {
		bad("http.read_header_timeout must be positive")
	}
	if h.ReadTimeout < h.ReadHeaderTimeout {
		bad("http.read_timeout must be at least http.read_header_timeout (%s), got %s", h.ReadHeaderTimeout.D(), h.ReadTimeout.D())
	}
	if h.WriteTimeout < 2*c.S3.OpTimeout || h.WriteTimeout <= 0 {
		bad("http.write_timeout must be at least 2 x s3.op_timeout (%s) so that a tier transition can finish, got %s",
			2*c.S3.OpTimeout.D(), h.WriteTimeout.D())
	}
	if h.IdleTimeout <= 0 {
		bad("http.idle_timeout must be positive")
	}
	if h.MaxInFlight < 1 || h.MaxInFlight > maxInFlightLimit {
		bad("http.max_in_flight must be 1..%d, got %d", maxInFlightLimit, h.MaxInFlight)
	}
	for _, t := range []struct{ name, v string }{{"auth.api_token", c.Auth.APIToken}, {"auth.admin_token", c.Auth.AdminToken}} {
		if t.v == "" {
			continue
		}
		if len(t.v) < MinTokenLen {
			bad("%s must be at least %d characters, got %d", t.name, MinTokenLen, len(t.v))
		}
		for _, r := range t.v {
			if r <= ' ' || r > '~' {
				bad("%s must be printable ASCII without spaces", t.name)
				break
			}
		}
	}
}
